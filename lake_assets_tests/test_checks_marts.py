"""Tier 2: checks evaluated with each materialization, and marts with exact aggregates."""

import csv
import gzip
import io
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from lake_assets.schemas import SERVICES
from lake_assets_tests.helpers import (
    MARTS,
    ZONES,
    failure_message,
    materialize,
    metadata,
    month_counts,
    trip_selection,
)
from lake_dev import generator

ROWS = {"yellow": 700, "green": 300, "fhv": 400}


def _checks(result) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _steps(result, event_type: str) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == event_type}


def _load_every_service(http_server, defs, month: str):
    for service in SERVICES:
        http_server.publish(service, month, ROWS[service])
    assert materialize(defs, ZONES).success
    result = materialize(defs, trip_selection() + MARTS, month)
    assert result.success
    return result


def test_good_month_passes_every_check(http_server, settings, defs):
    result = _load_every_service(http_server, defs, "2021-01")
    checks = _checks(result)
    assert len(checks) == 8 + 8 + 6 + 3 + 2
    blocking = {k: e for k, e in checks.items() if e.severity.value == "ERROR"}
    assert all(e.passed for e in blocking.values()), [
        k for k, e in blocking.items() if not e.passed
    ]
    parity = checks[("lake/yellow_tripdata", "rows_accounted_for")].metadata
    assert (parity["rows_in_source"].value, parity["rows_written"].value) == (700, 700)
    slice_check = checks[("warehouse/fhv_tripdata", "slice_matches_lake")].metadata
    assert (slice_check["warehouse_rows"].value, slice_check["lake_rows"].value) == (400, 400)
    lake = metadata(result, "lake/yellow_tripdata")
    for figure in ("pickups_in_month_share", "passenger_count_null_rate", "negative_total_share"):
        assert isinstance(lake[figure], float)


def test_empty_month_blocks_the_warehouse_and_keeps_its_load(http_server, settings, defs):
    http_server.publish("green", "2020-04", 250)
    assert materialize(defs, trip_selection("green"), "2020-04").success
    header_only = ",".join(generator.GREEN_HEADER) + "\n"
    http_server.put("green/green_tripdata_2020-04.csv.gz", generator.gzip_bytes(header_only))
    result = materialize(defs, trip_selection("green"), "2020-04")
    assert not result.success
    check = _checks(result)[("lake/green_tripdata", "month_not_empty")]
    assert (check.passed, check.severity.value, check.description) == (
        False,
        "ERROR",
        "the month has no rows",
    )
    assert "warehouse__green_tripdata" not in _steps(result, "STEP_START")
    assert "month_not_empty" in failure_message(result)
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-04": 250}


def test_stray_dates_warn_with_figures_and_still_load(http_server, settings, defs):
    src = http_server.publish("yellow", "2020-06", 1000)
    lines = generator.gzip_text(src).split("\n")
    for i in range(1, 51):  # 5% of pickups in 2088, as some real files have
        fields = lines[i].split(",")
        fields[1] = "2088" + fields[1][4:]
        lines[i] = ",".join(fields)
    http_server.put("yellow/yellow_tripdata_2020-06.csv.gz", generator.gzip_bytes("\n".join(lines)))
    result = materialize(defs, trip_selection("yellow"), "2020-06")
    assert result.success
    check = _checks(result)[("lake/yellow_tripdata", "pickups_in_month")]
    assert (check.passed, check.severity.value) == (False, "WARN")
    outside = check.metadata["outside_month"].value
    assert 50 <= outside <= 60  # the 50 made here, plus the generator's own ~0.2%
    assert check.metadata["max_pickup"].value.startswith("2088-06")
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2020-06": 1000}


