"""Figures of a lake file, from one aggregate DuckDB query over its Parquet. No Dagster import.

The checks judge these figures, and the lake asset records them as numeric metadata so the UI
plots them across months.
"""

from __future__ import annotations

import os
from datetime import date

import duckdb

from lake_assets import identity
from lake_assets.schemas import TableContract


def profile_trips(parquet: str | os.PathLike, contract: TableContract, month: date) -> dict:
    """Figures of one month's Parquet: rows, in-month share, bad durations, nulls, negatives."""
    cols = set(contract.column_names)
    month_end = identity.next_month(month)
    exprs = [
        "count(*) AS rows",
        f"count(*) FILTER (pickup_datetime >= DATE '{month}' AND pickup_datetime < "
        f"DATE '{month_end}') AS pickups_in_month",
        "count(*) FILTER (dropoff_datetime < pickup_datetime) AS dropoff_before_pickup",
        "count(*) FILTER (pickup_location_id IS NULL) AS pickup_location_nulls",
        "count(*) FILTER (dropoff_location_id IS NULL) AS dropoff_location_nulls",
        "min(pickup_datetime) AS min_pickup",
        "max(pickup_datetime) AS max_pickup",
    ]
    if "total_amount" in cols:
        exprs.append("count(*) FILTER (total_amount < 0) AS negative_totals")
    if "passenger_count" in cols:
        exprs.append("count(*) FILTER (passenger_count IS NULL) AS passenger_count_nulls")
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT {', '.join(exprs)} FROM read_parquet(?)", [str(parquet)])
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    finally:
        con.close()
    figures = dict(zip(names, row, strict=True))
    n = figures["rows"]

    def rate(count: int) -> float:
        return round(count / n, 6) if n else 0.0

    figures["pickups_in_month_share"] = rate(figures["pickups_in_month"]) if n else 1.0
    figures["dropoff_before_pickup_share"] = rate(figures["dropoff_before_pickup"])
    figures["pickup_location_null_rate"] = rate(figures["pickup_location_nulls"])
    figures["dropoff_location_null_rate"] = rate(figures["dropoff_location_nulls"])
    if "negative_totals" in figures:
        figures["negative_total_share"] = rate(figures["negative_totals"])
    if "passenger_count_nulls" in figures:
        figures["passenger_count_null_rate"] = rate(figures["passenger_count_nulls"])
    for key in ("min_pickup", "max_pickup"):
        figures[key] = str(figures[key]) if figures[key] is not None else ""
    return figures


def zone_figures(parquet: str | os.PathLike) -> dict:
    """Rows, distinct and null location ids, and zones without a borough."""
    con = duckdb.connect()
    try:
        rows, distinct, null_ids, null_boroughs = con.execute(
            "SELECT count(*), count(DISTINCT location_id), count(*) - count(location_id), "
            "count(*) - count(borough) FROM read_parquet(?)",
            [str(parquet)],
        ).fetchone()
    finally:
        con.close()
    return {
        "rows": rows,
        "distinct_ids": distinct,
        "null_ids": null_ids,
        "null_boroughs": null_boroughs,
    }
