"""Tier 1: secrets out of URLs before they are shown (lake_assets/redaction.py)."""

import pytest

from lake_assets.redaction import redact_url, redact_urls


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "https://user:pa55@mirror.example/yellow/y.csv.gz",
            "https://<redacted>@mirror.example/yellow/y.csv.gz",
        ),
        (
            "https://acct.blob.core.windows.net/c/y.csv.gz?sv=2022-11-02&sig=abc%2Bdef&se=x",
            "https://acct.blob.core.windows.net/c/y.csv.gz?sv=2022-11-02&sig=<redacted>&se=x",
        ),
        (
            "https://b.s3.amazonaws.com/y.csv.gz?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00",
            "https://b.s3.amazonaws.com/y.csv.gz?X-Amz-Credential=<redacted>"
            "&X-Amz-Signature=<redacted>",
        ),
        (
            "https://storage.googleapis.com/b/y.csv.gz?X-Goog-Signature=1&token=t&key=k&page=2",
            "https://storage.googleapis.com/b/y.csv.gz?X-Goog-Signature=<redacted>"
            "&token=<redacted>&key=<redacted>&page=2",
        ),
        (
            "https://d37ci6vzurychx.cloudfront.net/trip-data/{service}_tripdata_{year}-{month}.parquet",
            "https://d37ci6vzurychx.cloudfront.net/trip-data/{service}_tripdata_{year}-{month}.parquet",
        ),
        ("file:///data/mirror/y.csv.gz", "file:///data/mirror/y.csv.gz"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_urls_in_a_sentence():
    text = "http://u:p@h/x.csv.gz?sig=s: HTTP 503 Service Unavailable"
    assert (
        redact_urls(text)
        == "http://<redacted>@h/x.csv.gz?sig=<redacted>: HTTP 503 Service Unavailable"
    )
