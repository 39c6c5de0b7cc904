"""The mart queries, written once from the schema contracts.

No Dagster import. Each query reads one month (parameter $month, a DATE) from the warehouse
trip tables and returns the mart's columns in contract order. They use only portable SQL: plain
aggregates, CASE, LEFT JOIN, UNION ALL, and a timestamp difference in seconds built in one place
(duration_seconds), so another engine's dialect can be produced from them, not kept as a copy.
"""

from __future__ import annotations

from lake_assets.schemas import SERVICES, TableContract, contract_for


def _has(contract: TableContract, column: str) -> bool:
    return column in contract.column_names


def _or_null(contract: TableContract, expr: str, column: str, sql_type: str) -> str:
    return expr if _has(contract, column) else f"CAST(NULL AS {sql_type})"


def duration_seconds(start: str, end: str) -> str:
    return f"date_diff('second', {start}, {end})"


def trips_by_zone_sql(schema: str) -> str:
    parts = []
    for service in SERVICES:
        c = contract_for(service)
        parts.append(
            f"""SELECT
    '{service}' AS service,
    t.source_month,
    COALESCE(z.borough, 'Unknown') AS pickup_borough,
    COALESCE(z.zone, 'Unknown') AS pickup_zone,
    count(*) AS trips,
    {_or_null(c, "sum(t.passenger_count)", "passenger_count", "BIGINT")} AS passengers,
    {_or_null(c, "round(sum(t.total_amount), 2)", "total_amount", "DOUBLE")} AS revenue,
    {_or_null(c, "round(sum(t.tip_amount), 2)", "tip_amount", "DOUBLE")} AS tips,
    {_or_null(c, "avg(t.trip_distance)", "trip_distance", "DOUBLE")} AS avg_distance_miles,
    avg({duration_seconds("t.pickup_datetime", "t.dropoff_datetime")}) / 60.0
        AS avg_duration_minutes
FROM {schema}.{c.name} AS t
LEFT JOIN {schema}.taxi_zones AS z ON z.location_id = t.pickup_location_id
WHERE t.source_month = $month
GROUP BY t.source_month, COALESCE(z.borough, 'Unknown'), COALESCE(z.zone, 'Unknown')"""
        )
    return "\nUNION ALL\n".join(parts)


def service_summary_sql(schema: str) -> str:
    parts = []
    for service in SERVICES:
        c = contract_for(service)
        fare_per_mile = (
            "sum(CASE WHEN trip_distance > 0 THEN fare_amount END)"
            " / NULLIF(sum(CASE WHEN trip_distance > 0 THEN trip_distance END), 0)"
        )
        card = "avg(CASE WHEN payment_type = 1 THEN 1.0 WHEN payment_type IS NOT NULL THEN 0.0 END)"
        parts.append(
            f"""SELECT
    '{service}' AS service,
    CAST($month AS DATE) AS source_month,
    count(*) AS trips,
    {_or_null(c, "round(sum(total_amount), 2)", "total_amount", "DOUBLE")} AS revenue,
    {fare_per_mile if _has(c, "trip_distance") else "CAST(NULL AS DOUBLE)"} AS avg_fare_per_mile,
    {card if _has(c, "payment_type") else "CAST(NULL AS DOUBLE)"} AS card_share
FROM {schema}.{c.name}
WHERE source_month = $month"""
        )
    return "\nUNION ALL\n".join(parts)


def trips_per_service_sql(schema: str) -> str:
    """Trips of the month in each warehouse table, to check a mart counted each trip once."""
    return "\nUNION ALL\n".join(
        f"SELECT '{s}' AS service, count(*) AS trips FROM {schema}.{contract_for(s).name} "
        "WHERE source_month = $month"
        for s in SERVICES
    )
