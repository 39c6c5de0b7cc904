"""What the lake and warehouse steps do for one month, without Dagster.

The assets wrap these in MaterializeResults and check results; the benchmark calls them as they
are, so it measures the code the assets run, without the framework around it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

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

# Footer keys of a lake Parquet file: the raw file it was converted from, and the version of the
# conversion that wrote it. A file whose footer names another version is rebuilt, never reused:
# bump LAKE_FORMAT_VERSION (it is also the lake assets' code version) whenever a conversion
# would write other bytes from the same raw file.
RAW_SHA256_KEY = "lake_assets.raw_sha256"
RAW_URI_KEY = "lake_assets.raw_uri"
FORMAT_KEY = "lake_assets.format"
LAKE_FORMAT_VERSION = "3"


class BlockingCheckFailed(Exception):
    """A blocking check failed: nothing was published, the previous good file or slice stays."""

    def __init__(self, outcomes: list[quality.Outcome]) -> None:
        self.outcomes = outcomes
        failed = quality.failed_blocking(outcomes)
        super().__init__(
            "; ".join(f"blocking check {o.name} failed: {o.description}" for o in failed)
            + ". Nothing was replaced: the previous good data stays in place."
        )


class ConcurrentPromotion(RuntimeError):
    """Two runs of one month raced: the other promoted the candidate this one converted."""


class RejectedBySameRun(Exception):
    """A re-execution (from failure) would convert again the candidate its own root run
    rejected: nothing in it fetches the source, so it cannot converge."""


@dataclass(frozen=True)
class Rejection:
    """What the lake step rejected for a month: the bytes, where they are kept, by whom, why."""

    sha256: str
    uri: str
    run_id: str
    root_run_id: str
    reason: str

    def describe(self) -> str:
        return f"run {self.run_id} rejected {self.uri} (sha256 {self.sha256[:12]}): {self.reason}"


@dataclass(frozen=True)
class RunIds:
    run_id: str
    root_run_id: str


def read_rejection(lake: LakeStorage, raw_path: str) -> Rejection | None:
    """The month's rejection record, if a candidate of it was rejected and none promoted since."""
    record = identity.rejection_record_path(raw_path)
    if not lake.exists(record):
        return None
    with lake.local_copy(record) as f:
        fields = json.loads(f.read_text(encoding="utf-8")[:65536])
    return Rejection(**{k: str(fields.get(k, "")) for k in Rejection.__dataclass_fields__})


def reject_candidate(
    lake: LakeStorage, candidate: str, sha256: str, reason: str, run: RunIds
) -> Rejection:
    """Move a candidate the lake step refused aside, under its sha256, and record why, so no
    later run converts it again by mistake and the good file stays the one rebuilt from."""
    kept = identity.rejected_path(candidate, sha256)
    lake.move(candidate, kept)
    rejection = Rejection(sha256, lake.uri(kept), run.run_id, run.root_run_id, reason)
    with lake.open_write(identity.rejection_record_path(candidate)) as f:
        f.write(json.dumps(rejection.__dict__, indent=1).encode())
    return rejection


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
    # Set when the existing lake file was verified and kept instead of converting again: the
    # sha256 of what was kept equals what the last materialization recorded.
    reused: bool = False
    # A candidate of this month that was rejected and still is the source's latest landing.
    rejection: Rejection | None = None


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


def _judge(
    contract: TableContract,
    month: date | None,
    parquet: Path,
    rows_written: int,
    rows_rejected: int,
    rows_in_source: int | None,
    service: str | None,
) -> tuple[dict, list[quality.Outcome]]:
    """The lake checks on a written Parquet file: its figures and the outcomes."""
    figures = (
        profile.zone_figures(parquet)
        if service is None
        else profile.profile_trips(parquet, contract, month)
    )
    outcomes = quality.evaluate(
        identity.LAKE,
        quality.Evidence(
            contract=contract,
            month=month,
            schema=pq.read_schema(parquet),
            rows_written=rows_written,
            rows_rejected=rows_rejected,
            rows_in_source=rows_in_source,
            figures=figures,
        ),
    )
    return figures, outcomes


