"""CSV (plain or gzip) -> typed Parquet with one fixed schema per service, streamed through DuckDB.

No Dagster import. DuckDB's CSV reader parses in record batches and its Parquet writer flushes row
groups as it goes, so memory stays flat however large the month is; its rejects table names the
line, column and raw text of every row that does not fit, which is what our errors quote.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from lake_assets import formats
from lake_assets.convert.common import (
    _NON_INTEGRAL,
    BAD_ROWS_MODES,
    DEFAULT_MEMORY_LIMIT,
    MAX_LINE_BYTES,
    BadInputError,
    ConversionResult,
    LimitExceeded,
    Reject,
    _cleanup,
    _constant_column,
    _lit,
    _parquet_options,
    _q,
    _session,
    _whole_number,
    _wrap_duckdb_error,
    map_header,
)
from lake_assets.schemas import TableContract


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if formats.is_gzip(path) else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def read_header(path: str | os.PathLike, name: str) -> list[str]:
    """The header's column names, reading (and inflating) at most MAX_LINE_BYTES of the file."""
    try:
        with gzip.open(path, "rb") if formats.is_gzip(path) else open(path, "rb") as raw:
            head = raw.read(MAX_LINE_BYTES + 1)
    except (EOFError, OSError, gzip.BadGzipFile) as e:
        raise BadInputError(f"{name}: cannot read the header: {e}", file=name, line=1) from e
    if not head:
        raise BadInputError(
            f"{name}: line 1: the file is empty (no header line)", file=name, line=1
        )
    line, newline, _ = head.partition(b"\n")
    if not newline and len(head) > MAX_LINE_BYTES:
        raise LimitExceeded(
            f"{name}: line 1 is longer than {MAX_LINE_BYTES:,} bytes (the limit for one "
            "record): not a trip file, or a field with an unclosed quote",
            file=name,
            line=1,
        )
    first = next(csv.reader([line.decode("utf-8", errors="replace").rstrip("\r")]), [])
    if first and first[0].startswith("\ufeff"):
        first[0] = first[0][1:]
    return [h.strip() for h in first]


def _reader_type(contract_type: str) -> str:
    # Integers are parsed as DOUBLE and checked below: DuckDB's integer parser accepts "2.5" and
    # rounds it, which would silently change an id. "264.0" (pandas-written ids) stays accepted.
    return {"int64": "DOUBLE", "float64": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMP"}[
        contract_type
    ]


def _int_expr(src: str) -> str:
    # The common case first: a null only reaches the second branch.
    s = _q(src)
    return (
        f"CASE WHEN {_whole_number(s)} THEN CAST({s} AS BIGINT) "
        f"WHEN {s} IS NULL THEN NULL "
        f"ELSE error({_lit(_NON_INTEGRAL + src)}) END"
    )


def _int_ok(src: str) -> str:
    s = _q(src)
    return f"({s} IS NULL OR {_whole_number(s)})"


@dataclass
class _Plan:
    read_csv: str
    select: str
    int_sources: list[str]
    missing: list[str]
    # Source column -> the contract type it fills, as DuckDB names it.
    types: dict[str, str]

    @property
    def sql(self) -> str:
        return f"SELECT\n  {self.select}\nFROM {self.read_csv}"


def _plan(
    path: str, pairs: list[tuple[str, str | None]], contract: TableContract, month: date | None
) -> _Plan:
    by_target = {target: src for src, target in pairs if target is not None}
    reader_cols = []
    for src, target in pairs:
        rtype = "VARCHAR" if target is None else _reader_type(contract.column(target).type)
        reader_cols.append(f"{_lit(src)}: {_lit(rtype)}")
    compression = "gzip" if formats.is_gzip(path) else "none"
    read_csv = (
        f"read_csv({_lit(path)}, header=true, auto_detect=false, delim=',', quote='\"', "
        f"escape='\"', nullstr='', compression={_lit(compression)}, "
        f"max_line_size={MAX_LINE_BYTES}, "
        f"columns={{{', '.join(reader_cols)}}}, store_rejects=true, "
        "rejects_table='csv_rejects', rejects_scan='csv_reject_scans', null_padding=false)"
    )
    exprs, int_sources, missing = [], [], []
    for col in contract.columns:
        src = by_target.get(col.name)
        if src is None:
            missing += [col.name] if col.name != "source_month" else []
            exprs.append(_constant_column(col, month, contract))
        elif col.type == "int64":
            int_sources.append(src)
            exprs.append(f"{_int_expr(src)} AS {_q(col.name)}")
        else:
            exprs.append(f"{_q(src)} AS {_q(col.name)}")
    types = {src: contract.column(t).duckdb_type for src, t in pairs if t is not None}
    return _Plan(read_csv, ",\n  ".join(exprs), int_sources, missing, types)


