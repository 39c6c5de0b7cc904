"""Turn quality.Outcome values into Dagster check specs and results."""

from collections.abc import Iterable

import dagster as dg

from lake_assets import quality

_SEVERITY = {quality.ERROR: dg.AssetCheckSeverity.ERROR, quality.WARN: dg.AssetCheckSeverity.WARN}

DESCRIPTIONS = {
    quality.SCHEMA_MATCHES_CONTRACT: "The Parquet schema equals the service contract.",
    quality.NOT_EMPTY: "The month has at least one row.",
    quality.ROWS_ACCOUNTED_FOR: "Rows in the raw file = rows written + rows quarantined.",
    quality.PICKUPS_IN_MONTH: "At least 99% of pickups fall inside the partition month.",
    quality.DROPOFF_AFTER_PICKUP: "At most 0.1% of trips end before they start.",
    quality.NEGATIVE_TOTALS: "At most 1% of trips have a negative total_amount.",
    quality.LOCATION_IDS_PRESENT: "Pickup and dropoff zone ids are rarely null.",
    quality.PASSENGER_COUNT_PRESENT: "passenger_count is null in at most 5% of trips.",
    quality.SLICE_MATCHES_LAKE: "The warehouse slice has exactly the lake file's rows.",
    quality.UNIQUE_LOCATION_IDS: "265 zones, each location id exactly once.",
    quality.BOROUGH_PRESENT: "Every zone has a borough.",
    quality.EVERY_TRIP_COUNTED_ONCE: "Per service, the mart's trips equal the trip table's.",
}


def specs(key: dg.AssetKey, blocking: Iterable[str], warnings: Iterable[str] = ()) -> list:
    return [
        dg.AssetCheckSpec(name, asset=key, blocking=True, description=DESCRIPTIONS[name])
        for name in blocking
    ] + [
        dg.AssetCheckSpec(name, asset=key, blocking=False, description=DESCRIPTIONS[name])
        for name in warnings
    ]


def results(outcomes: Iterable[quality.Outcome]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=o.name,
            passed=o.passed,
            severity=_SEVERITY[o.severity],
            description=o.description,
            metadata=o.metadata,
        )
        for o in outcomes
    ]


def failed(outcomes: Iterable[quality.Outcome]) -> list[str]:
    return [o.description for o in outcomes if not o.passed and o.severity == quality.ERROR]
