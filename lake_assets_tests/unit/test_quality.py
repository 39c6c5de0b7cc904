"""Tier 1: the check registry (pass/fail, severity, thresholds, figures) judged on real files."""

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from lake_assets import profile, quality
from lake_assets.convert import csv_to_parquet
from lake_assets.schemas import FHV, TAXI_ZONES, YELLOW, arrow_schema
from lake_dev import generator

JUN = date(2020, 6, 1)
Y_HEADER = ",".join(generator.YELLOW_HEADER)


def _yellow_row(pickup: str, dropoff: str, total: str = "11.8", pu: str = "142", pax="1") -> str:
    return f"1,{pickup},{dropoff},{pax},2.10,1,N,{pu},43,2,8,3,0.5,0,0,0.3,{total},2.5"


def _warnings(contract, figures: dict) -> dict[str, quality.Outcome]:
    evidence = quality.Evidence(contract, JUN, figures=figures)
    checks = [c for c in quality.checks_for("lake", contract) if not c.blocking]
    return {c.name: c.outcome(evidence) for c in checks}


def _one(name: str, **evidence) -> quality.Outcome:
    return quality.CHECKS[name].outcome(quality.Evidence(**evidence))


def test_schema_outcome_passes_on_the_contract_and_names_differences(tmp_path):
    ok = _one("schema_matches_contract", contract=YELLOW, schema=arrow_schema(YELLOW))
    assert (ok.passed, ok.severity) == (True, "ERROR")
    drifted = arrow_schema(YELLOW)
    i = drifted.get_field_index("vendor_id")
    drifted = drifted.set(i, pa.field("vendor_id", pa.float64()))
    drifted = drifted.remove(drifted.get_field_index("airport_fee"))
    drifted = drifted.append(pa.field("Airport_fee", pa.float64()))
    pq.write_table(drifted.empty_table(), tmp_path / "d.parquet")
    bad = _one(
        "schema_matches_contract", contract=YELLOW, schema=pq.read_schema(tmp_path / "d.parquet")
    )
    assert (bad.passed, bad.severity) == (False, "ERROR")
    assert bad.metadata["differences"] == (
        "missing airport_fee; unexpected Airport_fee; vendor_id: double instead of int64"
    )


def test_not_empty_and_parity():
    assert _one("month_not_empty", contract=YELLOW, rows_written=10).passed
    empty = _one("month_not_empty", contract=YELLOW, rows_written=0)
    assert (empty.passed, empty.severity, empty.description) == (
        False,
        "ERROR",
        "the month has no rows",
    )

    def parity(source: int, written: int, rejected: int) -> quality.Outcome:
        return _one(
            "rows_accounted_for",
            contract=YELLOW,
            rows_in_source=source,
            rows_written=written,
            rows_rejected=rejected,
        )

    assert parity(100, 99, 1).passed
    lost = parity(100, 97, 1)
    assert not lost.passed
    assert lost.description == "100 source rows but 97 written + 1 rejected: 2 unaccounted for"


def test_profile_and_warnings_on_a_month_with_stray_dates(tmp_path):
    rows = [_yellow_row("2020-06-01 10:00:00", "2020-06-01 10:20:00")] * 90
    rows += [_yellow_row("2008-12-31 23:00:00", "2008-12-31 23:20:00")] * 4  # stray year
    rows += [_yellow_row("2020-05-31 23:50:00", "2020-06-01 00:10:00")] * 2  # previous month
    rows += [_yellow_row("2020-06-03 10:00:00", "2020-06-03 09:00:00")] * 2  # ends before start
    rows += [_yellow_row("2020-06-03 10:00:00", "2020-06-03 10:30:00", total="-11.8")] * 1
    rows += [_yellow_row("2020-06-04 10:00:00", "2020-06-04 10:30:00", pu="", pax="")] * 1
    src = tmp_path / "y.csv"
    src.write_text("\n".join([Y_HEADER, *rows]) + "\n")
    out = tmp_path / "y.parquet"
    csv_to_parquet(src, out, YELLOW, JUN)
    p = profile.profile_trips(out, YELLOW, JUN)
    assert (p["rows"], p["pickups_in_month"], p["dropoff_before_pickup"]) == (100, 94, 2)
    assert (p["negative_totals"], p["pickup_location_nulls"], p["passenger_count_nulls"]) == (
        1,
        1,
        1,
    )
    assert (p["min_pickup"], p["max_pickup"]) == ("2008-12-31 23:00:00", "2020-06-04 10:00:00")
    outcomes = _warnings(YELLOW, p)
    assert {n: (o.passed, o.severity) for n, o in outcomes.items()} == {
        "pickups_in_month": (False, "WARN"),
        "dropoff_after_pickup": (False, "WARN"),
        "location_ids_present": (True, "WARN"),
        "negative_totals": (True, "WARN"),
        "passenger_count_present": (True, "WARN"),
    }
    assert outcomes["pickups_in_month"].metadata["share"] == 0.94
    assert outcomes["pickups_in_month"].metadata["outside_month"] == 6
    assert outcomes["dropoff_after_pickup"].description == "2 trips (2.00%) end before they start"
    assert outcomes["location_ids_present"].metadata["pickup_null_rate"] == 0.01


