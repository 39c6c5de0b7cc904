"""lake/*: typed Parquet, one fixed schema per service, derived from the raw file."""

from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg

from lake_assets import convert, identity, quality, steps
from lake_assets.assets import checks, history, ranges
from lake_assets.automation import FOLLOW_UPSTREAM
from lake_assets.partitions import RANGE_IN_ONE_RUN, partition_months
from lake_assets.resources import IngestPolicy, LakeStorage
from lake_assets.schemas import SERVICES, TAXI_ZONES, TableContract, contract_for


def table_schema(contract: TableContract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in contract.columns
        ]
    )


def recorded(context: dg.AssetExecutionContext, key: dg.AssetKey, month: date | None) -> dict:
    """The metadata of key's last materialization for month: what a kept lake file must match."""
    return history.latest_metadata(
        context.instance, key, identity.month_key(month) if month else None
    )


def run_ids(context: dg.AssetExecutionContext) -> steps.RunIds:
    run = context.run
    return steps.RunIds(run.run_id, run.root_run_id or run.run_id)


def _failure(e: Exception, month: date | None) -> dg.Failure:
    """A refused input as a failure that names the file, line and value, and where the refused
    candidate was kept; not retried, the same bytes fail the same way."""
    rejection = getattr(e, "rejection", None)
    metadata: dict = {}
    if isinstance(e, convert.BadInputError):
        metadata = {"file": e.file, "line": e.line, "column": e.column, "value": e.value}
    description = str(e)
    # Quarantine diverts bad data rows; it cannot help a header, a bound or a cut file.
    row_error = e.line is not None and e.line > 1 and not isinstance(e, convert.LimitExceeded)
    if isinstance(e, convert.BadInputError) and row_error and month is not None:
        description += " Set TLC_BAD_ROWS=quarantine to divert bad rows to a rejects file instead."
    if rejection is not None:
        metadata["rejected_candidate_uri"] = rejection.uri
        description = description.rstrip(".") + "."
        description += (
            f" The candidate was moved aside to {rejection.uri}; the previous good file stays "
            "and the next run rebuilds from it. Once the source is fixed, run the month again "
            "with its raw step (from the UI: Re-execute > All steps in root run)."
        )
    return dg.Failure(description=description, metadata=metadata, allow_retries=False)


def _convert(
    context: dg.AssetExecutionContext,
    contract: TableContract,
    month: date | None,
    build: Callable[[], steps.LakeFile],
) -> ranges.MonthDone:
    """build() makes the lake file; this turns it (or its bad input) into what Dagster records."""
    try:
        built = build()
    except convert.BadInputError as e:
        raise _failure(e, month) from e
    except steps.BlockingCheckFailed as e:
        if getattr(e, "rejection", None) is not None:
            e.args = (f"{e} The candidate was moved aside to {e.rejection.uri}.",)
        raise
    except steps.RejectedBySameRun as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    result, seconds, figures = built.result, built.seconds, built.figures
    metadata: dict = {
        "dagster/row_count": result.rows_written,
        "rows_read": result.rows_read,
        "rows_rejected": result.rows_rejected,
        "uri": built.uri,
        "bytes": built.bytes,
        "sha256": built.sha256,
        "source_uri": built.source_uri,
        # The raw version this month was built from.
        "raw_sha256": built.raw_sha256,
        "raw_uri": built.raw_uri,
        "source_header": ",".join(result.header),
        "columns_absent_in_source": ", ".join(result.missing_columns) or "none",
        "dagster/column_schema": table_schema(contract),
        # True: the file was verified (footer, sha256, checks) and kept, not converted again.
        "reused": built.reused,
        "seconds": round(seconds, 3),
        "rows_per_second": round(result.rows_read / seconds) if seconds > 0 else 0,
    }
    where = f"{identity.month_key(month)}: " if month else ""
    if built.reused:
        context.log.info(
            f"{where}{built.uri} was built from {built.raw_uri} (sha256 {built.raw_sha256[:12]}) "
            "by this conversion and is intact; kept without converting again"
        )
    if built.rejection:
        metadata["rejected_candidate_uri"] = built.rejection.uri
        context.log.warning(
            f"{where}rebuilt from the good file {built.raw_uri}; a rejected candidate waits: "
            f"{built.rejection.describe()}"
        )
    # The figures the checks judge, per month, so the UI plots them across partitions.
    for key in quality.recorded_figures(identity.LAKE, contract):
        if key in figures:
            metadata[key] = float(figures[key])
    if built.rejects_uri:
        metadata["rejects_uri"] = built.rejects_uri
        context.log.warning(
            f"{result.rows_rejected} row(s) of {built.source_uri} quarantined in "
            f"{built.rejects_uri}"
        )
    return ranges.MonthDone(month, metadata, built.outcomes)


