"""marts/*: monthly aggregates built with SQL inside the warehouse, replacing their month."""

import time
from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg

from lake_assets import identity, marts_sql, quality, steps
from lake_assets.assets import checks, ranges
from lake_assets.assets.lake import table_schema
from lake_assets.assets.warehouse import WAREHOUSE_POOL, WRITER_TAGS
from lake_assets.automation import FOLLOW_UPSTREAM
from lake_assets.partitions import RANGE_IN_ONE_RUN, partition_months
from lake_assets.resources import Warehouse
from lake_assets.resources.base import SliceCheck
from lake_assets.schemas import (
    SERVICE_SUMMARY_MONTHLY,
    SERVICES,
    TAXI_ZONES,
    TRIPS_BY_ZONE_MONTHLY,
    TableContract,
    contract_for,
)

SOURCES = [dg.AssetKey(identity.trip_key(identity.WAREHOUSE, s)) for s in SERVICES] + [
    dg.AssetKey(identity.zones_key(identity.WAREHOUSE))
]


# The new month's trips per service, read where the new rows are before they are committed.
SLICE_TRIPS_SQL = "SELECT service, sum(trips) FROM {slice} GROUP BY service"


def _build(
    warehouse: Warehouse, contract: TableContract, month: date, select_sql: str
) -> tuple[dict, list[quality.Outcome]]:
    """Replace the mart's month, judged (every_trip_counted_once) before the commit: a month
    that fails a blocking check raises steps.BlockingCheckFailed and the old month stays."""
    started = time.monotonic()
    ds = warehouse.dataset
    source = dict(warehouse.query(marts_sql.trips_per_service_sql(ds), {"month": month}))
    judged: list[quality.Outcome] = []

    def judge(rows: list[tuple]) -> None:
        judged[:] = quality.evaluate(
            identity.MARTS,
            quality.Evidence(
                contract,
                month,
                mart_trips={s: int(n) for s, n in rows},
                source_trips={s: int(n) for s, n in source.items()},
            ),
        )
        if quality.failed_blocking(judged):
            raise steps.BlockingCheckFailed(list(judged))

    result = warehouse.replace_month_from_query(
        contract, month, select_sql, SliceCheck(SLICE_TRIPS_SQL, judge)
    )
    metadata = {
        "dagster/row_count": result.slice_rows,
        "table": result.table,
        "table_rows": result.table_rows,
        "seconds": round(time.monotonic() - started, 3),
        **{f"{s}_trips": int(source.get(s, 0)) for s in SERVICES},
    }
    return metadata, judged


def build_mart_asset(
    partitions: dg.PartitionsDefinition,
    contract: TableContract,
    select_sql: Callable[[str], str],
    preview_name: str,
    preview_columns: dict[str, str],
    preview_order: str,
    description: str,
) -> dg.AssetsDefinition:
    """A monthly mart: select_sql(dataset) replaces the month, then a Markdown preview of it."""
    key = dg.AssetKey(identity.mart_key(contract.name))

    @dg.asset(
        key=key,
        group_name=identity.MARTS,
        partitions_def=partitions,
        deps=SOURCES,
        pool=WAREHOUSE_POOL,
        op_tags=WRITER_TAGS,
        code_version="1",
        automation_condition=FOLLOW_UPSTREAM,
        kinds={"duckdb", "table"},
        metadata={"dagster/column_schema": table_schema(contract)},
        check_specs=checks.specs(key, identity.MARTS, contract, partitions),
        backfill_policy=RANGE_IN_ONE_RUN,
        description=description,
    )
    def mart(context: dg.AssetExecutionContext, warehouse: Warehouse) -> Iterator:
        ds = warehouse.dataset
        # A service never loaded still gets an (empty) table, so the union query always runs.
        for c in (*(contract_for(s) for s in SERVICES), TAXI_ZONES):
            warehouse.ensure_table(c)

        def build(month: date) -> ranges.MonthDone:
            metadata, outcomes = _build(warehouse, contract, month, select_sql(ds))
            rows = warehouse.query(
                f"SELECT {', '.join(preview_columns)} FROM {ds}.{contract.name} "
                f"WHERE source_month = $month ORDER BY {preview_order} LIMIT 10",
                {"month": month},
            )
            metadata[preview_name] = dg.MetadataValue.md(
                ranges.markdown_table(list(preview_columns.values()), rows)
            )
            return ranges.MonthDone(month, metadata, outcomes)

        yield from ranges.run_months(
            context,
            key,
            partition_months(context),
            build,
            ["rows", *(f"{s} trips" for s in SERVICES)],
            lambda d: (
                d.metadata["dagster/row_count"],
                *(d.metadata[f"{s}_trips"] for s in SERVICES),
            ),
        )

    return mart


def build_mart_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_trips_by_zone(partitions), _service_summary(partitions)]


def _trips_by_zone(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    return build_mart_asset(
        partitions,
        TRIPS_BY_ZONE_MONTHLY,
        marts_sql.trips_by_zone_sql,
        "top_zones",
        {
            "service": "service",
            "pickup_borough": "borough",
            "pickup_zone": "zone",
            "trips": "trips",
            "revenue": "revenue",
        },
        "trips DESC, service, pickup_zone",
        "Table nyc_taxi.trips_by_zone_monthly: trips, passengers, revenue, tips, average distance "
        "and duration per service, month and pickup zone. Every trip of the month counts once; "
        "trips without a known zone count under Unknown.",
    )


def _service_summary(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    return build_mart_asset(
        partitions,
        SERVICE_SUMMARY_MONTHLY,
        marts_sql.service_summary_sql,
        "summary",
        {
            "service": "service",
            "trips": "trips",
            "revenue": "revenue",
            "avg_fare_per_mile": "fare/mile",
            "card_share": "card share",
        },
        "service",
        "Table nyc_taxi.service_summary_monthly: per service and month, trips, revenue, average "
        "fare per mile and the share of trips paid by card.",
    )
