"""What each object store adds to the contract: conditional writes (a concurrent writer's object is
never overwritten blindly), a failed multipart upload that leaves nothing, and one month raw ->
lake -> warehouse -> marts with the lake on S3 and on Azure Blob under the DuckDB warehouse."""

from __future__ import annotations

import dagster as dg
import pytest

from lake_assets import identity
from lake_assets.definitions import build_definitions
from lake_assets.resources.aws import PART_SIZE, S3Lake
from lake_assets.resources.azure import AzureBlobLake
from lake_assets.resources.build import build_backend
from lake_assets.schemas import SERVICES
from lake_assets_tests.clouds.conftest import store_settings
from lake_assets_tests.helpers import SERVICE_ROWS, load_every_service, metadata, month_counts

pytestmark = pytest.mark.clouds

PATH = "lake/green_tripdata/green_tripdata_2021-01.parquet"


@pytest.fixture(params=["s3", "azure"])
def store(request):
    return request.getfixturevalue(f"{request.param}_emulator")


def _lake(store, settings, request, monkeypatch):
    s = store_settings(store, settings, request, monkeypatch)
    return s, build_backend(s, resolved=True)[0]


def _write_behind(lake, monkeypatch, data: bytes) -> None:
    """Another writer puts data at PATH right after this run has looked at it."""
    cls = type(lake)
    looked = cls._unchanged_since

    def and_then_another_writer(self, *args):
        condition = looked(self, *args)
        other = cls(**self.model_dump())  # a second client of its own
        monkeypatch.setattr(cls, "_unchanged_since", looked)
        with other.open_write(PATH) as f:
            f.write(data)
        return condition

    monkeypatch.setattr(cls, "_unchanged_since", and_then_another_writer)


@pytest.mark.parametrize("first", [False, True], ids=["replacing", "creating"])
def test_a_concurrent_writers_object_is_never_overwritten(
    store, settings, request, monkeypatch, tmp_path, first
):
    _, lake = _lake(store, settings, request, monkeypatch)
    if not first:
        with lake.open_write(PATH) as f:
            f.write(b"this run saw these bytes")
    _write_behind(lake, monkeypatch, b"another run's bytes")
    with pytest.raises(RuntimeError, match="changed while this run was replacing it"):
        with lake.open_write(PATH) as f:
            f.write(b"this run's bytes")
    with lake.local_copy(PATH) as local:
        assert local.read_bytes() == b"another run's bytes"


def test_a_failed_multipart_upload_keeps_the_object_and_leaves_no_parts(
    s3_emulator, settings, request, monkeypatch, tmp_path
):
    _, lake = _lake(s3_emulator, settings, request, monkeypatch)
    assert isinstance(lake, S3Lake)
    with lake.open_write(PATH) as f:
        f.write(b"the good month")
    client = lake.client()
    upload_part = client.upload_part

    def cut_at_the_second_part(**kwargs):
        if kwargs["PartNumber"] == 2:
            raise ConnectionError("connection reset during part 2")
        return upload_part(**kwargs)

    monkeypatch.setattr(client, "upload_part", cut_at_the_second_part)
    big = tmp_path / "big.parquet"
    big.write_bytes(b"\0" * (2 * PART_SIZE + 1))
    with pytest.raises(ConnectionError, match="part 2"):
        lake.put_file(big, PATH)
    with lake.local_copy(PATH) as local:
        assert local.read_bytes() == b"the good month"
    assert client.list_multipart_uploads(Bucket=lake.bucket).get("Uploads", []) == []


def test_azure_reaches_an_account_by_name_with_the_default_credential(settings):
    lake = AzureBlobLake(container="lake", account="mylakeacct")
    assert lake.uri(PATH) == f"https://mylakeacct.blob.core.windows.net/lake/{PATH}"


def test_a_month_raw_to_marts_with_the_lake_on_the_store(
    store, http_server, settings, request, monkeypatch
):
    s, lake = _lake(store, settings, request, monkeypatch)
    defs = build_definitions(s)
    result = load_every_service(http_server, defs, "2021-01")
    # Exact rows in the DuckDB warehouse, loaded from local copies of the store's objects.
    for service in SERVICES:
        assert month_counts(s.duckdb_path, f"{service}_tripdata") == {
            "2021-01": SERVICE_ROWS[service]
        }
    assert month_counts(s.duckdb_path, "service_summary_monthly") == {"2021-01": 3}
    # The store holds the lake's layout and nothing else (no candidates, no staging).
    month = identity.month_of("2021-01")
    files = [p for p, _ in lake.list_files()]
    assert files == sorted(
        [
            identity.RAW_ZONES_PATH,
            identity.LAKE_ZONES_PATH,
            *(identity.lake_trip_path(x, month) for x in SERVICES),
            *(identity.raw_trip_path(x, month, ".csv.gz") for x in SERVICES),
        ]
    )
    lake_meta = metadata(result, "lake/yellow_tripdata")
    assert lake_meta["uri"] == lake.uri(identity.lake_trip_path("yellow", month))
    assert lake_meta["uri"].startswith(("s3://", "http://127.0.0.1:"))
    assert lake_meta["dagster/row_count"] == SERVICE_ROWS["yellow"]
    assert lake.parquet_row_count(identity.lake_trip_path("yellow", month)) == 700
    key = dg.AssetKey.from_user_string("lake/yellow_tripdata")
    assert store.cloud in defs.resolve_assets_def(key).specs_by_key[key].kinds
