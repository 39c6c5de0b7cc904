"""Tier 2: warehouse/* materialized for real: a month replaced in one transaction."""

from lake_assets_tests.helpers import (
    materialize,
    month_counts,
    trip_selection,
)


def test_rerun_replaces_only_its_month(http_server, settings, defs):
    http_server.publish("yellow", "2021-01", 1000)
    http_server.publish("yellow", "2021-02", 1200)
    for month in ["2021-01", "2021-02"]:
        assert materialize(defs, trip_selection("yellow"), month).success
    before = month_counts(settings.duckdb_path, "yellow_tripdata")
    assert before == {"2021-01": 1000, "2021-02": 1200}
    # The same month twice: same count, never doubled.
    assert materialize(defs, trip_selection("yellow"), "2021-01").success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == before
    # A republished month replaces its slice; the neighbour is untouched.
    http_server.publish("yellow", "2021-01", 900)
    assert materialize(defs, trip_selection("yellow"), "2021-01").success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {
        "2021-01": 900,
        "2021-02": 1200,
    }
