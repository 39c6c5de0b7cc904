"""Landed files -> the contract's Parquet. No Dagster import.

`csv_source` converts CSV (plain or gzip), `parquet_source` the TLC's Parquet; `common` holds
what both share. `to_parquet` picks the converter from the file's first bytes.
"""

from __future__ import annotations

import os
from datetime import date

from lake_assets import formats
from lake_assets.convert.common import (
    BAD_ROWS_MODES,
    DEFAULT_MEMORY_LIMIT,
    MAX_LINE_BYTES,
    REJECTS_HEADER,
    BadInputError,
    ConversionResult,
    LimitExceeded,
    Reject,
    map_header,
    write_rejects,
)
from lake_assets.convert.csv_source import csv_to_parquet, read_header, select_sql
from lake_assets.convert.parquet_source import parquet_to_parquet
from lake_assets.schemas import TableContract

__all__ = [
    "BAD_ROWS_MODES",
    "DEFAULT_MEMORY_LIMIT",
    "REJECTS_HEADER",
    "MAX_LINE_BYTES",
    "BadInputError",
    "ConversionResult",
    "LimitExceeded",
    "Reject",
    "csv_to_parquet",
    "map_header",
    "parquet_to_parquet",
    "read_header",
    "select_sql",
    "to_parquet",
    "write_rejects",
]


def to_parquet(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    contract: TableContract,
    month: date | None,
    **kwargs,
) -> ConversionResult:
    """Convert a landed file, CSV or Parquet, to the contract's Parquet."""
    is_parquet = formats.of_file(src) == formats.PARQUET
    convert = parquet_to_parquet if is_parquet else csv_to_parquet
    return convert(src, dest, contract, month, **kwargs)
