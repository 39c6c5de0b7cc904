"""Tier 1: lake paths come from the service and month only, never from the source's URL."""

from datetime import date

import pytest

from lake_assets import layout


def test_raw_names_by_suffix_and_candidates():
    month = date(2021, 1, 1)
    assert layout.raw_trip_paths("yellow", month) == [
        "raw/yellow_tripdata/yellow_tripdata_2021-01.csv.gz",
        "raw/yellow_tripdata/yellow_tripdata_2021-01.parquet",
        "raw/yellow_tripdata/yellow_tripdata_2021-01.csv",
    ]
    final = layout.raw_trip_path("yellow", month, ".csv.gz")
    candidate = layout.candidate_path(final)
    assert candidate == "raw/yellow_tripdata/candidate/yellow_tripdata_2021-01.csv.gz"
    assert layout.promoted_path(candidate) == final
    assert layout.promoted_path(layout.candidate_path(layout.RAW_ZONES_PATH)) == (
        layout.RAW_ZONES_PATH
    )
    with pytest.raises(ValueError, match="is not a candidate path"):
        layout.promoted_path(final)
