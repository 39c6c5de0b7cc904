"""Every data quality check, registered once: its name, description, severity, the tables it
applies to, its threshold and its outcome. No Dagster import.

The assets' check specs, the lake step's blocking list, the UI descriptions and the numeric
metadata recorded per month all derive from CHECKS. A new check is one `_register(Check(...))`
here; a table that needs another threshold says so in its contract (schemas.py).

Blocking checks (severity ERROR) guard the contract: the schema, a non-empty month, row parity
between layers; a month that fails one replaces nothing. Warnings (WARN) carry figures a user
watches across months.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from lake_assets import identity
from lake_assets.schemas import MART, TRIPS, ZONES, TableContract, arrow_schema

ERROR, WARN = "ERROR", "WARN"
ZONE_COUNT = 265


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    severity: str
    description: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """What a step knows when its checks are judged; each check reads the fields it needs."""

    contract: TableContract
    month: date | None = None
    # lake
    schema: pa.Schema | None = None
    rows_written: int = 0
    rows_rejected: int = 0
    rows_in_source: int | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)
    # warehouse
    slice_rows: int | None = None
    lake_rows: int | None = None
    # marts
    mart_trips: Mapping[str, int] = field(default_factory=dict)
    source_trips: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    layer: str  # identity.LAKE, WAREHOUSE or MARTS: the asset whose check it is
    severity: str
    description: str  # shown in the UI
    applies: Callable[[TableContract], bool]
    judge: Callable[[Evidence, float | None], Outcome]
    # The default threshold (a contract may set its own); None for exact checks.
    threshold: float | None = None
    # Numeric profile figures the check reads, recorded on each month's materialization.
    figures: tuple[str, ...] = ()

    @property
    def blocking(self) -> bool:
        return self.severity == ERROR

    def outcome(self, evidence: Evidence) -> Outcome:
        limit = (
            None
            if self.threshold is None
            else evidence.contract.threshold(self.name, self.threshold)
        )
        return self.judge(evidence, limit)


CHECKS: dict[str, Check] = {}


def _register(check: Check) -> Check:
    if check.name in CHECKS:
        raise ValueError(f"check {check.name!r} is registered twice")
    CHECKS[check.name] = check
    return check


def _kind(*kinds: str) -> Callable[[TableContract], bool]:
    return lambda c: c.kind in kinds


def _trips_with(column: str) -> Callable[[TableContract], bool]:
    return lambda c: c.kind == TRIPS and column in c.column_names


def checks_for(layer: str, contract: TableContract) -> list[Check]:
    """The checks of layer's asset for this table, blocking ones first, in registry order."""
    found = [c for c in CHECKS.values() if c.layer == layer and c.applies(contract)]
    return sorted(found, key=lambda c: not c.blocking)


def evaluate(layer: str, evidence: Evidence) -> list[Outcome]:
    return [c.outcome(evidence) for c in checks_for(layer, evidence.contract)]


def recorded_figures(layer: str, contract: TableContract) -> list[str]:
    """The profile figures the checks of layer read, which each month records as metadata."""
    return list(dict.fromkeys(f for c in checks_for(layer, contract) for f in c.figures))


def failed_blocking(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.passed and o.severity == ERROR]


# --- lake: blocking --------------------------------------------------------------------------


def _schema(e: Evidence, _: float | None) -> Outcome:
    name, contract = "schema_matches_contract", e.contract
    expected = arrow_schema(contract)
    actual = e.schema.remove_metadata()
    if actual.equals(expected):
        return Outcome(name, True, ERROR, f"{len(expected)} columns as contracted")
    want = {f.name: f for f in expected}
    have = {f.name: f for f in actual}
    problems = [f"missing {n}" for n in want if n not in have]
    problems += [f"unexpected {n}" for n in have if n not in want]
    problems += [
        f"{n}: {have[n].type}{'' if have[n].nullable else ' not null'} instead of "
        f"{want[n].type}{'' if want[n].nullable else ' not null'}"
        for n in want
        if n in have and not have[n].equals(want[n])
    ]
    if not problems and [f.name for f in actual] != [f.name for f in expected]:
        problems.append("columns out of order")
    return Outcome(
        name,
        False,
        ERROR,
        f"Parquet schema differs from the {contract.name} contract: {'; '.join(problems)}",
        {"differences": "; ".join(problems)},
    )


def _not_empty(e: Evidence, _: float | None) -> Outcome:
    rows, name = e.rows_written, "month_not_empty"
    if rows > 0:
        return Outcome(name, True, ERROR, f"{rows} rows", {"rows": rows})
    return Outcome(name, False, ERROR, "the month has no rows", {"rows": 0})


