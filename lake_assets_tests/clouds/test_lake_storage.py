"""One contract for every LakeStorage: the same tests on the folder, fake-gcs-server, moto's S3
server and Azurite, through the real clients. A new store passes these or it is not a lake."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_assets.resources.base import LakeStorage

pytestmark = pytest.mark.clouds

RAW = "raw/yellow_tripdata/yellow_tripdata_2021-01.csv.gz"
SCHEMES = {
    "LocalLake": "file:///",
    "GCSLake": "gs://",
    "S3Lake": "s3://",
    # Azurite answers on http://127.0.0.1:<port>/<account>/; Azure on https://<account>.blob...
    "AzureBlobLake": "http://127.0.0.1:",
}


def _parquet(tmp_path: Path, rows: int, row_groups: int = 1, columns: int = 2) -> Path:
    table = pa.table({f"c{i}": pa.array(range(rows), pa.int64()) for i in range(columns)})
    table = table.replace_schema_metadata({"lake_assets.raw_sha256": "ab" * 32})
    out = tmp_path / f"t{rows}x{columns}.parquet"
    pq.write_table(table, out, row_group_size=max(1, rows // row_groups))
    return out


def test_a_write_is_all_or_nothing_and_a_failed_one_keeps_the_previous_object(lake: LakeStorage):
    with lake.open_write(RAW) as f:
        f.write(b"first version")
    with pytest.raises(RuntimeError, match="download cut"):
        with lake.open_write(RAW) as f:
            f.write(b"half of a second vers")
            raise RuntimeError("download cut")
    with lake.local_copy(RAW) as local:
        assert local.read_bytes() == b"first version"
    # Nothing staged or half-written is listed beside it.
    assert lake.list_files() == [(RAW, len(b"first version"))]
    with lake.open_write(RAW) as f:
        f.write(b"second version, whole")
    with lake.local_copy(RAW) as local:
        assert local.read_bytes() == b"second version, whole"
    assert lake.list_files() == [(RAW, len(b"second version, whole"))]


def test_a_big_file_goes_up_in_parts_and_comes_back_byte_for_byte(lake: LakeStorage, tmp_path):
    # Above S3's part size and Azure's single-put size: multipart upload, staged blocks.
    data = bytes(range(256)) * (40 * 1024 * 1024 // 256) + b"tail"
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    lake.put_file(local, "raw/fhv_tripdata/big.bin")
    assert lake.list_files() == [("raw/fhv_tripdata/big.bin", len(data))]
    with lake.local_copy("raw/fhv_tripdata/big.bin") as copy:
        assert copy.stat().st_size == len(data)
        assert copy.read_bytes() == data


def test_list_exists_and_delete(lake: LakeStorage):
    paths = ["lake/green_tripdata/b.parquet", "lake/green_tripdata/a.parquet", RAW]
    for i, path in enumerate(paths):
        with lake.open_write(path) as f:
            f.write(b"x" * (i + 1))
    assert lake.list_files() == sorted((p, i + 1) for i, p in enumerate(paths))
    assert lake.exists(RAW) and not lake.exists("raw/nothing.csv.gz")
    lake.delete(RAW)
    lake.delete(RAW)  # deleting what is gone is not an error
    assert not lake.exists(RAW)
    assert [p for p, _ in lake.list_files()] == sorted(paths[:2])
    with pytest.raises(FileNotFoundError, match="is not in the lake; materialize it first"):
        with lake.local_copy(RAW):
            pass


def test_move_puts_the_bytes_at_the_target_and_removes_the_source(lake: LakeStorage):
    candidate = "raw/yellow_tripdata/candidate/yellow_tripdata_2021-01.csv.gz"
    with lake.open_write(RAW) as f:
        f.write(b"old landing")
    with lake.open_write(candidate) as f:
        f.write(b"new landing")
    lake.move(candidate, RAW)
    assert lake.list_files() == [(RAW, len(b"new landing"))]
    with lake.local_copy(RAW) as local:
        assert local.read_bytes() == b"new landing"
    with pytest.raises(FileNotFoundError, match="is not in the lake"):
        lake.move(candidate, RAW)


def test_parquet_row_count_and_footer_come_from_the_footer(lake: LakeStorage, tmp_path):
    small = _parquet(tmp_path, 1234)
    lake.put_file(small, "lake/yellow_tripdata/small.parquet")
    footer = lake.parquet_footer("lake/yellow_tripdata/small.parquet")
    assert footer.rows == 1234
    assert footer.metadata["lake_assets.raw_sha256"] == "ab" * 32
    # A footer wider than one ranged read (many row groups and columns): read in full.
    wide = _parquet(tmp_path, 20_000, row_groups=400, columns=12)
    assert pq.ParquetFile(wide).metadata.serialized_size > 64 * 1024
    lake.put_file(wide, "lake/yellow_tripdata/wide.parquet")
    assert lake.parquet_row_count("lake/yellow_tripdata/wide.parquet") == 20_000
    with pytest.raises(FileNotFoundError, match="is not in the lake"):
        lake.parquet_footer("lake/yellow_tripdata/none.parquet")


def test_paths_that_try_to_leave_the_root_are_refused(lake: LakeStorage):
    for path in ("../outside", "lake/../../outside", ""):
        with pytest.raises(ValueError, match="lake"):
            lake.uri(path)
        with pytest.raises(ValueError, match="lake"):
            with lake.open_write(path) as f:
                f.write(b"never")
    assert lake.list_files() == []


def test_uris_name_the_store_and_the_path(lake: LakeStorage):
    uri = lake.uri(RAW)
    assert uri.startswith(SCHEMES[type(lake).__name__])
    assert uri.endswith("/" + RAW)
    if type(lake).__name__ != "LocalLake":
        assert "/tlc/" + RAW in uri  # under the prefix


def test_a_local_copy_is_a_readable_file_with_the_bytes(lake: LakeStorage, tmp_path):
    table = _parquet(tmp_path, 10)
    lake.put_file(table, "lake/green_tripdata/ten.parquet")
    with lake.local_copy("lake/green_tripdata/ten.parquet") as local:
        assert pq.read_table(io.BytesIO(local.read_bytes())).num_rows == 10


@pytest.mark.parametrize("exists", [False, True], ids=["creating", "replacing"])
def test_of_two_overlapping_runs_the_later_publish_is_refused(lake: LakeStorage, tmp_path, exists):
    """Both runs look at the object when they start; run B publishes first; run A, finishing
    later, must not overwrite B's object: it is refused, and B's bytes stay."""
    if exists:
        with lake.open_write(RAW) as f:
            f.write(b"what both runs saw")
    seen_by_a = lake.version(RAW)
    seen_by_b = lake.version(RAW)
    assert seen_by_a == seen_by_b and (seen_by_a is None) is not exists
    b_file, a_file = tmp_path / "b", tmp_path / "a"
    b_file.write_bytes(b"run B's month")
    a_file.write_bytes(b"run A's month, later")
    lake.put_file(b_file, RAW, seen_by_b)
    assert lake.version(RAW) != seen_by_a
    with pytest.raises(RuntimeError, match="changed while this run was replacing it"):
        lake.put_file(a_file, RAW, seen_by_a)
    with lake.local_copy(RAW) as local:
        assert local.read_bytes() == b"run B's month"
    # A run that saw B's object replaces it.
    lake.put_file(a_file, RAW, lake.version(RAW))
    with lake.local_copy(RAW) as local:
        assert local.read_bytes() == b"run A's month, later"
