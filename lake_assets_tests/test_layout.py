"""Tier 1: lake paths come from the service and month only, never from the source's URL."""

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
