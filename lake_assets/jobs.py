"""Partitioned jobs: one per service (raw -> lake -> warehouse) and one for every service."""

import dagster as dg

from lake_assets.schemas import SERVICES

LAYERS = ("raw", "lake", "warehouse")


def trip_selection(services: tuple[str, ...]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(
        *(dg.AssetKey([layer, f"{s}_tripdata"]) for s in services for layer in LAYERS)
    )


service_jobs: list = [
    dg.define_asset_job(
        name=f"{service}_tripdata_job",
        selection=trip_selection((service,)),
        description=f"Land, convert and load one month of {service} trips.",
    )
    for service in SERVICES
]

all_trips_job = dg.define_asset_job(
    name="all_tripdata_job",
    selection=trip_selection(SERVICES),
    description="Land, convert and load one month of every service.",
)

marts_job = dg.define_asset_job(
    name="marts_job",
    selection=dg.AssetSelection.groups("marts"),
    description="Rebuild the monthly marts from the warehouse tables.",
)

taxi_zones_job = dg.define_asset_job(
    name="taxi_zones_job",
    selection=dg.AssetSelection.assets(*(dg.AssetKey([layer, "taxi_zones"]) for layer in LAYERS)),
    description="Land, convert and load the zone lookup.",
)

jobs = [*service_jobs, all_trips_job, marts_job, taxi_zones_job]
