"""raw/*: each published file landed in the lake byte for byte."""

import time
from collections.abc import Iterator

import dagster as dg

from lake_assets import fetch, layout
from lake_assets.partitions import ONE_MONTH_PER_RUN, monthly_partitions, partition_month
from lake_assets.resources import LakeStorage, TripSource
from lake_assets.schemas import SERVICES

# Transient source failures (5xx, timeouts, resets) are retried with growing, jittered delays;
# a missing month or a corrupt file fails at once (see _land).
SOURCE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _previous(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    """Metadata of the last landing of this asset (partition), if any."""
    partitions = [context.partition_key] if context.has_partition_key else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _land(
    context: dg.AssetExecutionContext,
    source: TripSource,
    lake: LakeStorage,
    key: dg.AssetKey,
    url: str,
    path: str,
) -> Iterator:
    started = time.monotonic()
    previous = _previous(context, key) if lake.exists(path) else {}
    if previous.get("source_url") != url or previous.get("uri") != lake.uri(path):
        # Another source, or a landing in another lake (a second backend on the same Dagster
        # instance): it says nothing about this lake's file or the layers built from it.
        previous = {}
    try:
        with lake.staging_dir() as staging:
            staged = staging / "download"
            with open(staged, "wb") as out:
                result = source.download(
                    url, out, previous.get("etag") or None, previous.get("last_modified") or None
                )
            if result.not_modified:
                unchanged = "the source answered 304 Not Modified"
            elif previous and result.sha256 == previous.get("sha256"):
                unchanged = "the source's bytes have the sha256 of the landed file"
            else:
                unchanged = ""
                lake.put_file(staged, path)
    except fetch.TransientSourceError:
        raise  # the retry policy takes it from here
    except fetch.SourceError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    seconds = time.monotonic() - started
    if unchanged:
        # No new materialization: the landed file and its data version stay, and the steps
        # downstream in this run are skipped instead of recomputing the same month.
        context.log.info(f"{url} unchanged since it was landed ({unchanged}); nothing to do")
        context.log_event(
            dg.AssetObservation(
                asset_key=key,
                partition=context.partition_key if context.has_partition_key else None,
                metadata={"unchanged": True, "reason": unchanged, "source_url": url},
            )
        )
        return
    context.log.info(f"landed {url} as {lake.uri(path)} ({result.bytes} bytes)")
    yield dg.MaterializeResult(
        metadata={
            "source_url": url,
            "uri": lake.uri(path),
            "bytes": result.bytes,
            "sha256": result.sha256,
            "gzip": result.gzip,
            "etag": result.etag or "",
            "last_modified": result.last_modified or "",
            "seconds": round(seconds, 3),
        },
        data_version=dg.DataVersion(result.sha256),
    )


def build_raw_trip_asset(service: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", f"{service}_tripdata"])

    @dg.asset(
        key=key,
        group_name="raw",
        partitions_def=monthly_partitions,
        backfill_policy=ONE_MONTH_PER_RUN,
        retry_policy=SOURCE_RETRY,
        code_version="2",
        kinds={"csv"},
        output_required=False,
        description=(
            f"The {service} trip file for the month, exactly as published (TLC_SOURCE_URL), "
            "streamed into the lake; a cut gzip stream or HTTP error fails the step. An "
            "unchanged source (304, or the same sha256) keeps the landed file and skips the "
            "steps downstream."
        ),
    )
    def raw_trips(
        context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
    ) -> Iterator:
        month = partition_month(context)
        url = source.trip_url(service, month)
        path = layout.raw_trip_path(service, month, layout.url_suffix(url))
        yield from _land(context, source, lake, key, url, path)

    return raw_trips


RAW_ZONES_KEY = dg.AssetKey(["raw", "taxi_zones"])


@dg.asset(
    key=RAW_ZONES_KEY,
    group_name="raw",
    retry_policy=SOURCE_RETRY,
    code_version="2",
    kinds={"csv"},
    output_required=False,
)
def raw_taxi_zones(
    context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
) -> Iterator:
    """The TLC taxi zone lookup CSV (TLC_ZONES_URL), exactly as published."""
    yield from _land(
        context, source, lake, RAW_ZONES_KEY, source.zones_url(), layout.RAW_ZONES_PATH
    )


raw_assets: list[dg.AssetsDefinition] = [build_raw_trip_asset(s) for s in SERVICES] + [
    raw_taxi_zones
]
