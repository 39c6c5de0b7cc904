"""Where each layer keeps a month, relative to the lake root (a folder or a bucket prefix).

Folders follow asset keys: raw/yellow_tripdata/ holds what asset raw/yellow_tripdata landed.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from datetime import date

KNOWN_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".gz")


def url_suffix(url: str) -> str:
    path = urllib.parse.urlparse(url).path.lower()
    for suffix in KNOWN_SUFFIXES:
        if path.endswith(suffix):
            return suffix
    return posixpath.splitext(path)[1]


def _stem(service: str, month: date) -> str:
    return f"{service}_tripdata_{month:%Y-%m}"


def raw_trip_path(service: str, month: date, suffix: str) -> str:
    return f"raw/{service}_tripdata/{_stem(service, month)}{suffix}"


def lake_trip_path(service: str, month: date) -> str:
    return f"lake/{service}_tripdata/{_stem(service, month)}.parquet"


def rejects_path(service: str, month: date) -> str:
    return f"lake/{service}_tripdata/{_stem(service, month)}.rejects.csv"


RAW_ZONES_PATH = "raw/taxi_zones/taxi_zone_lookup.csv"
LAKE_ZONES_PATH = "lake/taxi_zones/taxi_zones.parquet"
