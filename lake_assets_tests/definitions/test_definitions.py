"""Tier 3: the code location loads and exposes the public interface, in every environment."""

import importlib

import dagster as dg
import pytest
import tomllib
import yaml

from lake_assets.assets.warehouse import WAREHOUSE_POOL, WRITER_TAG
from lake_assets.definitions import build_definitions
from lake_assets.executor import ONE_WRITER_PER_RUN
from lake_assets.partitions import build_monthly_partitions
from lake_assets.schemas import SERVICES
from lake_assets.settings import Settings
from lake_assets_tests.conftest import REPO  # noqa: E402

# The partitions of the default settings.
MONTHS = build_monthly_partitions(Settings())
PUBLIC_KEYS = {
    *(
        f"{layer}/{s}_tripdata"
        for layer in ("raw", "lake", "warehouse")
        for s in ("yellow", "green", "fhv")
    ),
    "raw/taxi_zones",
    "lake/taxi_zones",
    "warehouse/taxi_zones",
    "marts/trips_by_zone_monthly",
    "marts/service_summary_monthly",
}


def _graph(defs: dg.Definitions):
    return defs.resolve_asset_graph()


def test_module_exposes_defs_with_the_public_asset_keys(monkeypatch):
    for name in ("LAKE_ENV", "TLC_SOURCE_URL", "LAKE_DIR", "DUCKDB_PATH", "TLC_BAD_ROWS"):
        monkeypatch.delenv(name, raising=False)
    module = importlib.reload(importlib.import_module("lake_assets.definitions"))
    assert isinstance(module.defs, dg.Definitions)
    keys = {k.to_user_string() for k in _graph(module.defs).get_all_asset_keys()}
    assert keys == PUBLIC_KEYS


def test_loads_with_every_setting_overridden(tmp_path):
    settings = Settings.from_env(
        {
            "LAKE_ENV": "local",
            "TLC_SOURCE_URL": "file:///m/{service}/{service}_tripdata_{year}-{month}.csv.gz",
            "TLC_ZONES_URL": "file:///m/misc/taxi_zone_lookup.csv",
            "LAKE_DIR": str(tmp_path / "lake"),
            "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            "TLC_BAD_ROWS": "quarantine",
        }
    )
    defs = build_definitions(settings)
    defs.validate_loadable(defs)
    assert defs.resources["ingest"].bad_rows == "quarantine"
    assert defs.resources["lake"].base_dir == str(tmp_path / "lake")


def test_the_gcp_code_location_loads_as_a_user_launches_it(monkeypatch):
    """LAKE_ENV=gcp through the module, as `dagster dev` loads it: same keys, checks, jobs and
    policies; BigQuery and GCS named in the UI's kinds; project and bucket as env vars."""
    for name, value in {"LAKE_ENV": "gcp", "GCP_PROJECT": "p-1", "GCS_BUCKET": "b"}.items():
        monkeypatch.setenv(name, value)
    module = importlib.reload(importlib.import_module("lake_assets.definitions"))
    try:
        defs = module.defs
        defs.validate_loadable(defs)
        graph = _graph(defs)
        assert {k.to_user_string() for k in graph.get_all_asset_keys()} == PUBLIC_KEYS
        local = _graph(build_definitions(Settings()))
        assert graph.asset_check_keys == local.asset_check_keys
        for key in graph.get_all_asset_keys():
            assert graph.get(key).backfill_policy == local.get(key).backfill_policy
        warehouse = graph.get(dg.AssetKey(["warehouse", "yellow_tripdata"]))
        assert set(warehouse.kinds) == {"bigquery", "table"}
        assert set(graph.get(dg.AssetKey(["raw", "taxi_zones"])).kinds) == {"csv", "gcs"}
        assert {j.name for j in defs.jobs} == {j.name for j in build_definitions(Settings()).jobs}
        lake = defs.resources["lake"]
        assert (type(lake).__name__, lake.bucket) == ("GCSLake", dg.EnvVar("GCS_BUCKET"))
    finally:
        for name in ("LAKE_ENV", "GCP_PROJECT", "GCS_BUCKET"):
            monkeypatch.delenv(name)
        importlib.reload(module)


def test_partitions_are_the_mirror_span():
    keys = build_monthly_partitions(Settings()).get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2019-01", "2021-07", 31)


