"""Where each layer keeps a month, relative to the lake root (a folder or a bucket prefix).

Folders follow asset keys: raw/yellow_tripdata/ holds what asset raw/yellow_tripdata landed.
No path depends on the source's URL: a raw file's suffix says what its bytes are (gzip CSV,
CSV or Parquet), so switching TLC_SOURCE never makes a step look for a file nobody wrote.

A raw file lands first as a candidate (raw/<asset>/candidate/<name>); the lake step promotes it
to raw/<asset>/<name> only once it has converted and passed the blocking checks. Until then the
previous good file stays where it was, so a bad file can never replace a good one.
"""

from __future__ import annotations

import posixpath
from datetime import date

# What the raw step names a landing by its bytes (fetch.suffix_for).
RAW_SUFFIXES = (".csv.gz", ".parquet", ".csv")
CANDIDATE_DIR = "candidate"


def _stem(service: str, month: date) -> str:
    return f"{service}_tripdata_{month:%Y-%m}"


def raw_trip_path(service: str, month: date, suffix: str) -> str:
    return f"raw/{service}_tripdata/{_stem(service, month)}{suffix}"


def raw_trip_paths(service: str, month: date) -> list[str]:
    """Every name a month's promoted raw file may have, one per suffix."""
    return [raw_trip_path(service, month, s) for s in RAW_SUFFIXES]


def lake_trip_path(service: str, month: date) -> str:
    return f"lake/{service}_tripdata/{_stem(service, month)}.parquet"


def rejects_path(service: str, month: date) -> str:
    return f"lake/{service}_tripdata/{_stem(service, month)}.rejects.csv"


def candidate_path(path: str) -> str:
    """Where a raw file waits for the lake step before it replaces path."""
    folder, name = posixpath.split(path)
    return f"{folder}/{CANDIDATE_DIR}/{name}"


def promoted_path(candidate: str) -> str:
    """The inverse of candidate_path."""
    folder, name = posixpath.split(candidate)
    parent, last = posixpath.split(folder)
    if last != CANDIDATE_DIR:
        raise ValueError(f"{candidate!r} is not a candidate path")
    return f"{parent}/{name}"


RAW_ZONES_PATH = "raw/taxi_zones/taxi_zone_lookup.csv"
LAKE_ZONES_PATH = "lake/taxi_zones/taxi_zones.parquet"
