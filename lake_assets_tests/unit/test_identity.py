"""Tier 1: identity: keys, months and lake paths (never from the source's URL)."""

from datetime import date

import pytest

from lake_assets import identity


def test_raw_names_by_suffix_and_candidates():
    month = date(2021, 1, 1)
    assert identity.raw_trip_paths("yellow", month) == [
        "raw/yellow_tripdata/yellow_tripdata_2021-01.csv.gz",
        "raw/yellow_tripdata/yellow_tripdata_2021-01.parquet",
        "raw/yellow_tripdata/yellow_tripdata_2021-01.csv",
    ]
    final = identity.raw_trip_path("yellow", month, ".csv.gz")
    candidate = identity.candidate_path(final)
    assert candidate == "raw/yellow_tripdata/candidate/yellow_tripdata_2021-01.csv.gz"
    assert identity.promoted_path(candidate) == final
    assert identity.promoted_path(identity.candidate_path(identity.RAW_ZONES_PATH)) == (
        identity.RAW_ZONES_PATH
    )
    with pytest.raises(ValueError, match="is not a candidate path"):
        identity.promoted_path(final)


def test_keys_are_spelled_once():
    assert identity.trip_key(identity.RAW, "yellow") == ("raw", "yellow_tripdata")
    assert identity.zones_key(identity.WAREHOUSE) == ("warehouse", "taxi_zones")
    assert identity.mart_key("service_summary_monthly") == ("marts", "service_summary_monthly")
    assert identity.next_layer_keys(("raw", "fhv_tripdata")) == [
        ("lake", "fhv_tripdata"),
        ("warehouse", "fhv_tripdata"),
    ]
    assert identity.trip_selection(["green"]) == [
        "raw/green_tripdata",
        "lake/green_tripdata",
        "warehouse/green_tripdata",
    ]


def test_month_arithmetic():
    assert identity.month_of("2021-12") == date(2021, 12, 1)
    assert identity.month_key(date(2021, 3, 1)) == "2021-03"
    assert identity.next_month(date(2021, 12, 1)) == date(2022, 1, 1)
    assert identity.add_months(date(2021, 1, 1), -13) == date(2019, 12, 1)
    assert identity.months_between(date(2020, 11, 1), date(2021, 2, 1)) == [
        date(2020, 11, 1),
        date(2020, 12, 1),
        date(2021, 1, 1),
    ]
    for bad in ("2021-13", "2021-1", "21-01", "2021-01-01"):
        with pytest.raises(ValueError, match="is not a month like 2021-07"):
            identity.month_of(bad)
