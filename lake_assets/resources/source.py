"""The public TLC trip files, addressed by a URL template (http(s):// or file://)."""

from __future__ import annotations

from datetime import date
from typing import BinaryIO

from lake_assets import fetch
from lake_assets.resources.base import TripSource


class UrlTemplateSource(TripSource):
    """TLC_SOURCE_URL with {service}, {year} and {month} (two digits); TLC_ZONES_URL."""

    url_template: str
    zones_lookup_url: str
    timeout_seconds: float = 60.0

    def trip_url(self, service: str, month: date) -> str:
        return self.url_template.format(service=service, year=f"{month:%Y}", month=f"{month:%m}")

    def zones_url(self) -> str:
        return self.zones_lookup_url

    def download(
        self,
        url: str,
        out: BinaryIO,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> fetch.FetchResult:
        return fetch.download(url, out, self.timeout_seconds, etag, last_modified)

    def probe(self, url: str) -> fetch.Probe | None:
        return fetch.probe(url, timeout=self.timeout_seconds)