def build_lake_trip_asset(service: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    contract = contract_for(service)
    key = dg.AssetKey(identity.trip_key(identity.LAKE, service))

    @dg.asset(
        key=key,
        group_name=identity.LAKE,
        partitions_def=partitions,
        backfill_policy=RANGE_IN_ONE_RUN,
        deps=[dg.AssetKey(identity.trip_key(identity.RAW, service))],
        # No data version of our own: Dagster derives it from this code version and the raw
        # file's (its sha256). A hash of the Parquet bytes would not do: DuckDB's parallel writer
        # may cut a large month's row groups a few rows apart from one build to the next, and the
        # same rows would then mark everything downstream stale.
        code_version=steps.LAKE_FORMAT_VERSION,
        automation_condition=FOLLOW_UPSTREAM,
        kinds={"parquet", "duckdb"},
        metadata={"dagster/column_schema": table_schema(contract)},
        check_specs=checks.specs(key, identity.LAKE, contract, partitions),
        description=(
            f"The month's {service} trips as zstd Parquet with the fixed {contract.name} schema. "
            "Rows that do not fit fail the step, or go to a rejects file with "
            "TLC_BAD_ROWS=quarantine; a refused raw candidate moves aside and the good file "
            "stays. A file verifiably built from the landed raw file is kept, not converted "
            "again."
        ),
    )
    def lake_trips(
        context: dg.AssetExecutionContext,
        lake: LakeStorage,
        ingest: IngestPolicy,
    ) -> Iterator:
        def build(month: date) -> ranges.MonthDone:
            raw = identity.raw_trip_paths(service, month)
            out = identity.lake_trip_path(service, month)
            rejects = identity.rejects_path(service, month)
            return _convert(
                context,
                contract,
                month,
                lambda: steps.build_lake_file(
                    lake,
                    ingest,
                    contract,
                    raw,
                    out,
                    rejects,
                    month,
                    service,
                    run_ids(context),
                    recorded(context, key, month),
                ),
            )

        yield from ranges.run_months(
            context,
            key,
            partition_months(context),
            build,
            ["rows", "rejected", "bytes"],
            lambda d: (
                d.metadata["dagster/row_count"],
                d.metadata["rows_rejected"],
                d.metadata["bytes"],
            ),
        )

    return lake_trips


LAKE_ZONES_KEY = dg.AssetKey(identity.zones_key(identity.LAKE))


@dg.asset(
    key=LAKE_ZONES_KEY,
    group_name=identity.LAKE,
    deps=[dg.AssetKey(identity.zones_key(identity.RAW))],
    code_version=steps.LAKE_FORMAT_VERSION,
    automation_condition=FOLLOW_UPSTREAM,
    kinds={"parquet", "duckdb"},
    metadata={"dagster/column_schema": table_schema(TAXI_ZONES)},
    check_specs=checks.specs(LAKE_ZONES_KEY, identity.LAKE, TAXI_ZONES),
)
def lake_taxi_zones(
    context: dg.AssetExecutionContext, lake: LakeStorage, ingest: IngestPolicy
) -> Iterator:
    """The zone lookup as Parquet (location_id, borough, zone, service_zone)."""
    raw, out = [identity.RAW_ZONES_PATH], identity.LAKE_ZONES_PATH
    try:
        done = _convert(
            context,
            TAXI_ZONES,
            None,
            lambda: steps.build_lake_file(
                lake,
                ingest,
                TAXI_ZONES,
                raw,
                out,
                None,
                None,
                None,
                run_ids(context),
                recorded(context, LAKE_ZONES_KEY, None),
            ),
        )
    except steps.BlockingCheckFailed as e:
        yield from ranges.blocked(None, e)
        return
    yield dg.MaterializeResult(metadata=done.metadata, check_results=checks.results(done.outcomes))


def build_lake_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_lake_trip_asset(s, partitions) for s in SERVICES] + [lake_taxi_zones]
