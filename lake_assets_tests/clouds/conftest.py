"""The object-store emulators, started once per session, and one lake per store for each test.

moto's S3 server and Azurite run as their own processes on 127.0.0.1 and are spoken to through
the real clients (boto3 via dagster-aws, azure-storage-blob). `make test-clouds` installs both;
run by hand without them, these tests skip saying so, and under CI a missing emulator fails.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Iterator

import pytest

from lake_assets.resources.base import LakeStorage
from lake_assets.resources.build import build_backend
from lake_assets.settings import Settings
from lake_assets_tests.conftest import started_or_skipped


def _start(cloud: str, tmp_path_factory) -> Iterator:
    from lake_dev import emulators

    yield from started_or_skipped(
        f"the {cloud} emulator",
        lambda: emulators.start_object_store(
            cloud, tmp_path_factory.mktemp(f"{cloud}-emulator"), azurite=os.environ.get("AZURITE")
        ),
    )


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory):
    yield from _start("s3", tmp_path_factory)


@pytest.fixture(scope="session")
def azure_emulator(tmp_path_factory):
    yield from _start("azure", tmp_path_factory)


def _tag(request) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    return f"{name}-{secrets.token_hex(3)}"


def store_settings(
    store, base: Settings, request, monkeypatch: pytest.MonkeyPatch, prefix: str = "tlc"
) -> Settings:
    """base on a fresh bucket or container of store, with the client's own variables (boto3's
    credentials) set as a user would set them."""
    container = _tag(request)
    store.create(container)
    env = store.env(container)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fields = {
        "s3": dict(
            lake_storage="s3",
            s3_bucket=container,
            s3_prefix=prefix,
            aws_region=env.get("AWS_REGION", ""),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL", ""),
        ),
        "azure": dict(
            lake_storage="azure",
            azure_container=container,
            azure_prefix=prefix,
            azure_connection_string=env.get("AZURE_STORAGE_CONNECTION_STRING", ""),
        ),
    }[store.cloud]
    settings = dataclasses.replace(base, **fields)
    settings.validate()
    return settings


@pytest.fixture(params=["local", "gcs", "s3", "azure"])
def lake(request, tmp_path, monkeypatch) -> LakeStorage:
    """Every LakeStorage: a folder, fake-gcs-server, moto's S3 server, Azurite."""
    base = Settings(lake_dir=str(tmp_path / "lake"), duckdb_path=str(tmp_path / "w.duckdb"))
    if request.param == "local":
        settings = base
    elif request.param == "gcs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        emu = request.getfixturevalue("gcp_emulators")
        bucket = _tag(request)
        storage.Client(
            project=emu.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": emu.storage_host},
        ).create_bucket(bucket)
        settings = dataclasses.replace(
            base,
            lake_storage="gcs",
            gcp_project=emu.project,
            gcs_bucket=bucket,
            gcs_prefix="tlc",
            storage_emulator_host=emu.storage_host,
        )
    else:
        store = request.getfixturevalue(f"{request.param}_emulator")
        settings = store_settings(store, base, request, monkeypatch)
    lake, _ = build_backend(settings, resolved=True)
    return lake