def reuse_lake_file(
    lake: LakeStorage,
    contract: TableContract,
    raw_path: str,
    out_path: str,
    month: date | None,
    service: str | None,
    recorded: dict,
) -> LakeFile | None:
    """The lake file as it is, if it verifiably is what a conversion of raw_path would write:
    readable, written by this conversion's version from raw_path's bytes (its footer), with the
    rows and the sha256 its last materialization recorded, and passing every blocking check
    again. None otherwise: the caller converts. Costs reads of both files, not a conversion."""
    started = time.monotonic()
    if not recorded.get("sha256") or not lake.exists(out_path):
        return None
    try:
        footer = lake.parquet_footer(out_path)
    except Exception:  # torn, truncated or not Parquet at all: rebuilt
        return None
    if (
        footer.metadata.get(FORMAT_KEY) != LAKE_FORMAT_VERSION
        or footer.rows != recorded.get("dagster/row_count")
        or footer.metadata.get(RAW_URI_KEY) != lake.uri(raw_path)
    ):
        return None
    rejected = int(recorded.get("rows_rejected") or 0)
    with lake.local_copy(out_path) as parquet, lake.local_copy(raw_path) as raw:
        checksum = fetch.file_sha256(parquet)
        raw_sha256 = fetch.file_sha256(raw)
        if checksum != recorded["sha256"] or raw_sha256 != footer.metadata.get(RAW_SHA256_KEY):
            return None
        source_rows = count_source_rows(raw, lake.uri(raw_path)) if service else None
        figures, outcomes = _judge(
            contract, month, parquet, footer.rows, rejected, source_rows, service
        )
        size = parquet.stat().st_size
    if quality.failed_blocking(outcomes):
        return None
    header = str(recorded.get("source_header") or "")
    absent = str(recorded.get("columns_absent_in_source") or "none")
    return LakeFile(
        result=convert.ConversionResult(
            rows_written=footer.rows,
            rows_rejected=rejected,
            header=header.split(",") if header else [],
            missing_columns=[] if absent == "none" else absent.split(", "),
        ),
        outcomes=outcomes,
        uri=lake.uri(out_path),
        source_uri=lake.uri(raw_path),
        bytes=size,
        sha256=checksum,
        seconds=time.monotonic() - started,
        raw_sha256=raw_sha256,
        raw_uri=lake.uri(raw_path),
        rejects_uri=recorded.get("rejects_uri") or None,
        figures=figures,
        reused=True,
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
    run: RunIds,
    recorded: dict | None = None,
) -> LakeFile:
    """The month's lake file from its landed raw file (all or nothing).

    A candidate the raw step landed is converted; if its rows do not fit (convert.BadInputError,
    with bad_rows=fail) or it fails a blocking check (BlockingCheckFailed), nothing is published
    and the candidate moves aside (reject_candidate), so the next run rebuilds from the good file.
    On success the Parquet file replaces the previous one, then the candidate the previous raw
    file. Without a candidate, the promoted raw file is the input: the lake file is kept when it
    verifiably was built from it (reuse_lake_file, against recorded: the last materialization's
    metadata), else converted again.
    """
    raw_path, promoted = find_raw(lake, raw_paths)
    rejection = read_rejection(lake, raw_paths[0])
    if raw_path == promoted:
        if rejection and rejection.root_run_id == run.root_run_id:
            raise RejectedBySameRun(
                f"{rejection.describe()}. This run re-executes that one without its raw step, "
                "so it cannot fetch the source again: re-execute all steps (Re-execute > All "
                "steps in root run), or launch the month anew, once the source is fixed."
            )
        reused = reuse_lake_file(lake, contract, promoted, out_path, month, service, recorded or {})
        if reused:
            return dataclasses.replace(reused, rejection=rejection)
    built = _convert_raw(
        lake, policy, contract, raw_path, promoted, out_path, rejects_path, month, service, run
    )
    if raw_path != promoted:
        try:
            lake.move(raw_path, promoted)
        except FileNotFoundError:
            raise ConcurrentPromotion(
                f"{lake.uri(raw_path)} was promoted or replaced by another run of this month "
                f"while this one converted it; {lake.uri(out_path)} may now hold this run's "
                "conversion of it. Run the month again: it converges on whatever that run left."
            ) from None
        lake.delete(identity.rejection_record_path(promoted))
        rejection = None
    for other in raw_paths:
        # A month promoted under another suffix before (the source changed format) is replaced.
        if other != promoted:
            lake.delete(other)
    return dataclasses.replace(built, rejection=rejection)


def _convert_raw(
    lake: LakeStorage,
    policy: IngestPolicy,
    contract: TableContract,
    raw_path: str,
    promoted: str,
    out_path: str,
    rejects_path: str | None,
    month: date | None,
    service: str | None,
    run: RunIds,
) -> LakeFile:
    """Convert raw_path and publish the lake file; a refused candidate is moved aside."""
    started = time.monotonic()
    # The lake file as this run first saw it: the publish below succeeds only if it is still
    # that, so a run finishing later never overwrites a concurrent run's newer file.
    seen = lake.version(out_path)
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
        try:
            result, figures, outcomes = _convert_and_judge(
                src,
                staged,
                contract,
                month,
                service,
                name,
                bad_rows,
                policy,
                pool,
                {
                    RAW_SHA256_KEY: raw_sha256,
                    RAW_URI_KEY: lake.uri(promoted),
                    FORMAT_KEY: LAKE_FORMAT_VERSION,
                },
            )
        except (convert.BadInputError, BlockingCheckFailed) as e:
            if raw_path != promoted:
                kept = reject_candidate(lake, raw_path, raw_sha256, str(e), run)
                e.rejection = kept
            raise
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
        lake.put_file(staged, out_path, seen)
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


def _convert_and_judge(
    src: Path,
    staged: Path,
    contract: TableContract,
    month: date | None,
    service: str | None,
    name: str,
    bad_rows: str,
    policy: IngestPolicy,
    pool: ThreadPoolExecutor,
    footer: dict[str, str],
) -> tuple[convert.ConversionResult, dict, list[quality.Outcome]]:
    """Convert src into staged and judge it; raises BlockingCheckFailed on a failed check."""
    # The independent count of a trip month's raw rows, for the parity check (the zone lookup
    # has none): ISA-L reads the file on a second core while DuckDB converts it.
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
            spill_dir=str(staged.parent),
            kv_metadata=footer,
        )
    except Exception:
        # A cut or corrupt gzip file is the cause of whatever DuckDB made of it: say so.
        if counting and isinstance(counting.exception(), convert.BadInputError):
            raise counting.exception() from None
        raise
    figures, outcomes = _judge(
        contract,
        month,
        staged,
        result.rows_written,
        result.rows_rejected,
        counting.result() if counting else None,
        service,
    )
    if quality.failed_blocking(outcomes):
        raise BlockingCheckFailed(outcomes)
    return result, figures, outcomes


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
