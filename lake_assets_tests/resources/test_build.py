"""Tier 1: the implementation of each role the settings choose (resources/build.py)."""

import dagster as dg
import pytest

from lake_assets.resources.build import build_backend, build_resources
from lake_assets.resources.gcp import BigQueryWarehouse, GCSLake
from lake_assets.resources.local import DuckDBWarehouse, LocalLake
from lake_assets.settings import Settings


def test_the_local_backend_is_a_folder_and_a_duckdb_file(tmp_path):
    settings = Settings(
        lake_dir=str(tmp_path / "lake"),
        duckdb_path=str(tmp_path / "w.duckdb"),
        duckdb_lock_timeout=42.0,
    )
    lake, warehouse = build_backend(settings, resolved=True)
    assert isinstance(lake, LocalLake) and lake.base_dir == str(tmp_path / "lake")
    assert isinstance(warehouse, DuckDBWarehouse)
    assert (warehouse.path, warehouse.lock_timeout_seconds) == (str(tmp_path / "w.duckdb"), 42.0)
    assert set(build_resources(settings)) >= {"lake", "warehouse", "source", "ingest", "alerts"}


@pytest.mark.parametrize("resolved", [True, False])
def test_gcp_ids_are_env_vars_unless_resolved(resolved):
    settings = Settings(
        lake_env="gcp", gcp_project="proj-1", gcs_bucket="bucket-1", bq_dataset="nyc_taxi"
    )
    lake, warehouse = build_backend(settings, resolved=resolved)
    assert isinstance(lake, GCSLake) and isinstance(warehouse, BigQueryWarehouse)
    if resolved:
        assert (lake.bucket, warehouse.project) == ("bucket-1", "proj-1")
    else:
        # The code location names the variables, so a deployment sets them per environment.
        assert lake.bucket == dg.EnvVar("GCS_BUCKET")
        assert warehouse.project == dg.EnvVar("GCP_PROJECT")
