"""Tier 1: the URL-template source (lake_assets/resources/source.py) against files on disk."""

import io
from datetime import date

import pytest

from lake_assets import fetch
from lake_assets.resources.source import UrlTemplateSource, file_root


@pytest.mark.parametrize(
    "template, root",
    [
        ("file:///m/{service}/{service}_tripdata_{year}-{month}.csv.gz", "file:///m/"),
        ("file:///m/misc/taxi_zone_lookup.csv", "file:///m/misc/"),
        ("https://example.org/{service}/{year}.csv.gz", None),
    ],
)
def test_file_root(template, root):
    assert file_root(template) == root


def test_trip_urls_are_formatted_with_two_digit_months(tmp_path):
    source = UrlTemplateSource(
        url_template="https://example.org/{service}/{service}_tripdata_{year}-{month}.csv.gz",
        zones_lookup_url="https://example.org/misc/taxi_zone_lookup.csv",
    )
    assert source.trip_url("green", date(2020, 3, 1)) == (
        "https://example.org/green/green_tripdata_2020-03.csv.gz"
    )
    assert source.zones_url() == "https://example.org/misc/taxi_zone_lookup.csv"


def test_file_urls_stay_below_the_templates_folder(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "yellow").mkdir(parents=True)
    (mirror / "yellow" / "yellow_tripdata_2021-01.csv").write_text("a,b\n1,2\n")
    (tmp_path / "secret.csv").write_text("a,b\n")
    source = UrlTemplateSource(
        url_template=f"file://{mirror}/{{service}}/{{service}}_tripdata_{{year}}-{{month}}.csv",
        zones_lookup_url=f"file://{mirror}/misc/taxi_zone_lookup.csv",
    )
    out = io.BytesIO()
    result = source.download(source.trip_url("yellow", date(2021, 1, 1)), out)
    assert (result.bytes, out.getvalue()) == (8, b"a,b\n1,2\n")
    probe = source.probe(source.trip_url("yellow", date(2021, 1, 1)))
    assert (probe.size, probe.etag) == (8, None)
    assert source.probe(source.trip_url("yellow", date(2021, 2, 1))) is None
    escape = f"file://{mirror}/yellow/../../secret.csv"
    with pytest.raises(fetch.SourceError, match="outside the mirror's folder"):
        source.download(escape, io.BytesIO())
