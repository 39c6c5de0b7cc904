"""A published Parquet file (the TLC's own) -> Parquet with the contract's schema. No Dagster
import. Column names in any case, integer ids stored as doubles, other timestamp units; a value
that cannot be converted fails naming its row, column and value, or is quarantined."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb

from lake_assets.convert.common import (
    BAD_ROWS_MODES,
    DEFAULT_MEMORY_LIMIT,
    BadInputError,
    ConversionResult,
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
from lake_assets.schemas import DUCKDB_TYPES, TableContract


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
                    f"{name}: row {r.line}, column {r.column!r}: {r.error}. Nothing was written.",
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