def test_groups_prefixes_partitions_pools_and_descriptions():
    defs = build_definitions(Settings())
    graph = _graph(defs)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        layer, name = key.path
        assert node.group_name == layer
        assert node.description, f"{key.to_user_string()} needs a description (UI)"
        assert node.code_version
        assert (node.partitions_def == build_monthly_partitions(Settings())) == (
            name != "taxi_zones"
        )
        assert (node.pools == {"warehouse"}) == (layer in ("warehouse", "marts"))
        if name != "taxi_zones":
            policy = node.backfill_policy
            if layer == "raw":
                assert policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
            else:
                assert policy == dg.BackfillPolicy.single_run()
        if layer != "raw":
            assert node.metadata["dagster/column_schema"].columns
        if layer in ("lake", "warehouse"):
            (parent,) = node.parent_keys
            assert parent.path == [{"lake": "raw", "warehouse": "lake"}[layer], name]
        if layer == "marts":
            assert {p.to_user_string() for p in node.parent_keys} == {
                "warehouse/yellow_tripdata",
                "warehouse/green_tripdata",
                "warehouse/fhv_tripdata",
                "warehouse/taxi_zones",
            }


def test_workspace_and_pyproject_name_the_module():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "lake_assets.definitions"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == "lake_assets.definitions"


def test_dagster_and_its_libraries_are_bound_to_the_tested_series():
    """Every dagster* requirement, in every group, to the minor series installed here."""
    import importlib.metadata

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    groups = pyproject["project"]["optional-dependencies"].values()
    requirements = [*pyproject["project"]["dependencies"], *(r for g in groups for r in g)]
    bounded = {}
    for requirement in requirements:
        name, _, spec = requirement.partition(">=")
        if name.startswith("dagster"):
            bounded[name] = spec
            installed = importlib.metadata.version(name).split(".")
            major_minor = ".".join(installed[:2])
            assert spec.startswith(f"{major_minor},<"), (requirement, installed)
    core = "1.13,<1.14"
    assert bounded == {
        "dagster": core,
        "dagster-webserver": core,
        "dagster-dg-cli": core,
        "dagster-gcp": "0.29,<0.30",
        "dagster-cloud-cli": core,
        "dagster-postgres": "0.29,<0.30",
        "dagster-aws": "0.29,<0.30",
        "dagster-docker": "0.29,<0.30",
    }


def test_shipped_instance_config_limits_the_warehouse_pool():
    config = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1


def _settings_read_from_the_environment() -> set[str]:
    """Every variable Settings.from_env asks for, recorded as it asks."""
    from lake_assets.settings import Settings

    asked: set[str] = set()

    class Recording(dict):
        def get(self, name, default=None):
            asked.add(name)
            return default

    Settings.from_env(Recording())
    return asked


def test_env_example_lists_every_setting():
    text = (REPO / ".env.example").read_text()
    names = _settings_read_from_the_environment()
    assert {"LAKE_ENV", "TLC_SOURCE", "S3_BUCKET", "AZURE_CONTAINER"} <= names
    missing = [n for n in sorted(names) if f"\n{n}=" not in text and f"\n# {n}=" not in text]
    assert missing == []
    # The URL overrides are shown commented out: set, they would mask TLC_SOURCE.
    for name in ("TLC_SOURCE_URL", "TLC_ZONES_URL"):
        assert f"\n# {name}=" in text, name


@pytest.mark.parametrize("env", [{"LAKE_ENV": "azure"}])
def test_unsupported_backend_fails_at_load_naming_it(env):
    with pytest.raises(
        ValueError, match="LAKE_ENV='azure' is not supported; use one of local, gcp"
    ):
        Settings.from_env(env)


def test_jobs_one_per_service_one_for_all_and_zones():
    defs = build_definitions(Settings())
    expected = {
        "yellow_tripdata_job": {
            "raw/yellow_tripdata",
            "lake/yellow_tripdata",
            "warehouse/yellow_tripdata",
        },
        "green_tripdata_job": {
            "raw/green_tripdata",
            "lake/green_tripdata",
            "warehouse/green_tripdata",
        },
        "fhv_tripdata_job": {"raw/fhv_tripdata", "lake/fhv_tripdata", "warehouse/fhv_tripdata"},
        "all_tripdata_job": {k for k in PUBLIC_KEYS if k.endswith("_tripdata")},
        "taxi_zones_job": {"raw/taxi_zones", "lake/taxi_zones", "warehouse/taxi_zones"},
        "marts_job": {"marts/trips_by_zone_monthly", "marts/service_summary_monthly"},
    }
    for name, keys in expected.items():
        job = defs.resolve_job_def(name)
        assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == keys
        assert (job.partitions_def == build_monthly_partitions(Settings())) == (
            name != "taxi_zones_job"
        )


