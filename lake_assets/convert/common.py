"""What both converters share: the error a bad file raises, the rejects it leaves, the DuckDB
session they stream through and the column mapping onto a contract. No Dagster import."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from lake_assets.schemas import Column, TableContract

BAD_ROWS_MODES = ("fail", "quarantine")


# Enough for the reader's batches and Parquet row groups; DuckDB spills past it rather than grow.
DEFAULT_MEMORY_LIMIT = "384MB"


REJECTS_HEADER = ["line", "column", "value", "error", "raw_line"]


_NON_INTEGRAL = "lake_assets:non_integral:"


def _parquet_options(kv_metadata: dict[str, str] | None) -> str:
    """COPY options: zstd, and key-value pairs in the footer (what the file was built from)."""
    kv = ""
    if kv_metadata:
        pairs = ", ".join(f"{_q(k)}: {_lit(v)}" for k, v in kv_metadata.items())
        kv = f", KV_METADATA {{{pairs}}}"
    return f"(FORMAT parquet, COMPRESSION zstd{kv})"


class BadInputError(ValueError):
    """The file does not fit the contract. Names the file, line, column and value."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column
        self.value = value


class LimitExceeded(BadInputError):
    """Untrusted bytes past a bound: named with the file, the line and the limit."""


# No TLC record comes near this (a trip is a few hundred bytes): a longer line, the header
# included, is not a trip file (or a quote left open), and reading it whole would let one line
# take the worker's memory.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Reject:
    line: int
    column: str
    value: str
    error: str
    raw_line: str


@dataclass
class ConversionResult:
    rows_written: int
    rows_rejected: int
    header: list[str]
    missing_columns: list[str]
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.rows_written + self.rows_rejected


def map_header(
    header: list[str], contract: TableContract, name: str, csv_header: bool = True
) -> list[tuple[str, str | None]]:
    """Pair each source column with the contract column it fills (None: an empty trailing header).

    Raises BadInputError for an unknown or duplicated column: silently dropping a column the
    contract does not know would lose data. csv_header=False: the names come from a Parquet
    schema, which has no line to point at.
    """
    by_source = contract.source_map()
    pairs: list[tuple[str, str | None]] = []
    seen: dict[str, str] = {}
    line = 1 if csv_header else None
    for idx, src in enumerate(header):
        if csv_header and src == "" and idx == len(header) - 1 and idx > 0:
            # "a,b," headers: the rows carry one more, always empty, field.
            pairs.append((f"_trailing_{idx}", None))
            continue
        where = f"{name}: {'line 1, ' if csv_header else ''}column {idx + 1}"
        col = by_source.get(src.lower())
        if col is None or col.name == "source_month":
            raise BadInputError(
                f"{where}: unknown column {src!r}; the {contract.name} contract has "
                f"{', '.join(contract.column_names[:-1])}",
                file=name,
                line=line,
                column=src,
                value=src,
            )
        if col.name in seen:
            raise BadInputError(
                f"{where}: {src!r} maps to {col.name!r}, which {seen[col.name]!r} already fills",
                file=name,
                line=line,
                column=src,
                value=src,
            )
        seen[col.name] = src
        pairs.append((src, col.name))
    return pairs


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _whole_number(x: str) -> str:
    """SQL: the DOUBLE expression x holds a whole number that fits a BIGINT (null for null).

    No isfinite(): the bound already fails for infinities, and for NaN, which DuckDB orders
    above every number; the test costs a tenth of the parse on a 7.5M-row month.
    """
    return f"({x} = trunc({x}) AND abs({x}) < 9.0e18)"


@contextmanager
def _spill_folder(parent: str | None) -> Iterator[str]:
    if parent:
        # The caller's scratch folder (locked, and removed by the next step if this one dies).
        path = Path(parent) / "duckdb_spill"
        path.mkdir(exist_ok=True)
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="lake_assets_duckdb_") as d:
        yield d


@contextmanager
def _session(
    memory_limit: str, threads: int | None, spill_dir: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that spills to a private folder (spill_dir) past memory_limit."""
    with _spill_folder(spill_dir) as spill:
        # Insertion order is kept so the Parquet rows follow the file's lines.
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "temp_directory": spill,
                "preserve_insertion_order": True,
            }
        )
        try:
            con.execute("SET enable_progress_bar = false")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            yield con
        finally:
            con.close()


def _constant_column(col: Column, month: date | None, contract: TableContract) -> str:
    """source_month (the partition's month), or NULL for a column the source lacks."""
    if col.name != "source_month":
        return f"CAST(NULL AS {col.duckdb_type}) AS {_q(col.name)}"
    if month is None:
        raise ValueError(f"{contract.name} needs a partition month for source_month")
    return f"DATE {_lit(month.isoformat())} AS {_q(col.name)}"


def _cleanup(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _wrap_duckdb_error(e: duckdb.Error, name: str) -> BadInputError:
    text = str(e)
    m = re.search(r"Line: (\d+)", text)
    line = int(m.group(1)) if m else None
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    where = f"{name}: line {line}" if line else name
    return BadInputError(f"{where}: {first}", file=name, line=line)


def write_rejects(rejects: list[Reject], path: str | os.PathLike) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(REJECTS_HEADER)
        for r in rejects:
            w.writerow([r.line, r.column, r.value, r.error, r.raw_line])