def _duckdb_rejects(
    con: duckdb.DuckDBPyConnection, header: list[str], types: dict[str, str]
) -> list[Reject]:
    """One Reject per bad line: a cut-off row is reported once, as a field-count error.

    types: the contract's DuckDB type of each source column, which the error names (the reader
    parses integers as DOUBLE, an implementation detail a user should not have to decode)."""
    rows = con.execute(
        """
        SELECT line, column_idx, column_name, error_type, error_message, csv_line
        FROM csv_rejects
        QUALIFY row_number() OVER (
            PARTITION BY line
            ORDER BY
                CASE WHEN error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS') THEN 0 ELSE 1 END,
                     column_idx
        ) = 1
        ORDER BY line
        """
    ).fetchall()
    rejects = []
    for line, column_idx, column_name, error_type, message, csv_line in rows:
        raw = (csv_line or "").strip("\r\n")
        fields = next(csv.reader([raw]), [])
        if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            error = f"expected {len(header)} fields, found {len(fields)}"
            rejects.append(Reject(int(line), "", raw, error, raw))
            continue
        value = fields[column_idx - 1] if 0 < column_idx <= len(fields) else ""
        m = re.search(r"to '([A-Z]+)'", message or "")
        target = types.get(column_name) or (m.group(1) if m else "its type")
        error = f"cannot parse {value!r} as {target}"
        rejects.append(Reject(int(line), column_name, value, error, raw))
    return rejects


def _scan_non_integral(
    path: str, header: list[str], int_sources: list[str], first_only: bool
) -> list[Reject]:
    """Rows whose integer fields hold a fraction (slow path: runs only after DuckDB flagged one)."""
    idx = {name: header.index(name) for name in int_sources}
    found: list[Reject] = []
    with _open_text(path) as f:
        reader = csv.reader(f)
        next(reader, None)
        for fields in reader:
            for name, i in idx.items():
                if i >= len(fields) or fields[i] == "":
                    continue
                try:
                    v = float(fields[i])
                except ValueError:
                    continue  # DuckDB reports unparseable numbers itself
                if v != v or v in (float("inf"), float("-inf")) or v != int(v) or abs(v) >= 9.0e18:
                    raw = ",".join(fields)
                    found.append(
                        Reject(reader.line_num, name, fields[i], "not a whole number", raw)
                    )
                    if first_only:
                        return found
                    break
    return found


def _raise_first(name: str, contract: TableContract, reject: Reject, total: int) -> None:
    where = f"{name}: line {reject.line}"
    if reject.column:
        where += f", column {reject.column!r}"
    more = f" ({total - 1} more bad line(s))" if total > 1 else ""
    raise BadInputError(
        f"{where}: {reject.error}: {reject.raw_line[:200]!r}{more}. Nothing was written.",
        file=name,
        line=reject.line,
        column=reject.column or None,
        value=reject.value,
    )


def select_sql(
    src: str | os.PathLike, contract: TableContract, month: date | None, name: str | None = None
) -> str:
    """The SELECT that csv_to_parquet writes out: the file read with the contract's types and
    checks. For measuring the parse on its own (the benchmark's floor)."""
    src = str(src)
    return _csv_plan(src, contract, month, name or src)[1].sql


def _csv_plan(
    src: str, contract: TableContract, month: date | None, name: str
) -> tuple[list[str], _Plan]:
    """The file's header, and the plan that reads it onto the contract."""
    header = read_header(src, name)
    return header, _plan(src, map_header(header, contract, name), contract, month)


def csv_to_parquet(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    contract: TableContract,
    month: date | None,
    *,
    name: str | None = None,
    bad_rows: str = "fail",
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
    spill_dir: str | None = None,
    kv_metadata: dict[str, str] | None = None,
) -> ConversionResult:
    """Convert one CSV file to dest (zstd Parquet with exactly the contract's schema).

    bad_rows="fail": any row that does not fit raises BadInputError and dest is not created.
    bad_rows="quarantine": such rows are left out and returned as rejects; the caller stores them.
    """
    if bad_rows not in BAD_ROWS_MODES:
        raise ValueError(f"bad_rows must be one of {BAD_ROWS_MODES}, not {bad_rows!r}")
    src, dest = str(src), Path(dest)
    name = name or src
    header, plan = _csv_plan(src, contract, month, name)
    tmp_dest = dest.with_name(dest.name + ".inprogress")
    with _session(memory_limit, threads, spill_dir) as con:
        extra: list[Reject] = []
        where = ""
        while True:
            options = _parquet_options(kv_metadata)
            sql = f"COPY ({plan.sql}{where}) TO {_lit(str(tmp_dest))} {options}"
            try:
                written = con.execute(sql).fetchone()[0]
                break
            except duckdb.Error as e:
                _cleanup(tmp_dest)
                if _NON_INTEGRAL not in str(e):
                    raise _wrap_duckdb_error(e, name) from e
                if bad_rows == "fail" or where:
                    bad = _scan_non_integral(src, header, plan.int_sources, first_only=True)
                    if not bad:  # pragma: no cover - DuckDB and Python disagree on a value
                        raise _wrap_duckdb_error(e, name) from e
                    _raise_first(name, contract, bad[0], 1)
                extra = _scan_non_integral(src, header, plan.int_sources, first_only=False)
                con.execute(
                    "DROP TABLE IF EXISTS csv_rejects; DROP TABLE IF EXISTS csv_reject_scans"
                )
                where = "\nWHERE " + " AND ".join(_int_ok(s) for s in plan.int_sources)
        rejects = sorted(_duckdb_rejects(con, header, plan.types) + extra, key=lambda r: r.line)
    if rejects and bad_rows == "fail":
        _cleanup(tmp_dest)
        _raise_first(name, contract, rejects[0], len(rejects))
    os.replace(tmp_dest, dest)
    return ConversionResult(
        rows_written=int(written),
        rows_rejected=len(rejects),
        header=header,
        missing_columns=plan.missing,
        rejects=rejects,
    )
