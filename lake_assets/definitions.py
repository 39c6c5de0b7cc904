"""The code location: every asset and resource of lake_assets, chosen by the environment."""

from __future__ import annotations

import dagster as dg

from lake_assets.alerts import AlertWebhook, alert_sensors
from lake_assets.assets.lake import lake_assets
from lake_assets.assets.marts import mart_assets
from lake_assets.assets.raw import raw_assets
from lake_assets.assets.warehouse import warehouse_assets
from lake_assets.automation import automation_sensor
from lake_assets.jobs import jobs
from lake_assets.resources import (
    DuckDBWarehouse,
    IngestPolicy,
    LakeStorage,
    LocalLake,
    UrlTemplateSource,
    Warehouse,
)
from lake_assets.sensors import build_schedules, release_sensors
from lake_assets.settings import Settings


def build_backend(settings: Settings, resolved: bool = False) -> tuple[LakeStorage, Warehouse]:
    """The lake and warehouse for settings.lake_env. Cloud ids reach the code location through
    dg.EnvVar (resolved at run time, shown as such in the UI); resolved=True gives plain values,
    for scripts that call the resources outside a run (the demo's summary)."""
    if settings.lake_env == "gcp":
        from lake_assets.resources.gcp import BigQueryWarehouse, GCSLake

        def cloud_id(name: str, value: str):
            return value if resolved else dg.EnvVar(name)

        return (
            GCSLake(
                project=cloud_id("GCP_PROJECT", settings.gcp_project),
                bucket=cloud_id("GCS_BUCKET", settings.gcs_bucket),
                prefix=settings.gcs_prefix,
                emulator_host=settings.storage_emulator_host or None,
            ),
            BigQueryWarehouse(
                project=cloud_id("GCP_PROJECT", settings.gcp_project),
                dataset_name=settings.bq_dataset,
                location=settings.bq_location,
                emulator_host=settings.bigquery_emulator_host or None,
            ),
        )
    return LocalLake(base_dir=settings.lake_dir), DuckDBWarehouse(path=settings.duckdb_path)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The backend for settings.lake_env. Assets only ever see the abstract roles."""
    source = UrlTemplateSource(
        url_template=settings.tlc_source_url,
        zones_lookup_url=settings.tlc_zones_url,
        timeout_seconds=settings.http_timeout,
        deadline_seconds=settings.download_deadline or None,
    )
    ingest = IngestPolicy(bad_rows=settings.bad_rows)
    alerts = (
        AlertWebhook(url=dg.EnvVar("ALERT_WEBHOOK_URL"))
        if settings.alert_webhook_configured
        else AlertWebhook()
    )
    lake, warehouse = build_backend(settings)
    return {
        "alerts": alerts,
        "source": source,
        "ingest": ingest,
        "lake": lake,
        "warehouse": warehouse,
    }


def _kinds_for(settings: Settings, asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The UI's kind icons name the backend: on GCP the tables are BigQuery's and the files
    GCS objects (the lake conversion itself still runs in DuckDB on the worker)."""
    if settings.lake_env != "gcp":
        return asset

    def cloud(spec: dg.AssetSpec) -> dg.AssetSpec:
        kinds = set(spec.kinds)
        if "table" in kinds:
            kinds = {"bigquery", "table"}
        else:
            kinds.add("gcs")
        return spec.replace_attributes(kinds=kinds)

    return asset.map_asset_specs(cloud)


def step_executor() -> dg.ExecutorDefinition:
    """Steps run in subprocesses forked from a server that has already imported this code
    location, instead of each starting Python and loading it again (about a second per step).
    Windows has no forkserver: there they are spawned."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        return dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}})
    return dg.multiprocess_executor


def build_definitions(settings: Settings) -> dg.Definitions:
    assets = [*raw_assets, *lake_assets, *warehouse_assets, *mart_assets]
    return dg.Definitions(
        assets=[_kinds_for(settings, a) for a in assets],
        jobs=jobs,
        schedules=build_schedules(running=settings.lake_env != "local"),
        sensors=[*release_sensors, *alert_sensors, automation_sensor],
        resources=build_resources(settings),
        executor=step_executor(),
    )


defs = build_definitions(Settings.from_env())
