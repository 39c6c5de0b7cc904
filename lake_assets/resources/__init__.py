"""Resources: one abstract base per role, with the implementations each backend uses."""

from lake_assets.resources.base import IngestPolicy, LakeStorage, LoadResult, TripSource, Warehouse
from lake_assets.resources.gcp import BigQueryWarehouse, GCSLake
from lake_assets.resources.local import DuckDBWarehouse, LocalLake
from lake_assets.resources.source import UrlTemplateSource

__all__ = [
    "BigQueryWarehouse",
    "GCSLake",
    "DuckDBWarehouse",
    "IngestPolicy",
    "LakeStorage",
    "LoadResult",
    "LocalLake",
    "TripSource",
    "UrlTemplateSource",
    "Warehouse",
]