def _parity(e: Evidence, _: float | None) -> Outcome:
    source, written, rejected = e.rows_in_source, e.rows_written, e.rows_rejected
    name = "rows_accounted_for"
    meta = {"rows_in_source": source, "rows_written": written, "rows_rejected": rejected}
    if source == written + rejected:
        return Outcome(
            name,
            True,
            ERROR,
            f"{source} source rows = {written} written + {rejected} rejected",
            meta,
        )
    return Outcome(
        name,
        False,
        ERROR,
        f"{source} source rows but {written} written + {rejected} rejected: "
        f"{source - written - rejected} unaccounted for",
        meta,
    )


SCHEMA_MATCHES_CONTRACT = _register(
    Check(
        "schema_matches_contract",
        identity.LAKE,
        ERROR,
        "The Parquet schema equals the service contract.",
        _kind(TRIPS, ZONES),
        _schema,
    )
).name
NOT_EMPTY = _register(
    Check(
        "month_not_empty",
        identity.LAKE,
        ERROR,
        "The month has at least one row.",
        _kind(TRIPS),
        _not_empty,
    )
).name
ROWS_ACCOUNTED_FOR = _register(
    Check(
        "rows_accounted_for",
        identity.LAKE,
        ERROR,
        "Rows in the raw file = rows written + rows quarantined.",
        _kind(TRIPS),
        _parity,
    )
).name


# --- lake: zones -----------------------------------------------------------------------------


def _unique_ids(e: Evidence, _: float | None) -> Outcome:
    f = e.figures
    ok = f["rows"] == f["distinct_ids"] == ZONE_COUNT and f["null_ids"] == 0
    text = (
        f"{ZONE_COUNT} zones, each id once"
        if ok
        else f"{f['rows']} rows with {f['distinct_ids']} distinct location ids "
        f"({f['null_ids']} null); expected {ZONE_COUNT} unique ids"
    )
    meta = {k: f[k] for k in ("rows", "distinct_ids", "null_ids")}
    return Outcome("unique_location_ids", ok, ERROR, text, meta)


def _borough(e: Evidence, _: float | None) -> Outcome:
    n = e.figures["null_boroughs"]
    text = "every zone has a borough" if n == 0 else f"{n} zones have no borough"
    return Outcome("borough_present", n == 0, ERROR, text, {"null_boroughs": n})


UNIQUE_LOCATION_IDS = _register(
    Check(
        "unique_location_ids",
        identity.LAKE,
        ERROR,
        "265 zones, each location id exactly once.",
        _kind(ZONES),
        _unique_ids,
    )
).name
BOROUGH_PRESENT = _register(
    Check(
        "borough_present",
        identity.LAKE,
        ERROR,
        "Every zone has a borough.",
        _kind(ZONES),
        _borough,
    )
).name


# --- lake: warnings, judged on the month's profile (profile.profile_trips) --------------------


def _warn(name: str, ok: bool, good: str, bad: str, meta: dict) -> Outcome:
    return Outcome(name, ok, WARN, good if ok else bad, meta)


def _pickups_in_month(e: Evidence, limit: float | None) -> Outcome:
    p = e.figures
    share = p["pickups_in_month_share"]
    return _warn(
        "pickups_in_month",
        share >= limit,
        f"{share:.2%} of pickups fall in the month",
        f"only {share:.2%} of pickups fall in the month "
        f"(pickups from {p['min_pickup']} to {p['max_pickup']})",
        {
            "share": share,
            "outside_month": p["rows"] - p["pickups_in_month"],
            "min_pickup": p["min_pickup"],
            "max_pickup": p["max_pickup"],
            "threshold": limit,
        },
    )


def _dropoff_after_pickup(e: Evidence, limit: float | None) -> Outcome:
    p = e.figures
    share, trips = p["dropoff_before_pickup_share"], p["dropoff_before_pickup"]
    return _warn(
        "dropoff_after_pickup",
        share <= limit,
        f"{trips} trips end before they start",
        f"{trips} trips ({share:.2%}) end before they start",
        {"share": share, "trips": trips, "threshold": limit},
    )


def _location_ids(e: Evidence, limit: float | None) -> Outcome:
    p = e.figures
    worst = max(p["pickup_location_null_rate"], p["dropoff_location_null_rate"])
    return _warn(
        "location_ids_present",
        worst <= limit,
        f"location ids null in {worst:.2%} of trips at most",
        f"location ids null in {worst:.2%} of trips (threshold {limit:.0%})",
        {
            "pickup_null_rate": p["pickup_location_null_rate"],
            "dropoff_null_rate": p["dropoff_location_null_rate"],
            "threshold": limit,
        },
    )


