"""The code location: the one place the environment is read and the one Definitions built."""

from __future__ import annotations

import warnings

import dagster as dg

from lake_assets.alerts import alert_sensors
from lake_assets.assets.lake import build_lake_assets
from lake_assets.assets.marts import build_mart_assets
from lake_assets.assets.raw import build_raw_assets
from lake_assets.assets.warehouse import build_warehouse_assets
from lake_assets.automation import automation_sensor
from lake_assets.executor import freeze_loaded_objects, step_executor
from lake_assets.jobs import build_jobs
from lake_assets.partitions import build_monthly_partitions
from lake_assets.resources.build import build_resources
from lake_assets.sensors import build_release_sensors, build_schedules
from lake_assets.settings import Settings, SettingsError

# The kind icon of each lake store (Dagster's names for them).
STORAGE_KINDS = {"gcs": "gcs", "s3": "s3", "azure": "azure"}


def _kinds_for(settings: Settings, asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The UI's kind icons name the backend: the tables are BigQuery's on GCP, the files objects
    of the lake's store (the lake conversion itself still runs in DuckDB on the worker)."""
    store = STORAGE_KINDS.get(settings.storage)
    bigquery = settings.lake_env == "gcp"
    if store is None and not bigquery:
        return asset

    def cloud(spec: dg.AssetSpec) -> dg.AssetSpec:
        kinds = set(spec.kinds)
        if "table" in kinds:
            if bigquery:
                kinds = {"bigquery", "table"}
        elif store:
            kinds.add(store)
        return spec.replace_attributes(kinds=kinds)

    return asset.map_asset_specs(cloud)


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything the code location holds, decided by settings alone."""
    partitions = build_monthly_partitions(settings)
    with warnings.catch_warnings():
        # Backfill policies are a beta parameter of @asset in Dagster 1.13; we choose them on
        # purpose (README: Orchestration), so eleven warnings at every load say nothing new.
        warnings.filterwarnings("ignore", r"Parameter `backfill_policy`", dg.BetaWarning)
        assets = [
            *build_raw_assets(partitions),
            *build_lake_assets(partitions),
            *build_warehouse_assets(partitions),
            *build_mart_assets(partitions),
        ]
    jobs = build_jobs()
    defs = dg.Definitions(
        assets=[_kinds_for(settings, a) for a in assets],
        jobs=list(jobs.values()),
        schedules=build_schedules(
            jobs, partitions, settings.schedule_cron, running=settings.lake_env != "local"
        ),
        sensors=[*build_release_sensors(jobs, partitions), *alert_sensors, automation_sensor],
        resources=build_resources(settings),
        executor=step_executor(),
    )
    with warnings.catch_warnings():
        # Each job runs one month of its layers (raw one month per run, the others a range in
        # one): its runs take the smaller policy, one month, which is what a job run is for;
        # asset backfills keep each asset's own. Resolved once here, the jobs are cached.
        warnings.filterwarnings("ignore", r"Asset job .* varying BackfillPolicies")
        defs.resolve_all_job_defs()
    return defs


def _load() -> dg.Definitions:
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        # The message names the setting and the fix; the frames inside settings.py add nothing
        # to the trace the CLI prints and the UI shows under Deployment.
        raise SettingsError(f"lake_assets cannot load: {e}") from None
    return build_definitions(settings)


defs = _load()
freeze_loaded_objects()
