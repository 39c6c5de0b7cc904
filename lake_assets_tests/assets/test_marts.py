"""Tier 2: marts/* against an independent computation."""

import csv
import gzip
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from lake_assets.schemas import SERVICES
from lake_assets_tests.helpers import (
    MARTS,
    SERVICE_ROWS,
    load_every_service,
    materialize,
    metadata,
    trip_selection,
)


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
    result = load_every_service(http_server, defs, "2021-02")
    expected_zones, expected_summary = _expected_marts(http_server.root)
    import duckdb

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    rows = con.execute(
        "SELECT service, pickup_borough, pickup_zone, trips, passengers, revenue, tips, "
        "avg_distance_miles, avg_duration_minutes FROM nyc_taxi.trips_by_zone_monthly "
        "WHERE source_month = DATE '2021-02-01'"
    ).fetchall()
    assert len(rows) == len(expected_zones)
    assert sum(r[3] for r in rows) == sum(SERVICE_ROWS.values())  # every trip counted once
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


def test_a_mart_month_failing_its_check_never_replaces_the_good_one(
    http_server, settings, monkeypatch
):
    """every_trip_counted_once is judged inside the transaction: a mart query that counts a
    trip twice fails the step and the table keeps the month it had."""
    from lake_assets import marts_sql
    from lake_assets.definitions import build_definitions
    from lake_assets_tests.helpers import failure_message, summary_trips

    load_every_service(http_server, build_definitions(settings), "2021-02")
    good = marts_sql.service_summary_sql
    # A bug that counts every trip twice.
    monkeypatch.setattr(
        marts_sql,
        "service_summary_sql",
        lambda schema: good(schema).replace("count(*) AS trips", "count(*) * 2 AS trips"),
    )
    broken = build_definitions(settings)
    result = materialize(broken, ["marts/service_summary_monthly"], "2021-02")
    assert not result.success
    assert "blocking check every_trip_counted_once failed" in failure_message(result)
    assert summary_trips(settings.duckdb_path, "2021-02") == SERVICE_ROWS
