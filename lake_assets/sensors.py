"""New-release sensors (one per service) and the monthly schedules built from the jobs."""

import dagster as dg

from lake_assets import fetch, identity, redaction
from lake_assets.assets import history
from lake_assets.jobs import AssetJob
from lake_assets.resources import TripSource
from lake_assets.schemas import SERVICES

RELEASE_CHECK_SECONDS = 6 * 3600


def next_month(keys: list[str], landed: set[str], cursor: str | None) -> str | None:
    """The first partition after everything landed or already requested (keys sort as dates)."""
    floor = max([k for k in keys if k in landed] + ([cursor] if cursor else []), default="")
    return next((k for k in keys if k > floor and k not in landed), None)


def build_release_sensor(
    service: str, job: AssetJob, partitions: dg.PartitionsDefinition
) -> dg.SensorDefinition:
    landed_key = raw_key(service)

    @dg.sensor(
        name=f"{service}_new_release_sensor",
        job=job,
        minimum_interval_seconds=RELEASE_CHECK_SECONDS,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Asks the source (HEAD) whether the {service} month after the last one landed is "
            "published, and runs that month once when it is."
        ),
    )
    def release_sensor(
        context: dg.SensorEvaluationContext, source: TripSource
    ) -> dg.SensorResult | dg.SkipReason:
        keys = partitions.get_partition_keys()
        landed = context.instance.get_materialized_partitions(landed_key)
        key = next_month(keys, landed, context.cursor)
        if key is None:
            last = keys[-1] if keys else "none"
            return dg.SkipReason(
                f"every {service} month up to {last} is landed or requested; later months are "
                "outside the partitions (TLC_END_MONTH, or the source's last month)"
            )
        url = source.trip_url(service, identity.month_of(key))
        try:
            probe = source.probe(url)
        except fetch.SourceError as e:
            return dg.SkipReason(
                redaction.redact_urls(f"could not ask the source about {service} {key}: {e}")
            )
        if probe is None:
            return dg.SkipReason(
                f"{service} {key} is not published yet ({redaction.redact_url(url)} answers 404)"
            )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    partition_key=key,
                    run_key=f"{service}:{key}:{probe.version}",
                    tags={"lake_assets/trigger": "new_release"},
                )
            ],
            cursor=key,
        )

    return release_sensor


def build_release_sensors(
    jobs: dict[str, AssetJob], partitions: dg.PartitionsDefinition
) -> list[dg.SensorDefinition]:
    return [
        build_release_sensor(s, jobs[f"{identity.trip_table(s)}_job"], partitions) for s in SERVICES
    ]


def raw_key(service: str) -> dg.AssetKey:
    return dg.AssetKey(identity.trip_key(identity.RAW, service))


def changed_request(
    instance: dg.DagsterInstance,
    source: TripSource,
    job_name: str,
    services: tuple[str, ...],
    key: str,
    tags: dict[str, str],
) -> dg.RunRequest | dg.SkipReason:
    """A run of key when the source changed for any of services since it was landed (run_key:
    the versions seen, so a version is requested once); otherwise why not."""
    versions, unchanged = [], []
    for service in services:
        url = source.trip_url(service, identity.month_of(key))
        try:
            probe = source.probe(url)
        except fetch.SourceError as e:
            return dg.SkipReason(
                redaction.redact_urls(f"could not ask the source about {service} {key}: {e}")
            )
        if probe is None:
            unchanged.append(
                f"{service} {key} is not published yet ({redaction.redact_url(url)} answers 404)"
            )
        elif fetch.unchanged_since(probe, history.latest_metadata(instance, raw_key(service), key)):
            unchanged.append(f"{service} {key} is unchanged since it was landed ({probe.version})")
        else:
            versions.append(f"{service}={probe.version}")
    if not versions:
        return dg.SkipReason("; ".join(unchanged))
    return dg.RunRequest(
        partition_key=key, run_key=f"{job_name}:{key}:{','.join(versions)}", tags=tags
    )


def build_schedule(
    job: AssetJob,
    services: tuple[str, ...],
    partitions: dg.PartitionsDefinition,
    cron: str,
    running: bool,
) -> dg.ScheduleDefinition:
    """A schedule of job on cron (UTC) whose tick runs the newest partition at that time, when
    its source changed since it was landed."""

    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
        ),
        description=(
            f"Runs {job.name} for the newest month on '{cron}' (UTC, TLC_SCHEDULE) when the "
            "source's file changed since it was landed (ETag, Last-Modified, size)."
        ),
    )
    def newest_month(
        context: dg.ScheduleEvaluationContext, source: TripSource
    ) -> dg.RunRequest | dg.SkipReason:
        try:
            when = context.scheduled_execution_time
        except Exception:  # a context built without a tick time (a test, the UI's preview): now
            when = None
        keys = partitions.get_partition_keys(current_time=when)
        if not keys:
            return dg.SkipReason("no partition has started yet")
        return changed_request(
            context.instance,
            source,
            job.name,
            services,
            keys[-1],
            {"lake_assets/trigger": "schedule"},
        )

    return newest_month


def build_schedules(
    jobs: dict[str, AssetJob], partitions: dg.PartitionsDefinition, cron: str, running: bool
) -> list[dg.ScheduleDefinition]:
    """Schedules for each service job and the all-services job, on cron (TLC_SCHEDULE).

    Each tick runs the last partition, which is the month the source is expected to have
    published by then (partitions.py ends them where the source's publication lag says).
    """
    jobs_services = [(jobs[f"{identity.trip_table(s)}_job"], (s,)) for s in SERVICES]
    jobs_services.append((jobs["all_tripdata_job"], SERVICES))
    return [
        build_schedule(job, services, partitions, cron, running) for job, services in jobs_services
    ]
