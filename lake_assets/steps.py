"""What the lake and warehouse steps do for one month, without Dagster.

The assets wrap these in MaterializeResults and check results; the benchmark calls them as they
are, so it measures the code the assets run, without the framework around it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import pyarrow.parquet as pq

from lake_assets import convert, fetch, layout, quality
from lake_assets.resources.base import IngestPolicy, LakeStorage, LoadResult, Warehouse
from lake_assets.schemas import TableContract


@dataclass(frozen=True)
class LakeFile:
    result: convert.ConversionResult
    outcomes: list[quality.Outcome]
    uri: str
    source_uri: str
    bytes: int
    sha256: str
    seconds: float
    rejects_uri: str | None = None
    figures: dict = field(default_factory=dict)


def build_lake_file(
    lake: LakeStorage,
    policy: IngestPolicy,
    contract: TableContract,
    raw_path: str,
    out_path: str,
    rejects_path: str | None,
    month: date | None,
    service: str | None,
) -> LakeFile:
    """Convert the landed raw file to the contract's Parquet and publish it (all or nothing).

    Raises convert.BadInputError for rows that do not fit (with bad_rows=fail). The outcomes say
    whether the blocking checks passed; the file is published either way, as the asset's
    materialization records it with its failed checks.
    """
    started = time.monotonic()
    name = lake.uri(raw_path)
    bad_rows = policy.bad_rows if rejects_path else "fail"
    rejects_uri = None
    with (
        lake.local_copy(raw_path) as src,
        lake.staging_dir() as staging,
        ThreadPoolExecutor(1) as pool,
    ):
        staged = staging / "out.parquet"
        # The independent count of a trip month's raw rows, for the parity check (the zone
        # lookup has none): ISA-L reads the file on a second core while DuckDB converts it.
        counting = pool.submit(quality.count_source_rows, src, name) if service else None
        try:
            result = convert.to_parquet(
                src,
                staged,
                contract,
                month,
                name=name,
                bad_rows=bad_rows,
                memory_limit=policy.memory_limit,
            )
        except Exception:
            # A cut or corrupt gzip file is the cause of whatever DuckDB made of it: say so.
            if counting and isinstance(counting.exception(), convert.BadInputError):
                raise counting.exception() from None
            raise
        outcomes = [quality.schema_outcome(pq.read_schema(staged), contract)]
        figures: dict = {}
        if service is None:
            outcomes += quality.zone_outcomes(staged)
        else:
            outcomes.append(quality.not_empty_outcome(result.rows_written))
            counted = counting.result()
            outcomes.append(
                quality.parity_outcome(counted, result.rows_written, result.rows_rejected)
            )
            figures = quality.profile_trips(staged, contract, month)
            outcomes += quality.warning_outcomes(service, figures)
        size = staged.stat().st_size
        checksum = fetch.file_sha256(staged)
        if rejects_path:
            if result.rejects:
                staged_rejects = staging / "rejects.csv"
                convert.write_rejects(result.rejects, staged_rejects)
                lake.put_file(staged_rejects, rejects_path)
                rejects_uri = lake.uri(rejects_path)
            else:
                lake.delete(rejects_path)  # a stale rejects file would describe an older load
        lake.put_file(staged, out_path)
    return LakeFile(
        result=result,
        outcomes=outcomes,
        uri=lake.uri(out_path),
        source_uri=name,
        bytes=size,
        sha256=checksum,
        seconds=time.monotonic() - started,
        rejects_uri=rejects_uri,
        figures=figures,
    )


@dataclass(frozen=True)
class WarehouseMonth:
    load: LoadResult
    outcome: quality.Outcome
    seconds: float


def load_warehouse_month(
    lake: LakeStorage, warehouse: Warehouse, contract: TableContract, service: str, month: date
) -> WarehouseMonth:
    """Replace the month's slice of the service's table with the lake file, then check that the
    slice has exactly the file's rows."""
    started = time.monotonic()
    path = layout.lake_trip_path(service, month)
    load = warehouse.replace_month(contract, month, lake.uri(path))
    seconds = time.monotonic() - started
    outcome = quality.slice_outcome(load.slice_rows, lake.parquet_row_count(path), month)
    return WarehouseMonth(load=load, outcome=outcome, seconds=seconds)
