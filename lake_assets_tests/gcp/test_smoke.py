"""Opt-in: the zone lookup raw -> lake -> warehouse on a real GCP project (LAKE_GCP_SMOKE=1).

Needs GCP_PROJECT, GCS_BUCKET and application default credentials. Writes under a fresh
GCS_PREFIX and BigQuery dataset, and deletes both afterwards. Without them it is skipped, saying
which is missing; `make test` never reaches Google.
"""

import os
import secrets

import pytest

from lake_assets.definitions import build_definitions
from lake_assets.settings import Settings
from lake_assets_tests.helpers import ZONES, materialize, metadata

pytestmark = pytest.mark.gcp


def _real_project() -> tuple[str, str]:
    if os.environ.get("LAKE_GCP_SMOKE") != "1":
        pytest.skip("the real-GCP smoke test runs only with LAKE_GCP_SMOKE=1")
    missing = [n for n in ("GCP_PROJECT", "GCS_BUCKET") if not os.environ.get(n)]
    if missing:
        pytest.skip(f"LAKE_GCP_SMOKE=1 but {' and '.join(missing)} unset")
    if os.environ.get("STORAGE_EMULATOR_HOST") or os.environ.get("BIGQUERY_EMULATOR_HOST"):
        pytest.skip("an emulator host is set; unset it to smoke-test the real project")
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError as e:
        pytest.skip(f"no application default credentials: {e}")
    return os.environ["GCP_PROJECT"], os.environ["GCS_BUCKET"]


def test_zone_lookup_lands_in_a_real_bucket_and_dataset(settings, monkeypatch):
    project, bucket = _real_project()
    from google.cloud import bigquery, storage

    tag = secrets.token_hex(4)
    env = {
        "LAKE_ENV": "gcp",
        "GCP_PROJECT": project,
        "GCS_BUCKET": bucket,
        "GCS_PREFIX": f"lake-assets-smoke-{tag}",
        "BQ_DATASET": f"lake_assets_smoke_{tag}",
        "BQ_LOCATION": os.environ.get("BQ_LOCATION", "US"),
        "TLC_ZONES_URL": settings.tlc_zones_url,
        "TLC_SOURCE_URL": settings.tlc_source_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    gcp = Settings.from_env(env)
    try:
        result = materialize(build_definitions(gcp), ZONES)
        assert result.success
        assert metadata(result, "warehouse/taxi_zones")["rows_loaded"] == 265
        rows = bigquery.Client(project=project).query(
            f"SELECT count(*) FROM {gcp.bq_dataset}.taxi_zones"
        )
        assert [tuple(r.values()) for r in rows.result()] == [(265,)]
    finally:
        client = storage.Client(project=project)
        for blob in client.list_blobs(bucket, prefix=gcp.gcs_prefix + "/"):
            blob.delete()
        bigquery.Client(project=project).delete_dataset(
            gcp.bq_dataset, delete_contents=True, not_found_ok=True
        )