def _read_gz_csv(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def _expected_marts(server_root: Path) -> tuple[dict, dict]:
    """The marts' answer, computed here from the published CSV files with plain Python."""
    with open(server_root / "misc" / "taxi_zone_lookup.csv", newline="") as f:
        zones = {int(r["LocationID"]): (r["Borough"], r["Zone"]) for r in csv.DictReader(f)}
    by_zone: dict = defaultdict(lambda: defaultdict(list))
    summary = {}
    for service in SERVICES:
        rows = _read_gz_csv(server_root / service / f"{service}_tripdata_2021-02.csv.gz")
        pu_col = "PUlocationID" if service == "fhv" else "PULocationID"
        pickup = {"yellow": "tpep_pickup_datetime", "green": "lpep_pickup_datetime"}.get(
            service, "pickup_datetime"
        )
        dropoff = {"yellow": "tpep_dropoff_datetime", "green": "lpep_dropoff_datetime"}.get(
            service, "dropOff_datetime"
        )
        fare_sum = dist_sum = 0.0
        card = known = 0
        for r in rows:
            zone = zones.get(int(r[pu_col])) if r[pu_col] else None
            g = by_zone[(service, *(zone or ("Unknown", "Unknown")))]
            g["trips"].append(1)
            seconds = (
                datetime.fromisoformat(r[dropoff]) - datetime.fromisoformat(r[pickup])
            ).total_seconds()
            g["duration"].append(seconds / 60)
            if service != "fhv":
                if r["passenger_count"]:
                    g["passengers"].append(int(r["passenger_count"]))
                g["revenue"].append(float(r["total_amount"]))
                g["tips"].append(float(r["tip_amount"]))
                g["distance"].append(float(r["trip_distance"]))
                if float(r["trip_distance"]) > 0:
                    fare_sum += float(r["fare_amount"])
                    dist_sum += float(r["trip_distance"])
                if r["payment_type"]:
                    known += 1
                    card += r["payment_type"] == "1"
        summary[service] = {
            "trips": len(rows),
            "revenue": sum(float(r["total_amount"]) for r in rows) if service != "fhv" else None,
            "fare_per_mile": fare_sum / dist_sum if service != "fhv" else None,
            "card_share": card / known if service != "fhv" else None,
        }
    return by_zone, summary


def test_marts_match_an_independent_computation(http_server, settings, defs):
    result = _load_every_service(http_server, defs, "2021-02")
    expected_zones, expected_summary = _expected_marts(http_server.root)
    import duckdb

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    rows = con.execute(
        "SELECT service, pickup_borough, pickup_zone, trips, passengers, revenue, tips, "
        "avg_distance_miles, avg_duration_minutes FROM nyc_taxi.trips_by_zone_monthly "
        "WHERE source_month = DATE '2021-02-01'"
    ).fetchall()
    assert len(rows) == len(expected_zones)
    assert sum(r[3] for r in rows) == sum(ROWS.values())  # every trip counted once
    for service, borough, zone, trips, pax, revenue, tips, dist, minutes in rows:
        g = expected_zones[(service, borough, zone)]
        assert trips == len(g["trips"])
        assert minutes == pytest.approx(sum(g["duration"]) / len(g["duration"]))
        if service == "fhv":
            assert (pax, revenue, tips, dist) == (None, None, None, None)
        else:
            # SQL semantics: a zone whose trips all lack passenger_count sums to NULL
            assert pax == (sum(g["passengers"]) if g["passengers"] else None)
            assert revenue == pytest.approx(sum(g["revenue"]), abs=0.006)
            assert tips == pytest.approx(sum(g["tips"]), abs=0.006)
            assert dist == pytest.approx(sum(g["distance"]) / len(g["distance"]))
    summary = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT service, trips, revenue, avg_fare_per_mile, card_share "
            "FROM nyc_taxi.service_summary_monthly WHERE source_month = DATE '2021-02-01'"
        ).fetchall()
    }
    con.close()
    for service, e in expected_summary.items():
        trips, revenue, fare_per_mile, card_share = summary[service]
        assert trips == e["trips"]
        if service == "fhv":
            assert (revenue, fare_per_mile, card_share) == (None, None, None)
        else:
            assert revenue == pytest.approx(e["revenue"], abs=0.006)
            assert fare_per_mile == pytest.approx(e["fare_per_mile"])
            assert card_share == pytest.approx(e["card_share"])
    top = metadata(result, "marts/trips_by_zone_monthly")["top_zones"]
    assert top.splitlines()[0] == "| service | borough | zone | trips | revenue |"
    assert len(top.splitlines()) == 12


def test_marts_replace_their_month_only(http_server, settings, defs):
    for month, n in (("2021-03", 300), ("2021-04", 200)):
        http_server.publish("yellow", month, n)
        assert materialize(defs, trip_selection("yellow") + MARTS, month).success
    # rerun March with a republished month: April's mart rows stay, March's are replaced
    http_server.publish("yellow", "2021-03", 150)
    assert materialize(defs, trip_selection("yellow") + MARTS, "2021-03").success
    import duckdb

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    got = con.execute(
        "SELECT strftime(source_month, '%Y-%m'), service, trips "
        "FROM nyc_taxi.service_summary_monthly ORDER BY 1, 2"
    ).fetchall()
    zone_trips = con.execute(
        "SELECT strftime(source_month, '%Y-%m'), sum(trips) FROM nyc_taxi.trips_by_zone_monthly "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()
    assert got == [
        ("2021-03", "fhv", 0),
        ("2021-03", "green", 0),
        ("2021-03", "yellow", 150),
        ("2021-04", "fhv", 0),
        ("2021-04", "green", 0),
        ("2021-04", "yellow", 200),
    ]
    assert zone_trips == [("2021-03", 150), ("2021-04", 200)]


def test_markdown_table():
    from lake_assets.assets.ranges import markdown_table

    assert (
        markdown_table(["a", "b"], [("x", 1234.5), (None, 7)])
        == io.StringIO("| a | b |\n|---|---|\n| x | 1,234.50 |\n|  | 7 |").getvalue()
    )


def test_a_range_of_months_builds_the_marts_in_one_run(http_server, settings, defs):
    import dagster as dg

    months = {"2020-01": 120, "2020-02": 80, "2020-03": 60}
    for month, rows in months.items():
        http_server.publish("green", month, rows)
        assert materialize(defs, trip_selection("green"), month).success
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(
        defs,
        MARTS,
        tags={
            "dagster/asset_partition_range_start": "2020-01",
            "dagster/asset_partition_range_end": "2020-03",
        },
        instance=instance,
    )
    assert result.success
    mart = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "marts/service_summary_monthly"
    ]
    assert sorted(e.partition for e in mart) == ["2020-01", "2020-02", "2020-03"]
    assert mart[0].materialization.metadata["months"].value == 3
    observations = instance.fetch_observations(
        dg.AssetKey(["marts", "service_summary_monthly"]), limit=10
    ).records
    by_month = {
        r.partition_key: r.asset_observation.metadata["green_trips"].value for r in observations
    }
    assert by_month == months
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == "marts/service_summary_monthly"
    ]
    assert (check.passed, check.description) == (True, "all 3 months pass")
    import duckdb

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    got = con.execute(
        "SELECT strftime(source_month, '%Y-%m'), trips FROM nyc_taxi.service_summary_monthly "
        "WHERE service = 'green' ORDER BY 1"
    ).fetchall()
    con.close()
    assert dict(got) == months
