"""warehouse/*: tables loaded from the lake; a partition replaces exactly its month."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from lake_assets import identity, steps
from lake_assets.assets import checks, ranges
from lake_assets.assets.lake import table_schema
from lake_assets.automation import FOLLOW_UPSTREAM
from lake_assets.partitions import RANGE_IN_ONE_RUN, partition_months
from lake_assets.resources import LakeStorage, Warehouse
from lake_assets.schemas import SERVICES, TAXI_ZONES, contract_for

# One writer at a time for the DuckDB file; dagster.yaml limits this pool to 1 and the DuckDB
# resource also waits for the file lock on its own.
WAREHOUSE_POOL = "warehouse"
# The same steps, tagged so that a run's own executor starts them one at a time (executor.py):
# the pool would also hold them apart, but a step the pool turns away tries again only a second
# later, a second lost at every hand-over between steps of one run.
WRITER_TAG = "lake_assets/writer"
WRITER_TAGS = {WRITER_TAG: WAREHOUSE_POOL}


def build_warehouse_trip_asset(
    service: str, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    contract = contract_for(service)
    key = dg.AssetKey(identity.trip_key(identity.WAREHOUSE, service))

    @dg.asset(
        key=key,
        group_name=identity.WAREHOUSE,
        partitions_def=partitions,
        backfill_policy=RANGE_IN_ONE_RUN,
        deps=[dg.AssetKey(identity.trip_key(identity.LAKE, service))],
        pool=WAREHOUSE_POOL,
        op_tags=WRITER_TAGS,
        code_version="2",
        automation_condition=FOLLOW_UPSTREAM,
        kinds={"duckdb", "table"},
        metadata={"dagster/column_schema": table_schema(contract)},
        check_specs=checks.specs(key, identity.WAREHOUSE, contract, partitions),
        description=(
            f"Table nyc_taxi.{contract.name}: each partition is the slice whose source_month is "
            "that month, replaced in one transaction from the lake Parquet."
        ),
    )
    def warehouse_trips(
        context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse
    ) -> Iterator:
        def build(month: date) -> ranges.MonthDone:
            step = steps.load_warehouse_month(lake, warehouse, contract, service, month)
            result, seconds = step.load, step.seconds
            metadata = {
                "dagster/row_count": result.slice_rows,
                "table": result.table,
                "rows_loaded": result.rows_loaded,
                "table_rows": result.table_rows,
                "raw_sha256": step.raw_sha256,
                "seconds": round(seconds, 3),
                "rows_per_second": round(result.rows_loaded / seconds) if seconds > 0 else 0,
            }
            return ranges.MonthDone(month, metadata, step.outcomes)

        yield from ranges.run_months(
            context,
            key,
            partition_months(context),
            build,
            ["rows", "seconds"],
            lambda d: (d.metadata["dagster/row_count"], d.metadata["seconds"]),
        )

    return warehouse_trips


@dg.asset(
    key=dg.AssetKey(identity.zones_key(identity.WAREHOUSE)),
    group_name=identity.WAREHOUSE,
    deps=[dg.AssetKey(identity.zones_key(identity.LAKE))],
    pool=WAREHOUSE_POOL,
    op_tags=WRITER_TAGS,
    code_version="2",
    automation_condition=FOLLOW_UPSTREAM,
    kinds={"duckdb", "table"},
    metadata={"dagster/column_schema": table_schema(TAXI_ZONES)},
)
def warehouse_taxi_zones(lake: LakeStorage, warehouse: Warehouse) -> dg.MaterializeResult:
    """Table nyc_taxi.taxi_zones, replaced whole from the lake Parquet."""
    footer = lake.parquet_footer(identity.LAKE_ZONES_PATH)
    with steps.readable_by(warehouse, lake, identity.LAKE_ZONES_PATH) as uri:
        result = warehouse.replace_table(TAXI_ZONES, uri)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows_loaded,
            "table": result.table,
            "rows_loaded": result.rows_loaded,
            "raw_sha256": footer.metadata.get(steps.RAW_SHA256_KEY, ""),
        }
    )


def build_warehouse_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_warehouse_trip_asset(s, partitions) for s in SERVICES] + [warehouse_taxi_zones]
