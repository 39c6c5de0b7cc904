"""What a file is, from its first bytes: gzip, Parquet or plain CSV. No Dagster import.

The raw step names a landing by this, the lake step picks its converter by it, and the row
counter decides whether to inflate; one set of magic numbers for all three.
"""

from __future__ import annotations

import os

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
GZIP_CSV, PARQUET, CSV = "csv.gz", "parquet", "csv"


def sniff(head: bytes) -> str:
    """GZIP_CSV, PARQUET or CSV for a file that starts with head (its first 4 bytes or more)."""
    if head[:2] == GZIP_MAGIC:
        return GZIP_CSV
    return PARQUET if head[:4] == PARQUET_MAGIC else CSV


def of_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return sniff(f.read(4))


def is_gzip(path: str | os.PathLike) -> bool:
    return of_file(path) == GZIP_CSV


def suffix(kind: str) -> str:
    """The lake file suffix of a kind: .csv.gz, .parquet or .csv."""
    return f".{kind}"
