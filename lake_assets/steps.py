"""What the lake and warehouse steps do for one month, without Dagster.

The assets wrap these in MaterializeResults and check results; the benchmark calls them as they
are, so it measures the code the assets run, without the framework around it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import pyarrow.parquet as pq

from lake_assets import convert, fetch, identity, profile, quality
from lake_assets.counting import count_source_rows
from lake_assets.resources.base import (
    IngestPolicy,
    LakeStorage,
    LoadResult,
    SliceMismatch,
    Warehouse,
)
from lake_assets.schemas import TableContract

# Footer keys of a lake Parquet file: the raw file it was converted from.
RAW_SHA256_KEY = "lake_assets.raw_sha256"
RAW_URI_KEY = "lake_assets.raw_uri"


class BlockingCheckFailed(Exception):
    """A blocking check failed: nothing was published, the previous good file or slice stays."""

    def __init__(self, outcomes: list[quality.Outcome]) -> None:
        self.outcomes = outcomes
        failed = quality.failed_blocking(outcomes)
        super().__init__(
            "; ".join(f"blocking check {o.name} failed: {o.description}" for o in failed)
            + ". Nothing was replaced: the previous good data stays in place."
        )


@dataclass(frozen=True)
class LakeFile:
    result: convert.ConversionResult
    outcomes: list[quality.Outcome]
    uri: str
    source_uri: str
    bytes: int
    sha256: str
    seconds: float
    # The raw file it was built from: its sha256 and where it lives now (promoted).
    raw_sha256: str
    raw_uri: str
    rejects_uri: str | None = None
    figures: dict = field(default_factory=dict)


def find_raw(lake: LakeStorage, raw_paths: list[str]) -> tuple[str, str]:
    """The raw file to convert, and the path it has once promoted: a candidate the raw step
    landed, else the file promoted before."""
    for path in raw_paths:
        if lake.exists(identity.candidate_path(path)):
            return identity.candidate_path(path), path
    for path in raw_paths:
        if lake.exists(path):
            return path, path
    raise FileNotFoundError(
        f"no raw file in the lake at {lake.uri(raw_paths[0])} (or another suffix); materialize "
        "the raw asset of this partition first"
    )


def build_lake_file(
    lake: LakeStorage,
    policy: IngestPolicy,
    contract: TableContract,
    raw_paths: list[str],
    out_path: str,
    rejects_path: str | None,
    month: date | None,
    service: str | None,
) -> LakeFile:
    """Convert the landed raw file to the contract's Parquet and publish it (all or nothing).

    Raises convert.BadInputError for rows that do not fit (with bad_rows=fail), and
    BlockingCheckFailed when the new file fails a blocking check: in both cases nothing is
    published and a candidate raw file stays a candidate. On success the Parquet file replaces
    the previous one, then the candidate replaces the previous raw file.
    """
    started = time.monotonic()
    raw_path, promoted = find_raw(lake, raw_paths)
    name = lake.uri(raw_path)
    bad_rows = policy.bad_rows if rejects_path else "fail"
    rejects_uri = None
    with (
        lake.local_copy(raw_path) as src,
        lake.staging_dir() as staging,
        ThreadPoolExecutor(1) as pool,
    ):
        raw_sha256 = fetch.file_sha256(src)
        staged = staging / "out.parquet"
        # The independent count of a trip month's raw rows, for the parity check (the zone
        # lookup has none): ISA-L reads the file on a second core while DuckDB converts it.
        counting = pool.submit(count_source_rows, src, name) if service else None
        try:
            result = convert.to_parquet(
                src,
                staged,
                contract,
                month,
                name=name,
                bad_rows=bad_rows,
                memory_limit=policy.memory_limit,
                spill_dir=str(staging),
                kv_metadata={RAW_SHA256_KEY: raw_sha256, RAW_URI_KEY: lake.uri(promoted)},
            )
        except Exception:
            # A cut or corrupt gzip file is the cause of whatever DuckDB made of it: say so.
            if counting and isinstance(counting.exception(), convert.BadInputError):
                raise counting.exception() from None
            raise
        figures = (
            profile.zone_figures(staged)
            if service is None
            else profile.profile_trips(staged, contract, month)
        )
        outcomes = quality.evaluate(
            identity.LAKE,
            quality.Evidence(
                contract=contract,
                month=month,
                schema=pq.read_schema(staged),
                rows_written=result.rows_written,
                rows_rejected=result.rows_rejected,
                rows_in_source=counting.result() if counting else None,
                figures=figures,
            ),
        )
        if quality.failed_blocking(outcomes):
            raise BlockingCheckFailed(outcomes)
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
    if raw_path != promoted:
        lake.move(raw_path, promoted)
    for other in raw_paths:
        # A month promoted under another suffix before (the source changed format) is replaced.
        if other != promoted:
            lake.delete(other)
    return LakeFile(
        result=result,
        outcomes=outcomes,
        uri=lake.uri(out_path),
        source_uri=name,
        bytes=size,
        sha256=checksum,
        seconds=time.monotonic() - started,
        raw_sha256=raw_sha256,
        raw_uri=lake.uri(promoted),
        rejects_uri=rejects_uri,
        figures=figures,
    )


@dataclass(frozen=True)
class WarehouseMonth:
    load: LoadResult
    outcomes: list[quality.Outcome]
    seconds: float
    # The raw file the loaded lake file was built from ("" for a file older than that record).
    raw_sha256: str


@contextmanager
def readable_by(warehouse: Warehouse, lake: LakeStorage, path: str) -> Iterator[str]:
    """The lake file's URI as the warehouse can load it: in place where it reads the lake
    (DuckDB a folder, BigQuery a bucket), else a local copy for the load's duration."""
    uri = lake.uri(path)
    if warehouse.reads_uri(uri):
        yield uri
    else:
        with lake.local_copy(path) as local:
            yield local.as_uri()


def load_warehouse_month(
    lake: LakeStorage, warehouse: Warehouse, contract: TableContract, service: str, month: date
) -> WarehouseMonth:
    """Replace the month's slice of the service's table with the lake file; a slice that would
    not have exactly the file's rows is refused inside the transaction (BlockingCheckFailed)."""
    started = time.monotonic()
    path = identity.lake_trip_path(service, month)
    footer = lake.parquet_footer(path)

    def judged(slice_rows: int) -> list[quality.Outcome]:
        evidence = quality.Evidence(contract, month, slice_rows=slice_rows, lake_rows=footer.rows)
        return quality.evaluate(identity.WAREHOUSE, evidence)

    try:
        with readable_by(warehouse, lake, path) as uri:
            load = warehouse.replace_month(contract, month, uri, expected_rows=footer.rows)
    except SliceMismatch as e:
        raise BlockingCheckFailed(judged(e.slice_rows)) from e
    seconds = time.monotonic() - started
    return WarehouseMonth(
        load=load,
        outcomes=judged(load.slice_rows),
        seconds=seconds,
        raw_sha256=footer.metadata.get(RAW_SHA256_KEY, ""),
    )
