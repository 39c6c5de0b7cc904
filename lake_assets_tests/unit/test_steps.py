"""Tier 2: the lake step's logic without Dagster (lake_assets/steps.py), on a folder lake in
tmp_path: convert and promote a candidate, keep a verified file, move a refused candidate
aside, and the two refusals a re-execution or a race meet."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lake_assets import convert, identity, steps
from lake_assets.resources import IngestPolicy, LocalLake
from lake_assets.schemas import GREEN
from lake_dev import generator

MONTH = date(2021, 3, 1)
RAW = identity.raw_trip_paths("green", MONTH)
OUT = identity.lake_trip_path("green", MONTH)
RUN = steps.RunIds("run-1", "run-1")


def _land(lake: LocalLake, tmp_path: Path, data: bytes | None = None, rows: int = 120) -> str:
    src = tmp_path / "src.csv.gz"
    if data is None:
        generator.write_month("green", MONTH, rows, src)
    else:
        src.write_bytes(data)
    candidate = identity.candidate_path(RAW[0])
    lake.put_file(src, candidate)
    return candidate


def _build(lake: LocalLake, run: steps.RunIds = RUN, recorded: dict | None = None):
    return steps.build_lake_file(
        lake, IngestPolicy(), GREEN, RAW, OUT, None, MONTH, "green", run, recorded
    )


def _recorded(built: steps.LakeFile) -> dict:
    return {"sha256": built.sha256, "dagster/row_count": built.result.rows_written}


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    return LocalLake(base_dir=str(tmp_path / "lake"))


def test_a_candidate_is_converted_then_promoted_with_its_origin_in_the_footer(lake, tmp_path):
    _land(lake, tmp_path)
    built = _build(lake)
    assert (built.reused, built.result.rows_written, built.rejection) == (False, 120, None)
    assert not lake.exists(identity.candidate_path(RAW[0])) and lake.exists(RAW[0])
    footer = lake.parquet_footer(OUT)
    assert footer.metadata[steps.RAW_SHA256_KEY] == built.raw_sha256
    assert footer.metadata[steps.RAW_URI_KEY] == lake.uri(RAW[0])
    assert footer.metadata[steps.FORMAT_KEY] == steps.LAKE_FORMAT_VERSION


def test_a_verified_file_is_kept_and_anything_else_converted_again(lake, tmp_path):
    _land(lake, tmp_path)
    first = _build(lake)
    mtime = (Path(lake.base_dir) / OUT).stat().st_mtime_ns
    kept = _build(lake, recorded=_recorded(first))
    assert (kept.reused, kept.sha256, kept.result.rows_written) == (True, first.sha256, 120)
    assert (Path(lake.base_dir) / OUT).stat().st_mtime_ns == mtime
    assert {o.name for o in kept.outcomes} == {o.name for o in first.outcomes}
    # A record that does not match the file (another build, or none at all): converted.
    assert _build(lake, recorded={**_recorded(first), "sha256": "0" * 64}).reused is False
    assert _build(lake, recorded={}).reused is False


def test_a_refused_candidate_moves_aside_and_the_good_file_stays(lake, tmp_path):
    _land(lake, tmp_path)
    good = _build(lake)
    bad = generator.gzip_bytes(",".join(generator.GREEN_HEADER) + "\n2,not a time\n")
    _land(lake, tmp_path, bad)
    with pytest.raises(convert.BadInputError) as e:
        _build(lake, steps.RunIds("run-2", "run-2"))
    rejection = e.value.rejection
    kept = f"raw/green_tripdata/rejected/{rejection.sha256}/green_tripdata_2021-03.csv.gz"
    assert rejection.uri == lake.uri(kept) and lake.exists(kept)
    assert not lake.exists(identity.candidate_path(RAW[0]))
    assert pq.ParquetFile(Path(lake.base_dir) / OUT).metadata.num_rows == 120
    record = json.loads((Path(lake.base_dir) / identity.rejection_record_path(RAW[0])).read_text())
    assert (record["run_id"], record["root_run_id"], record["reason"]) == (
        "run-2",
        "run-2",
        str(e.value),
    )
    assert steps.read_rejection(lake, RAW[0]) == rejection
    # A re-execution of that run has no raw step to fetch with: it refuses at once.
    with pytest.raises(steps.RejectedBySameRun, match="re-execute all steps"):
        _build(lake, steps.RunIds("run-3", "run-2"), _recorded(good))
    # Any other run rebuilds from the good file, and says what waits.
    again = _build(lake, steps.RunIds("run-4", "run-4"), _recorded(good))
    assert (again.reused, again.rejection) == (True, rejection)


def test_a_candidate_promoted_by_another_run_meanwhile_is_said_so(lake, tmp_path, monkeypatch):
    _land(lake, tmp_path)

    def gone(src: str, dst: str) -> None:
        raise FileNotFoundError(src)

    monkeypatch.setattr(LocalLake, "move", lambda self, src, dst: gone(src, dst))
    with pytest.raises(steps.ConcurrentPromotion) as e:
        _build(lake)
    assert str(e.value).startswith(
        f"{lake.uri(identity.candidate_path(RAW[0]))} was promoted or replaced by another run"
    )
