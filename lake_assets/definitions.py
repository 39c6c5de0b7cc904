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
from lake_assets.resources import DuckDBWarehouse, IngestPolicy, LocalLake, UrlTemplateSource
from lake_assets.sensors import build_schedules, release_sensors
from lake_assets.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The backend for settings.lake_env. Assets only ever see the abstract roles."""
    source = UrlTemplateSource(
        url_template=settings.tlc_source_url,
        zones_lookup_url=settings.tlc_zones_url,
        timeout_seconds=settings.http_timeout,
    )
    ingest = IngestPolicy(bad_rows=settings.bad_rows)
    alerts = (
        AlertWebhook(url=dg.EnvVar("ALERT_WEBHOOK_URL"))
        if settings.alert_webhook_configured
        else AlertWebhook()
    )
    return {
        "alerts": alerts,
        "source": source,
        "ingest": ingest,
        "lake": LocalLake(base_dir=settings.lake_dir),
        "warehouse": DuckDBWarehouse(path=settings.duckdb_path),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_assets, *lake_assets, *warehouse_assets, *mart_assets],
        jobs=jobs,
        schedules=build_schedules(running=settings.lake_env != "local"),
        sensors=[*release_sensors, *alert_sensors, automation_sensor],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