def test_fhv_has_no_money_or_passenger_checks(tmp_path):
    src = generator.write_month("fhv", JUN, 2000, tmp_path / "f.csv.gz")
    csv_to_parquet(src, tmp_path / "f.parquet", FHV, JUN)
    p = profile.profile_trips(tmp_path / "f.parquet", FHV, JUN)
    warnings = [c for c in quality.checks_for("lake", FHV) if not c.blocking]
    names = [c.outcome(quality.Evidence(FHV, JUN, figures=p)).name for c in warnings]
    assert (
        names
        == [c.name for c in warnings]
        == [
            "pickups_in_month",
            "dropoff_after_pickup",
            "location_ids_present",
        ]
    )
    # generated fhv months leave ~60% of pickup zones blank: under the loose fhv threshold
    assert 0.5 < p["pickup_location_null_rate"] < 0.7


def test_zone_outcomes(tmp_path, samples):
    good = tmp_path / "z.parquet"
    csv_to_parquet(samples / "taxi+_zone_lookup.csv", good, TAXI_ZONES, None)

    def zones(path) -> list[quality.Outcome]:
        figures = profile.zone_figures(path)
        return [
            o
            for o in quality.evaluate(
                "lake", quality.Evidence(TAXI_ZONES, schema=pq.read_schema(path), figures=figures)
            )
            if o.name != "schema_matches_contract"
        ]

    assert [(o.name, o.passed) for o in zones(good)] == [
        ("unique_location_ids", True),
        ("borough_present", True),
    ]
    text = (samples / "taxi+_zone_lookup.csv").read_text().replace('"EWR","Newark', ',"Newark')
    text = text.replace('\n2,"Queens"', '\n1,"Queens"')
    (tmp_path / "bad.csv").write_text(text)
    csv_to_parquet(tmp_path / "bad.csv", tmp_path / "bad.parquet", TAXI_ZONES, None)
    unique, borough = zones(tmp_path / "bad.parquet")
    assert (unique.passed, borough.passed) == (False, False)
    assert unique.description == (
        "265 rows with 264 distinct location ids (0 null); expected 265 unique ids"
    )
    assert borough.description == "1 zones have no borough"


def test_counted_once():
    from lake_assets.schemas import TRIPS_BY_ZONE_MONTHLY

    def counted(mart: dict, source: dict) -> quality.Outcome:
        return _one(
            "every_trip_counted_once",
            contract=TRIPS_BY_ZONE_MONTHLY,
            mart_trips=mart,
            source_trips=source,
        )

    assert counted({"yellow": 5, "fhv": 2}, {"yellow": 5, "fhv": 2}).passed
    bad = counted({"yellow": 6}, {"yellow": 5, "fhv": 0})
    assert not bad.passed
    assert bad.description == "yellow: 6 in the mart vs 5 in the table"


def test_the_registry_is_the_one_list_of_checks():
    from lake_assets.schemas import GREEN, SERVICE_SUMMARY_MONTHLY, TableContract

    names = lambda layer, contract: [c.name for c in quality.checks_for(layer, contract)]  # noqa: E731
    assert names("lake", YELLOW) == [
        "schema_matches_contract",
        "month_not_empty",
        "rows_accounted_for",
        "pickups_in_month",
        "dropoff_after_pickup",
        "location_ids_present",
        "negative_totals",
        "passenger_count_present",
    ]
    assert names("lake", TAXI_ZONES) == [
        "schema_matches_contract",
        "unique_location_ids",
        "borough_present",
    ]
    assert names("warehouse", GREEN) == ["slice_matches_lake"]
    assert names("marts", SERVICE_SUMMARY_MONTHLY) == ["every_trip_counted_once"]
    assert all(c.description for c in quality.CHECKS.values())
    # A new service's contract needs no entry anywhere else: the defaults apply.
    new = TableContract("taxi_tripdata", YELLOW.columns, "a new service")
    assert names("lake", new) == names("lake", YELLOW)
    assert FHV.threshold("location_ids_present", 0.01) == 0.95
    assert new.threshold("location_ids_present", 0.01) == 0.01
    assert quality.recorded_figures("lake", FHV) == [
        "pickups_in_month_share",
        "dropoff_before_pickup_share",
        "pickup_location_null_rate",
        "dropoff_location_null_rate",
    ]
