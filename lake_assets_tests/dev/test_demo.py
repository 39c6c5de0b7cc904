"""The demo's summary reads through the resources."""

from lake_assets_tests.helpers import (
    MARTS,
    ZONES,
    materialize,
    trip_selection,
)


def test_demo_summary_reads_through_the_resources(http_server, settings, defs):
    from lake_dev import demo

    http_server.publish("green", "2021-01", 250)
    assert materialize(defs, ZONES).success
    assert materialize(defs, trip_selection("green") + MARTS, "2021-01").success
    text = demo.summary(settings)
    assert text.splitlines()[0] == f"warehouse {settings.duckdb_path}"
    assert "  nyc_taxi.green_tripdata      2021-01        250" in text
    assert "  nyc_taxi.taxi_zones          -              265" in text
    assert "  lake/green_tripdata/green_tripdata_2021-01.parquet  (" in text
    top = demo.top_zones(settings, "2021-01")
    assert "  green       250 trips, revenue " in top
