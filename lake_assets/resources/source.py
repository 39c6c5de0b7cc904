"""The public TLC trip files, addressed by a URL template (http(s):// or file://)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import date
from typing import BinaryIO

from lake_assets import fetch
from lake_assets.resources.base import TripSource


def file_root(url_or_template: str) -> str | None:
    """For a file:// template, the folder its fixed part names (every formatted URL must stay
    below it); None for other schemes."""
    if not url_or_template.startswith("file://"):
        return None
    fixed = url_or_template.split("{", 1)[0]
    return fixed if fixed.endswith("/") else posixpath.dirname(fixed) + "/"


class UrlTemplateSource(TripSource):
    """TLC_SOURCE_URL with {service}, {year} and {month} (two digits); TLC_ZONES_URL."""

    url_template: str
    zones_lookup_url: str
    timeout_seconds: float = 60.0
    # Overall seconds one download may take; None: derived from its size (fetch.deadline_for).
    deadline_seconds: float | None = None

    def trip_url(self, service: str, month: date) -> str:
        return self.url_template.format(service=service, year=f"{month:%Y}", month=f"{month:%m}")

    def zones_url(self) -> str:
        return self.zones_lookup_url

    def _root(self, url: str) -> str | None:
        zones = url == self.zones_lookup_url
        return file_root(self.zones_lookup_url if zones else self.url_template)

    def download(
        self,
        url: str,
        out: BinaryIO,
        etag: str | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> fetch.FetchResult:
        return fetch.download(
            url,
            out,
            self.timeout_seconds,
            etag,
            deadline=self.deadline_seconds,
            file_root=self._root(url),
            progress=progress,
        )

    def probe(self, url: str) -> fetch.Probe | None:
        return fetch.probe(url, timeout=self.timeout_seconds, file_root=self._root(url))
