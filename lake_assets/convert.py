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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from lake_assets.schemas import DUCKDB_TYPES, Column, TableContract

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


GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def read_header(path: str | os.PathLike, name: str) -> list[str]:
    with _open_text(path) as f:
        try:
            first = next(csv.reader(f))
        except StopIteration:
            raise BadInputError(
                f"{name}: line 1: the file is empty (no header line)", file=name, line=1
            ) from None
        except (EOFError, OSError, gzip.BadGzipFile) as e:
            raise BadInputError(f"{name}: cannot read the header: {e}", file=name, line=1) from e
    if first and first[0].startswith("\ufeff"):
        first[0] = first[0][1:]
    return [h.strip() for h in first]


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


def _reader_type(contract_type: str) -> str:
    # Integers are parsed as DOUBLE and checked below: DuckDB's integer parser accepts "2.5" and
    # rounds it, which would silently change an id. "264.0" (pandas-written ids) stays accepted.
    return {"int64": "DOUBLE", "float64": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMP"}[
        contract_type
    ]


def _whole_number(x: str) -> str:
    """SQL: the DOUBLE expression x holds a whole number that fits a BIGINT (null for null).

    No isfinite(): the bound already fails for infinities, and for NaN, which DuckDB orders
    above every number; the test costs a tenth of the parse on a 7.5M-row month.
    """
    return f"({x} = trunc({x}) AND abs({x}) < 9.0e18)"


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
    compression = "gzip" if is_gzip(path) else "none"
    read_csv = (
        f"read_csv({_lit(path)}, header=true, auto_detect=false, delim=',', quote='\"', "
        f"escape='\"', nullstr='', compression={_lit(compression)}, "
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
        f"{where}: {reject.error}: {reject.raw_line[:200]!r}{more}. Nothing was written; set "
        "TLC_BAD_ROWS=quarantine to divert bad rows to a rejects file instead.",
        file=name,
        line=reject.line,
        column=reject.column or None,
        value=reject.value,
    )


def write_rejects(rejects: list[Reject], path: str | os.PathLike) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(REJECTS_HEADER)
        for r in rejects:
            w.writerow([r.line, r.column, r.value, r.error, r.raw_line])


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


# --- Parquet sources (the TLC's own files) ---

PARQUET_MAGIC = b"PAR1"


def detect_format(path: str | os.PathLike) -> str:
    """csv (plain or gzip) or parquet, from the first bytes, whatever the file is called."""
    with open(path, "rb") as f:
        return "parquet" if f.read(4) == PARQUET_MAGIC else "csv"


def _parquet_plan(src_type, target_type: str, q: str) -> tuple[str, str | None, str]:
    """(expression, condition each non-null value must meet or None, what a bad value is not)."""
    import pyarrow as pa

    duck = DUCKDB_TYPES[target_type]
    numeric = (
        pa.types.is_integer(src_type)
        or pa.types.is_floating(src_type)
        or pa.types.is_decimal(src_type)
    )
    if target_type == "string":
        return f"CAST({q} AS VARCHAR)", None, ""
    if target_type == "int64":
        if pa.types.is_integer(src_type):
            return f"CAST({q} AS BIGINT)", None, ""
        # Text that is no number at all must fail too, not become a null.
        d = f"TRY_CAST({q} AS DOUBLE)"
        return f"CAST({d} AS BIGINT)", f"({d} IS NOT NULL AND {_whole_number(d)})", "a whole number"
    if target_type == "float64" and numeric:
        return f"CAST({q} AS DOUBLE)", None, ""
    if target_type == "timestamp" and (
        pa.types.is_timestamp(src_type) or pa.types.is_date(src_type)
    ):
        return f"CAST({q} AS TIMESTAMP)", None, ""
    return f"CAST({q} AS {duck})", f"TRY_CAST({q} AS {duck}) IS NOT NULL", f"a {duck}"


