"""Resources: one abstract base per role, with the implementations each backend uses.

The GCP implementations load on first use: their client libraries take most of a second to
import, which every local run and step process would otherwise pay.
"""

from lake_assets.resources.base import IngestPolicy, LakeStorage, LoadResult, TripSource, Warehouse
from lake_assets.resources.local import DuckDBWarehouse, LocalLake
from lake_assets.resources.source import UrlTemplateSource

_GCP = ("BigQueryWarehouse", "GCSLake")

__all__ = [
    *_GCP,
    "DuckDBWarehouse",
    "IngestPolicy",
    "LakeStorage",
    "LoadResult",
    "LocalLake",
    "TripSource",
    "UrlTemplateSource",
    "Warehouse",
]


def __getattr__(name: str):
    if name in _GCP:
        from lake_assets.resources import gcp

        return getattr(gcp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
