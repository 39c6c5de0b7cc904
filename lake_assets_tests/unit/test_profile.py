"""Tier 1: the figures of a lake file, on the real zone lookup and a generated month."""

from datetime import date

from lake_assets import profile
from lake_assets.convert import csv_to_parquet
from lake_assets.schemas import GREEN, TAXI_ZONES
from lake_dev import generator


def test_zone_figures_of_the_real_lookup(samples, tmp_path):
    out = tmp_path / "z.parquet"
    csv_to_parquet(samples / "taxi+_zone_lookup.csv", out, TAXI_ZONES, None)
    assert profile.zone_figures(out) == {
        "rows": 265,
        "distinct_ids": 265,
        "null_ids": 0,
        "null_boroughs": 0,
    }


def test_trip_figures_count_exactly(tmp_path):
    month = date(2021, 2, 1)
    src = generator.write_month("green", month, 500, tmp_path / "g.csv.gz")
    csv_to_parquet(src, tmp_path / "g.parquet", GREEN, month)
    p = profile.profile_trips(tmp_path / "g.parquet", GREEN, month)
    assert p["rows"] == 500
    assert 0 <= p["pickups_in_month"] <= 500
    assert p["pickups_in_month_share"] == round(p["pickups_in_month"] / 500, 6)
    assert "negative_total_share" in p and "passenger_count_null_rate" in p
