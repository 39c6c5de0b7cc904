"""The resources for a Settings: which implementation plays each role on this backend.

Scripts that need the lake or the warehouse outside a run (the demo's summary, the benchmark)
build them here, without loading the code location.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from lake_assets.alerts import AlertWebhook
from lake_assets.resources.base import IngestPolicy, LakeStorage, Warehouse
from lake_assets.resources.local import DuckDBWarehouse, LocalLake
from lake_assets.resources.source import UrlTemplateSource
from lake_assets.settings import Settings


def build_backend(settings: Settings, resolved: bool = False) -> tuple[LakeStorage, Warehouse]:
    """The lake for settings.storage and the warehouse for settings.lake_env. Cloud ids and
    secrets reach the code location through dg.EnvVar (resolved at run time, shown as such in the
    UI); resolved=True gives plain values, for scripts that call the resources outside a run
    (the demo's summary, the tests)."""

    def cloud_id(name: str, value: str):
        return value if resolved else dg.EnvVar(name)

    return build_lake(settings, cloud_id), build_warehouse(settings, cloud_id)


def build_lake(settings: Settings, cloud_id: Callable[[str, str], Any]) -> LakeStorage:
    if settings.storage == "gcs":
        from lake_assets.resources.gcp import GCSLake

        return GCSLake(
            project=cloud_id("GCP_PROJECT", settings.gcp_project),
            bucket=cloud_id("GCS_BUCKET", settings.gcs_bucket),
            prefix=settings.gcs_prefix,
            emulator_host=settings.storage_emulator_host or None,
        )
    if settings.storage == "s3":
        from lake_assets.resources.aws import S3Lake

        return S3Lake(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.aws_region or None,
            endpoint_url=settings.aws_endpoint_url or None,
        )
    if settings.storage == "azure":
        from lake_assets.resources.azure import AzureBlobLake

        return AzureBlobLake(
            container=settings.azure_container,
            prefix=settings.azure_prefix,
            connection_string=(
                cloud_id("AZURE_STORAGE_CONNECTION_STRING", settings.azure_connection_string)
                if settings.azure_connection_string
                else None
            ),
            account=settings.azure_storage_account or None,
        )
    return LocalLake(base_dir=settings.lake_dir)


def build_warehouse(settings: Settings, cloud_id: Callable[[str, str], Any]) -> Warehouse:
    if settings.lake_env == "gcp":
        from lake_assets.resources.gcp import BigQueryWarehouse

        return BigQueryWarehouse(
            project=cloud_id("GCP_PROJECT", settings.gcp_project),
            dataset_name=settings.bq_dataset,
            location=settings.bq_location,
            emulator_host=settings.bigquery_emulator_host or None,
        )
    return DuckDBWarehouse(
        path=settings.duckdb_path, lock_timeout_seconds=settings.duckdb_lock_timeout
    )


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