def parquet_to_parquet(
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
    """Map a published Parquet file onto the contract: column names in any case, integer ids
    stored as doubles, other timestamp units; a column the file lacks comes out null.

    Values that cannot be converted (a fractional id, text in a number column) fail with the
    file, row, column and value, or are quarantined with bad_rows="quarantine".
    """
    import pyarrow.parquet as pq

    if bad_rows not in BAD_ROWS_MODES:
        raise ValueError(f"bad_rows must be one of {BAD_ROWS_MODES}, not {bad_rows!r}")
    src, dest = str(src), Path(dest)
    name = name or src
    schema = pq.read_schema(src)
    header = list(schema.names)
    by_target = {t: s for s, t in map_header(header, contract, name, csv_header=False) if t}
    exprs, checks, missing = [], [], []
    for col in contract.columns:
        source = by_target.get(col.name)
        if source is None:
            missing += [col.name] if col.name != "source_month" else []
            exprs.append(_constant_column(col, month, contract))
            continue
        expr, ok, expected = _parquet_plan(schema.field(source).type, col.type, _q(source))
        # The CASE keeps the column nullable: DuckDB would otherwise mark it NOT NULL in the
        # output when a month happens to have no nulls, and months must share one schema.
        nullable = f"CASE WHEN {_q(source)} IS NULL THEN NULL ELSE {expr} END"
        exprs.append(f"{nullable} AS {_q(col.name)}")
        if ok:
            checks.append((source, f"({_q(source)} IS NULL OR {ok})", expected))
    reader = f"read_parquet({_lit(src)}, file_row_number=true)"
    tmp_dest = dest.with_name(dest.name + ".inprogress")
    rejects: list[Reject] = []
    where = ""
    with _session(memory_limit, threads, spill_dir) as con:
        if checks:
            all_ok = " AND ".join(ok for _, ok, _ in checks)
            which = " ".join(f"WHEN NOT {ok} THEN {i}" for i, (_, ok, _) in enumerate(checks))
            values = ", ".join(f"CAST({_q(c)} AS VARCHAR)" for c, _, _ in checks)
            limit = " LIMIT 1" if bad_rows == "fail" else ""
            bad = con.execute(
                f"SELECT file_row_number, CASE {which} END, [{values}] FROM {reader} "
                f"WHERE NOT ({all_ok}) ORDER BY file_row_number{limit}"
            ).fetchall()
            for row_number, i, row_values in bad:
                column, _, expected = checks[i]
                value = row_values[i]
                error = f"{value!r} is not {expected}"
                rejects.append(Reject(row_number + 1, column, value, error, ""))
            if rejects and bad_rows == "fail":
                r = rejects[0]
                raise BadInputError(
                    f"{name}: row {r.line}, column {r.column!r}: {r.error}. Nothing was "
                    "written; set TLC_BAD_ROWS=quarantine to divert bad rows to a rejects "
                    "file instead.",
                    file=name,
                    line=r.line,
                    column=r.column,
                    value=r.value,
                )
            if rejects:
                where = f"\nWHERE {all_ok}"
        try:
            (written,) = con.execute(
                f"COPY (SELECT\n  {', '.join(exprs)}\nFROM {reader}{where}) "
                f"TO {_lit(str(tmp_dest))} {_parquet_options(kv_metadata)}"
            ).fetchone()
        except duckdb.Error as e:
            _cleanup(tmp_dest)
            raise _wrap_duckdb_error(e, name) from e
    os.replace(tmp_dest, dest)
    return ConversionResult(
        rows_written=int(written),
        rows_rejected=len(rejects),
        header=header,
        missing_columns=missing,
        rejects=rejects,
    )


def to_parquet(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    contract: TableContract,
    month: date | None,
    **kwargs,
) -> ConversionResult:
    """Convert a landed file, CSV or Parquet, to the contract's Parquet."""
    convert = parquet_to_parquet if detect_format(src) == "parquet" else csv_to_parquet
    return convert(src, dest, contract, month, **kwargs)
