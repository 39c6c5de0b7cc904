"""Partitioned jobs: one per service (raw -> lake -> warehouse) and one for every service."""

import dagster as dg

# What define_asset_job returns; Dagster exports no public name for it.
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition as AssetJob,
)

from lake_assets import identity
from lake_assets.schemas import SERVICES


def trip_selection(services: tuple[str, ...]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(
        *(
            dg.AssetKey(identity.trip_key(layer, s))
            for s in services
            for layer in identity.TRIP_LAYERS
        )
    )


def service_job(service: str) -> AssetJob:
    return dg.define_asset_job(
        name=f"{identity.trip_table(service)}_job",
        selection=trip_selection((service,)),
        description=f"Land, convert and load one month of {service} trips.",
    )


def build_jobs() -> dict[str, AssetJob]:
    """Every job by name; the per-service jobs come first, in the order of SERVICES."""
    jobs = [service_job(s) for s in SERVICES]
    jobs.append(
        dg.define_asset_job(
            name="all_tripdata_job",
            selection=trip_selection(SERVICES),
            description="Land, convert and load one month of every service.",
        )
    )
    jobs.append(
        dg.define_asset_job(
            name="marts_job",
            selection=dg.AssetSelection.groups(identity.MARTS),
            description="Rebuild the monthly marts from the warehouse tables.",
        )
    )
    jobs.append(
        dg.define_asset_job(
            name="taxi_zones_job",
            selection=dg.AssetSelection.assets(
                *(dg.AssetKey(identity.zones_key(layer)) for layer in identity.TRIP_LAYERS)
            ),
            description="Land, convert and load the zone lookup.",
        )
    )
    return {j.name: j for j in jobs}
