"""Resources: one abstract base per role, with the implementations each backend uses."""

from lake_assets.resources.base import IngestPolicy, LakeStorage, LoadResult, TripSource, Warehouse
from lake_assets.resources.local import DuckDBWarehouse, LocalLake
from lake_assets.resources.source import UrlTemplateSource

__all__ = [
    "DuckDBWarehouse",
    "IngestPolicy",
    "LakeStorage",
    "LoadResult",
    "LocalLake",
    "TripSource",
    "UrlTemplateSource",
    "Warehouse",
]
