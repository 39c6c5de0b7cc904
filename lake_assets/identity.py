"""Identity: every asset key, every month and every lake path, worked out here and only here.

No Dagster import: keys are tuples of strings (definitions wrap them in dg.AssetKey), months are
the first day of the month as a date, partition keys are YYYY-MM.

Lake paths are relative to the lake root (a folder or a bucket prefix), and folders follow asset
keys: raw/yellow_tripdata/ holds what asset raw/yellow_tripdata landed.
No path depends on the source's URL: a raw file's suffix says what its bytes are (gzip CSV,
CSV or Parquet), so switching TLC_SOURCE never makes a step look for a file nobody wrote.

A raw file lands first as a candidate (raw/<asset>/candidate/<name>); the lake step promotes it
to raw/<asset>/<name> only once it has converted and passed the blocking checks. Until then the
previous good file stays where it was, so a bad file can never replace a good one. A candidate the
lake step rejects moves aside to raw/<asset>/rejected/<sha256>/<name>, kept for inspection, and
raw/<asset>/rejected/<stem>.json records which bytes were rejected, by which run and why.
"""

from __future__ import annotations

import posixpath
import re
from datetime import date

# --- asset keys: group = layer = the key's first part ---------------------------------------

RAW, LAKE, WAREHOUSE, MARTS = "raw", "lake", "warehouse", "marts"
LAYERS = (RAW, LAKE, WAREHOUSE, MARTS)
# The layers a trip file goes through, one asset each per service.
TRIP_LAYERS = (RAW, LAKE, WAREHOUSE)
ZONES = "taxi_zones"

Key = tuple[str, ...]


def trip_table(service: str) -> str:
    """The name shared by a service's assets, tables and lake folders: yellow_tripdata."""
    return f"{service}_tripdata"


def trip_key(layer: str, service: str) -> Key:
    return (layer, trip_table(service))


def zones_key(layer: str) -> Key:
    return (layer, ZONES)


def mart_key(mart: str) -> Key:
    return (MARTS, mart)


def next_layer_keys(key: Key) -> list[Key]:
    """The lake and warehouse keys built from a raw key (the same name in the next layers)."""
    return [(layer, *key[1:]) for layer in (LAKE, WAREHOUSE)]


def key_string(key: Key) -> str:
    """raw/yellow_tripdata, as the CLI's --select and the UI spell a key."""
    return "/".join(key)


def trip_selection(
    services: tuple[str, ...] | list[str], layers: tuple[str, ...] = TRIP_LAYERS
) -> list[str]:
    """Key strings of services' trip assets in layers, for --select."""
    return [key_string(trip_key(layer, s)) for s in services for layer in layers]


# --- months ----------------------------------------------------------------------------------

_MONTH_KEY = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_of(key: str) -> date:
    """2021-01 -> date(2021, 1, 1); anything else raises ValueError naming the key."""
    m = _MONTH_KEY.match(key)
    if not m:
        raise ValueError(f"{key!r} is not a month like 2021-07")
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_key(month: date) -> str:
    return f"{month:%Y-%m}"


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def next_month(month: date) -> date:
    return add_months(month, 1)


def months_between(start: date, end: date) -> list[date]:
    """First days of the months from start up to, not including, end."""
    months, current = [], date(start.year, start.month, 1)
    while current < end:
        months.append(current)
        current = next_month(current)
    return months


# --- lake paths -----------------------------------------------------------------------------

# What the raw step names a landing by its bytes (fetch.suffix_for).
RAW_SUFFIXES = (".csv.gz", ".parquet", ".csv")
CANDIDATE_DIR = "candidate"
REJECTED_DIR = "rejected"


def _stem(service: str, month: date) -> str:
    return f"{trip_table(service)}_{month_key(month)}"


def raw_trip_path(service: str, month: date, suffix: str) -> str:
    return f"{RAW}/{trip_table(service)}/{_stem(service, month)}{suffix}"


def raw_trip_paths(service: str, month: date) -> list[str]:
    """Every name a month's promoted raw file may have, one per suffix."""
    return [raw_trip_path(service, month, s) for s in RAW_SUFFIXES]


def lake_trip_path(service: str, month: date) -> str:
    return f"{LAKE}/{trip_table(service)}/{_stem(service, month)}.parquet"


def rejects_path(service: str, month: date) -> str:
    return f"{LAKE}/{trip_table(service)}/{_stem(service, month)}.rejects.csv"


def candidate_path(path: str) -> str:
    """Where a raw file waits for the lake step before it replaces path."""
    folder, name = posixpath.split(path)
    return f"{folder}/{CANDIDATE_DIR}/{name}"


def is_candidate(path: str) -> bool:
    return posixpath.basename(posixpath.dirname(path)) == CANDIDATE_DIR


def promoted_path(candidate: str) -> str:
    """The inverse of candidate_path."""
    folder, name = posixpath.split(candidate)
    parent, last = posixpath.split(folder)
    if last != CANDIDATE_DIR:
        raise ValueError(f"{candidate!r} is not a candidate path")
    return f"{parent}/{name}"


def rejected_path(candidate: str, sha256: str) -> str:
    """Where a rejected candidate is kept: under its sha256, so no rejection overwrites another."""
    folder, name = posixpath.split(promoted_path(candidate))
    return f"{folder}/{REJECTED_DIR}/{sha256}/{name}"


def rejection_record_path(raw_path: str) -> str:
    """The month's rejection record (one per raw file, whatever its suffix): what was rejected."""
    if is_candidate(raw_path):
        raw_path = promoted_path(raw_path)
    folder, name = posixpath.split(raw_path)
    stem = next((name[: -len(s)] for s in RAW_SUFFIXES if name.endswith(s)), name)
    return f"{folder}/{REJECTED_DIR}/{stem}.json"


RAW_ZONES_PATH = f"{RAW}/{ZONES}/taxi_zone_lookup.csv"
LAKE_ZONES_PATH = f"{LAKE}/{ZONES}/{ZONES}.parquet"
