"""raw/*: each published file landed in the lake byte for byte."""

import time
from collections.abc import Callable, Iterator

import dagster as dg

from lake_assets import fetch, identity
from lake_assets.partitions import ONE_MONTH_PER_RUN, partition_month
from lake_assets.resources import LakeStorage, TripSource
from lake_assets.schemas import SERVICES

# Transient source failures (5xx, timeouts, resets) are retried with growing, jittered delays;
# a missing month or a corrupt file fails at once (see _land).
SOURCE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _latest(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    """Metadata of the last materialization of key for this partition, if any."""
    partitions = [context.partition_key] if context.has_partition_key else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


# A long download says how far it is in the run's log this often.
PROGRESS_SECONDS = 5.0


def _progress_log(context: dg.AssetExecutionContext, url: str) -> Callable[[int, int | None], None]:
    """A download progress callback that logs bytes of total and the rate every few seconds."""
    started = last = time.monotonic()

    def log(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_SECONDS:
            return
        last = now
        rate = done / (now - started) / 2**20
        of = f" of {total / 2**20:,.1f} MiB ({done / total:.0%})" if total else ""
        context.log.info(f"{url}: {done / 2**20:,.1f} MiB{of} at {rate:,.1f} MiB/s")

    return log


def _landed(lake: LakeStorage, previous: dict, lake_meta: dict) -> str | None:
    """Where the previous landing's bytes are now: still a candidate, or promoted by a lake step
    that recorded converting exactly those bytes. None: gone, or another source or lake."""
    path = previous.get("path")
    if not path or previous.get("uri") != lake.uri(path):
        # No record, or a landing in another lake (a second backend on the same instance).
        return None
    if lake.exists(path):
        return path
    promoted = identity.promoted_path(path)
    if lake_meta.get("raw_sha256") == previous.get("sha256") and lake.exists(promoted):
        return promoted
    return None


# What a user can change when a download waits too long (the Dagster-free fetch module does not
# know the settings' names).
_SETTING_HINTS = {
    fetch.ReadTimedOut: "TLC_HTTP_TIMEOUT sets how long one read may wait",
    fetch.DeadlineExceeded: "TLC_DOWNLOAD_DEADLINE sets the deadline",
}


def _retryable(e: BaseException) -> bool:
    """Failures a later attempt can get past: the source's 5xx/timeouts and dropped connections.
    Everything else (a 404, a corrupt file, a lake folder that cannot exist, a full disk) fails
    the step at once."""
    return isinstance(e, fetch.TransientSourceError | ConnectionError | TimeoutError)


def _land(
    context: dg.AssetExecutionContext,
    source: TripSource,
    lake: LakeStorage,
    key: dg.AssetKey,
    url: str,
    final_path: Callable[[str], str],
) -> Iterator:
    """Download url; land new bytes as a candidate beside the good file (the lake step promotes
    it once it converts). final_path(suffix) names the promoted file for the bytes' suffix."""
    started = time.monotonic()
    downstream = [dg.AssetKey(k) for k in identity.next_layer_keys(tuple(key.path))]
    lake_meta, warehouse_meta = (_latest(context, k) for k in downstream)
    previous = _latest(context, key)
    if previous.get("source_url") != url:
        previous = {}
    landed = _landed(lake, previous, lake_meta) if previous else None
    if landed is None:
        previous = {}
    try:
        with lake.staging_dir() as staging:
            staged = staging / "download"
            with open(staged, "wb") as out:
                result = source.download(
                    url,
                    out,
                    previous.get("etag") or None,
                    previous.get("last_modified") or None,
                    progress=_progress_log(context, url),
                )
            if result.not_modified:
                unchanged = "the source answered 304 Not Modified"
            elif previous and result.sha256 == previous.get("sha256"):
                unchanged = "the source's bytes have the sha256 of the landed file"
            else:
                unchanged = ""
                landed = identity.candidate_path(final_path(result.suffix))
                for suffix in identity.RAW_SUFFIXES:
                    other = identity.candidate_path(final_path(suffix))
                    if other != landed:
                        lake.delete(other)  # one candidate per month, whatever its format
                lake.put_file(staged, landed)
    except Exception as e:
        hint = _SETTING_HINTS.get(type(e))
        if hint:
            # Still transient: the retry policy takes it, now saying which setting to turn.
            raise type(e)(f"{e} ({hint})") from e
        if _retryable(e):
            raise  # the retry policy takes it from here
        description = str(e) if isinstance(e, fetch.SourceError) else f"{type(e).__name__}: {e}"
        raise dg.Failure(description=description, allow_retries=False) from e
    seconds = time.monotonic() - started
    partition = context.partition_key if context.has_partition_key else None
    if unchanged:
        sha = previous["sha256"]
        stale = [
            k.to_user_string()
            for k, meta in zip(downstream, (lake_meta, warehouse_meta), strict=True)
            if meta.get("raw_sha256") != sha
        ]
        if not stale:
            # The whole chain was built from these bytes: no new materialization, and the
            # steps downstream in this run are skipped instead of recomputing the same month.
            context.log.info(f"{url} unchanged since it was landed ({unchanged}); nothing to do")
            context.log_event(
                dg.AssetObservation(
                    asset_key=key,
                    partition=partition,
                    metadata={"unchanged": True, "reason": unchanged, "source_url": url},
                )
            )
            return
        # Unchanged at the source, but a layer downstream was not built from it (a failed or
        # killed run): materialize again so this run rebuilds them from the landed file.
        context.log.warning(
            f"{url} unchanged ({unchanged}), but {', '.join(stale)} was not built from it "
            f"(sha256 {sha[:12]}); rebuilding from {lake.uri(landed)}"
        )
        metadata = {
            **previous,
            "path": landed,
            "uri": lake.uri(landed),
            "rebuild_of": ", ".join(stale),
            "seconds": round(seconds, 3),
        }
        yield dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(sha))
        return
    context.log.info(f"landed {url} as {lake.uri(landed)} ({result.bytes} bytes)")
    yield dg.MaterializeResult(
        metadata={
            "source_url": url,
            "path": landed,
            "uri": lake.uri(landed),
            "bytes": result.bytes,
            "sha256": result.sha256,
            "gzip": result.gzip,
            "etag": result.etag or "",
            "last_modified": result.last_modified or "",
            "seconds": round(seconds, 3),
        },
        data_version=dg.DataVersion(result.sha256),
    )


def build_raw_trip_asset(service: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey(identity.trip_key(identity.RAW, service))

    @dg.asset(
        key=key,
        group_name=identity.RAW,
        partitions_def=partitions,
        backfill_policy=ONE_MONTH_PER_RUN,
        retry_policy=SOURCE_RETRY,
        code_version="3",
        kinds={"csv"},
        output_required=False,
        description=(
            f"The {service} trip file for the month, exactly as published (TLC_SOURCE_URL), "
            "streamed into the lake as a candidate that replaces the good file only once the "
            "lake step has converted it; a cut gzip stream or HTTP error fails the step. An "
            "unchanged source (304, or the same sha256) skips the steps downstream when they "
            "were built from the landed file, and rebuilds them when they were not."
        ),
    )
    def raw_trips(
        context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
    ) -> Iterator:
        month = partition_month(context)
        url = source.trip_url(service, month)
        yield from _land(
            context,
            source,
            lake,
            key,
            url,
            lambda suffix: identity.raw_trip_path(service, month, suffix),
        )

    return raw_trips


RAW_ZONES_KEY = dg.AssetKey(identity.zones_key(identity.RAW))


@dg.asset(
    key=RAW_ZONES_KEY,
    group_name=identity.RAW,
    retry_policy=SOURCE_RETRY,
    code_version="3",
    kinds={"csv"},
    output_required=False,
)
def raw_taxi_zones(
    context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
) -> Iterator:
    """The TLC taxi zone lookup CSV (TLC_ZONES_URL), exactly as published."""
    yield from _land(
        context, source, lake, RAW_ZONES_KEY, source.zones_url(), lambda _: identity.RAW_ZONES_PATH
    )


def build_raw_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_raw_trip_asset(s, partitions) for s in SERVICES] + [raw_taxi_zones]
