"""Tier 3: the release sensors and schedules of the loaded definitions."""

import os
from datetime import datetime, timezone

import dagster as dg
import pytest

from lake_assets.sensors import next_month
from lake_assets_tests.helpers import materialize


def _sensor(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    return defs.resolve_sensor_def(name)


def test_next_month():
    keys = ["2021-01", "2021-02", "2021-03", "2021-04"]
    assert next_month(keys, set(), None) == "2021-01"
    assert next_month(keys, {"2021-01", "2021-02"}, None) == "2021-03"
    assert next_month(keys, {"2021-01"}, "2021-03") == "2021-04"
    # an old gap is backfill territory, not a new release
    assert next_month(keys, {"2021-01", "2021-03"}, None) == "2021-04"
    assert next_month(keys, {"2021-04"}, None) is None


def test_release_sensor_requests_a_month_once_it_is_published(http_server, settings, defs):
    sensor = _sensor(defs, "green_new_release_sensor")
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("green", "2021-05", 100)
    assert materialize(defs, ["raw/green_tripdata"], "2021-05", instance=instance).success

    def tick(cursor=None):
        return sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=defs.resources, definitions=defs
            )
        )

    result = tick()
    url = f"{http_server.url}/green/green_tripdata_2021-06.csv.gz"
    assert result.skip_message == f"green 2021-06 is not published yet ({url} answers 404)"
    assert not result.run_requests
    assert http_server.behaviour.requests[-1][:2] == (
        "HEAD",
        "/green/green_tripdata_2021-06.csv.gz",
    )
    # The source publishes the month during the test.
    http_server.publish("green", "2021-06", 100)
    result = tick()
    (request,) = result.run_requests
    assert request.partition_key == "2021-06"
    assert request.run_key.startswith("green:2021-06:")
    assert result.cursor == "2021-06"
    assert sensor.job_name == "green_tripdata_job"
    # Requested already: the next tick asks about the month after it.
    result = tick(cursor="2021-06")
    assert result.skip_message.startswith("green 2021-07 is not published yet")


def test_release_sensor_skips_on_server_errors_and_at_the_end(http_server, settings, defs):
    sensor = _sensor(defs, "fhv_new_release_sensor")
    instance = dg.DagsterInstance.ephemeral()
    http_server.behaviour.status["/fhv/fhv_tripdata_2019-01.csv.gz"] = [503]
    result = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, resources=defs.resources)
    )
    assert result.skip_message.startswith("could not ask the source about fhv 2019-01:")
    assert "HTTP 503" in result.skip_message
    result = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor="2021-07", resources=defs.resources)
    )
    assert result.skip_message.startswith("every fhv month up to 2021-07 is landed or requested")


@pytest.fixture
def test_instance(tmp_path):
    # A schedule context needs an instance it can refer to (an ephemeral one has no reference).
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        yield instance


def test_schedules_are_built_from_the_jobs_and_stopped_locally(http_server, defs, test_instance):
    names = {s.name: s for s in defs.schedules}
    assert set(names) == {
        "yellow_tripdata_job_schedule",
        "green_tripdata_job_schedule",
        "fhv_tripdata_job_schedule",
        "all_tripdata_job_schedule",
    }
    schedule = defs.resolve_schedule_def("yellow_tripdata_job_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 6 5 * *"
    http_server.publish("yellow", "2021-07", 10)
    http_server.publish("yellow", "2020-02", 10)
    instance = test_instance
    with dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def(), resources=defs.resources
    ) as context:
        ticks = schedule.evaluate_tick(context)
    assert [r.partition_key for r in ticks.run_requests] == ["2021-07"]
    # At a tick time, the newest month the partitions had then.
    past = datetime(2020, 3, 5, 6, tzinfo=timezone.utc)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=past,
        repository_def=defs.get_repository_def(),
        resources=defs.resources,
    ) as context:
        assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == [
            "2020-02"
        ]


def test_a_schedule_runs_a_month_only_when_its_source_changed(http_server, defs, test_instance):
    """The schedule asks the source (HEAD) and compares with the month's last landing: an
    unchanged file skips with the reason; a republished one is requested once (run_key)."""
    schedule = defs.resolve_schedule_def("green_tripdata_job_schedule")
    instance = test_instance

    def tick():
        with dg.build_schedule_context(
            instance=instance, repository_def=defs.get_repository_def(), resources=defs.resources
        ) as context:
            return schedule.evaluate_tick(context)

    assert tick().skip_message == (
        f"green 2021-07 is not published yet ({http_server.url}/green/"
        "green_tripdata_2021-07.csv.gz answers 404)"
    )
    src = http_server.publish("green", "2021-07", 40)
    (request,) = tick().run_requests
    assert request.partition_key == "2021-07"
    assert materialize(defs, ["raw/green_tripdata"], "2021-07", instance=instance).success
    landed = instance.fetch_materializations(
        dg.AssetKey(["raw", "green_tripdata"]), limit=1
    ).records[0]
    last_modified = landed.asset_materialization.metadata["last_modified"].value
    assert tick().skip_message == (
        f"green 2021-07 is unchanged since it was landed ({last_modified})"
    )
    # Republished with other bytes: a new version, requested under its own run key.
    http_server.publish("green", "2021-07", 41)
    later = datetime.now().timestamp() + 120
    os.utime(src, (later, later))
    (again,) = tick().run_requests
    assert again.run_key != request.run_key
    assert again.run_key.startswith("green_tripdata_job:2021-07:green=")