def _negative_totals(e: Evidence, limit: float | None) -> Outcome:
    p = e.figures
    share, trips = p["negative_total_share"], p["negative_totals"]
    return _warn(
        "negative_totals",
        share <= limit,
        f"{trips} trips with a negative total",
        f"{trips} trips ({share:.2%}) have a negative total",
        {"trips": trips, "share": share, "threshold": limit},
    )


def _passenger_count(e: Evidence, limit: float | None) -> Outcome:
    rate = e.figures["passenger_count_null_rate"]
    return _warn(
        "passenger_count_present",
        rate <= limit,
        f"passenger_count null in {rate:.2%} of trips",
        f"passenger_count null in {rate:.2%} of trips (threshold {limit:.0%})",
        {"null_rate": rate, "threshold": limit},
    )


PICKUPS_IN_MONTH = _register(
    Check(
        "pickups_in_month",
        identity.LAKE,
        WARN,
        "At least 99% of pickups fall inside the partition month.",
        _kind(TRIPS),
        _pickups_in_month,
        threshold=0.99,
        figures=("pickups_in_month_share",),
    )
).name
DROPOFF_AFTER_PICKUP = _register(
    Check(
        "dropoff_after_pickup",
        identity.LAKE,
        WARN,
        "At most 0.1% of trips end before they start.",
        _kind(TRIPS),
        _dropoff_after_pickup,
        threshold=0.001,
        figures=("dropoff_before_pickup_share",),
    )
).name
LOCATION_IDS_PRESENT = _register(
    Check(
        "location_ids_present",
        identity.LAKE,
        WARN,
        "Pickup and dropoff zone ids are rarely null.",
        _kind(TRIPS),
        _location_ids,
        threshold=0.01,
        figures=("pickup_location_null_rate", "dropoff_location_null_rate"),
    )
).name
NEGATIVE_TOTALS = _register(
    Check(
        "negative_totals",
        identity.LAKE,
        WARN,
        "At most 1% of trips have a negative total_amount.",
        _trips_with("total_amount"),
        _negative_totals,
        threshold=0.01,
        figures=("negative_total_share",),
    )
).name
PASSENGER_COUNT_PRESENT = _register(
    Check(
        "passenger_count_present",
        identity.LAKE,
        WARN,
        "passenger_count is null in at most 5% of trips.",
        _trips_with("passenger_count"),
        _passenger_count,
        threshold=0.05,
        figures=("passenger_count_null_rate",),
    )
).name


# --- warehouse -------------------------------------------------------------------------------


def _slice(e: Evidence, _: float | None) -> Outcome:
    meta = {"warehouse_rows": e.slice_rows, "lake_rows": e.lake_rows}
    name = "slice_matches_lake"
    if e.slice_rows == e.lake_rows:
        return Outcome(name, True, ERROR, f"{e.slice_rows} rows for {e.month}", meta)
    return Outcome(
        name,
        False,
        ERROR,
        f"the {e.month} slice has {e.slice_rows} rows but the lake file has {e.lake_rows}",
        meta,
    )


SLICE_MATCHES_LAKE = _register(
    Check(
        "slice_matches_lake",
        identity.WAREHOUSE,
        ERROR,
        "The warehouse slice has exactly the lake file's rows.",
        _kind(TRIPS),
        _slice,
    )
).name


# --- marts -----------------------------------------------------------------------------------


def _counted_once(e: Evidence, _: float | None) -> Outcome:
    mart, source = e.mart_trips, e.source_trips
    meta = {f"{s}_mart_trips": mart.get(s, 0) for s in source}
    meta.update({f"{s}_table_trips": n for s, n in source.items()})
    wrong = [
        f"{s}: {mart.get(s, 0)} in the mart vs {n} in the table"
        for s, n in source.items()
        if mart.get(s, 0) != n
    ]
    name = "every_trip_counted_once"
    if not wrong:
        return Outcome(name, True, ERROR, "mart trips = table trips", meta)
    return Outcome(name, False, ERROR, "; ".join(wrong), meta)


EVERY_TRIP_COUNTED_ONCE = _register(
    Check(
        "every_trip_counted_once",
        identity.MARTS,
        ERROR,
        "Per service, the mart's trips equal the trip table's.",
        _kind(MART),
        _counted_once,
    )
).name