def test_every_job_forks_its_steps_from_a_forkserver_where_there_is_one(monkeypatch):
    import multiprocessing

    jobs = build_definitions(Settings()).resolve_all_job_defs()
    for job in jobs:
        config = job.executor_def.config_schema.resolve_config({}).value["config"]
        assert job.executor_def.name == "multiprocess"
        assert config["start_method"] == {"forkserver": {}}, job.name
        assert config["tag_concurrency_limits"] == ONE_WRITER_PER_RUN, job.name
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    for job in build_definitions(Settings()).resolve_all_job_defs():
        config = job.executor_def.config_schema.resolve_config({}).value["config"]
        # No start method chosen: the multiprocess executor's own default, spawn.
        assert job.executor_def.name == "multiprocess", job.name
        assert "start_method" not in config, job.name
        assert config["tag_concurrency_limits"] == ONE_WRITER_PER_RUN, job.name


def test_the_runs_writer_limit_covers_exactly_the_warehouse_pool():
    """A run starts its own warehouse writers one at a time by their tag: a writer without it
    would meet the others only in the pool, and a tagged step outside the pool would wait for
    no reason."""
    defs = build_definitions(Settings())
    pooled, tagged = set(), set()
    for asset in defs.assets:
        node = asset.node_def
        if node.pool == WAREHOUSE_POOL:
            pooled.add(node.name)
        if node.tags.get(WRITER_TAG) == WAREHOUSE_POOL:
            tagged.add(node.name)
    assert tagged == pooled
    assert len(pooled) == 2 + len(SERVICES) + 1  # two marts, a table per service, the zones


def test_partitioned_assets_declare_their_checks():
    defs = build_definitions(Settings())
    graph = _graph(defs)
    by_asset: dict[str, dict[str, bool]] = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        by_asset.setdefault(check_key.asset_key.to_user_string(), {})[spec.name] = spec.blocking
    assert by_asset["lake/yellow_tripdata"] == {
        "schema_matches_contract": True,
        "month_not_empty": True,
        "rows_accounted_for": True,
        "pickups_in_month": False,
        "dropoff_after_pickup": False,
        "location_ids_present": False,
        "negative_totals": False,
        "passenger_count_present": False,
    }
    assert set(by_asset["lake/fhv_tripdata"]) == {
        "schema_matches_contract",
        "month_not_empty",
        "rows_accounted_for",
        "pickups_in_month",
        "dropoff_after_pickup",
        "location_ids_present",
    }
    assert by_asset["warehouse/green_tripdata"] == {"slice_matches_lake": True}
    assert by_asset["lake/taxi_zones"] == {
        "schema_matches_contract": True,
        "unique_location_ids": True,
        "borough_present": True,
    }
    assert by_asset["marts/trips_by_zone_monthly"] == {"every_trip_counted_once": True}


@pytest.mark.parametrize(
    "env, lake_type, kind",
    [
        (
            {"LAKE_STORAGE": "s3", "S3_BUCKET": "my-lake", "AWS_REGION": "eu-west-1"},
            "S3Lake",
            "s3",
        ),
        (
            {"LAKE_STORAGE": "azure", "AZURE_CONTAINER": "lake", "AZURE_STORAGE_ACCOUNT": "acct"},
            "AzureBlobLake",
            "azure",
        ),
        ({"LAKE_STORAGE": "gcs", "GCP_PROJECT": "p", "GCS_BUCKET": "my-lake"}, "GCSLake", "gcs"),
    ],
)
def test_definitions_load_with_each_lake_store_under_the_duckdb_warehouse(env, lake_type, kind):
    defs = build_definitions(Settings.from_env(env))
    assert type(defs.resources["lake"]).__name__ == lake_type
    assert type(defs.resources["warehouse"]).__name__ == "DuckDBWarehouse"
    lake_key = dg.AssetKey(["lake", "yellow_tripdata"])
    warehouse_key = dg.AssetKey(["warehouse", "yellow_tripdata"])
    assert kind in defs.resolve_assets_def(lake_key).specs_by_key[lake_key].kinds
    assert defs.resolve_assets_def(warehouse_key).specs_by_key[warehouse_key].kinds == {
        "duckdb",
        "table",
    }
    defs.resolve_all_job_defs()
