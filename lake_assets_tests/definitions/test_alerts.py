"""Tier 3: the alert sensors post to a real webhook on 127.0.0.1."""

from dataclasses import replace

import dagster as dg
import pytest

from lake_assets.alerts import AlertWebhook, asset_check_failure_alert, redact, run_failure_alert
from lake_assets.definitions import build_definitions
from lake_assets_tests.helpers import materialize, trip_selection


def _failed_run(defs, instance, selection, partition):
    result = materialize(defs, selection, partition, instance=instance)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    (entry,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = entry.dagster_event
    return run, failure


@pytest.fixture(params=["ephemeral", "sqlite_on_disk"])
def any_instance(request, tmp_path):
    """The in-memory instance of most tests, and the run-sharded SQLite files a fresh
    DAGSTER_HOME (and so `make dev`) uses: a query can work on one and fail on the other."""
    if request.param == "ephemeral":
        yield dg.DagsterInstance.ephemeral()
    else:
        home = tmp_path / "dagster_home"
        home.mkdir()
        instance = dg.DagsterInstance.local_temp(str(home))
        yield instance
        instance.dispose()


def test_a_failed_run_posts_exactly_one_alert_without_secrets(http_server, settings, webhook):
    # A signed-URL style source: the token must not reach the alert.
    signed = replace(settings, tlc_source_url=settings.tlc_source_url + "?token=s3cr3t")
    defs = build_definitions(signed)
    instance = dg.DagsterInstance.ephemeral()
    run, failure = _failed_run(defs, instance, trip_selection("yellow"), "2020-02")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure,
        resources={"alerts": AlertWebhook(url=webhook.url)},
    ).for_run_failure()
    run_failure_alert(context)
    (post,) = webhook.posts
    message = post["json"]
    assert (
        message["text"]
        == ":red_circle: lake_assets run failed: __ephemeral_asset_job__ for 2020-02"
    )
    fields = {f["title"]: f["value"] for f in message["attachments"][0]["fields"]}
    assert fields["run"] == run.run_id
    assert fields["partition"] == "2020-02"
    assert fields["step"] == "raw__yellow_tripdata"
    assert "yellow_tripdata_2020-02.csv.gz?<redacted>: HTTP 404" in fields["error"]
    assert "retry" not in fields  # the instance has no run retries
    assert "s3cr3t" not in str(message)
    assert webhook.url not in str(message)


def test_no_webhook_no_alert(http_server, settings, defs, webhook):
    instance = dg.DagsterInstance.ephemeral()
    run, failure = _failed_run(defs, instance, ["raw/green_tripdata"], "2020-02")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure,
        resources={"alerts": AlertWebhook()},
    ).for_run_failure()
    run_failure_alert(context)
    assert webhook.posts == []


def _stray_dates(http_server, month: str) -> None:
    """A yellow month whose first 50 of 1000 pickups are in 2088: pickups_in_month (WARN) fails,
    the run succeeds."""
    from lake_dev import generator

    src = http_server.publish("yellow", month, 1000)
    lines = generator.gzip_text(src).split("\n")
    for i in range(1, 51):
        fields = lines[i].split(",")
        fields[1] = "2088" + fields[1][4:]  # pickup, and dropoff with it: still after pickup
        fields[2] = "2088" + fields[2][4:]
        lines[i] = ",".join(fields)
    http_server.put(
        f"yellow/yellow_tripdata_{month}.csv.gz", generator.gzip_bytes("\n".join(lines))
    )


def test_one_alert_per_failure_warn_checks_by_the_check_sensor(
    http_server, settings, defs, webhook, any_instance
):
    """A failed blocking check fails its run: run_failure_alert posts it, the check sensor does
    not (one alert per failure). A failed WARN check lets its run succeed: the check sensor
    posts it, once."""
    from lake_dev import generator

    instance = any_instance
    alerts = AlertWebhook(url=webhook.url)
    header_only = generator.gzip_bytes(",".join(generator.GREEN_HEADER) + "\n")

    def tick(cursor):
        return asset_check_failure_alert.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"alerts": alerts}, definitions=defs
            )
        )

    # A warning from before the sensor was switched on is history: no alert for it.
    _stray_dates(http_server, "2020-01")
    assert materialize(defs, trip_selection("yellow"), "2020-01", instance=instance).success
    first = tick(None)
    assert first.skip_message == "watching asset check evaluations from now on"
    assert webhook.posts == []
    # A failed blocking check (its run fails), two warned months and a good one.
    http_server.put("green/green_tripdata_2020-03.csv.gz", header_only)
    assert not materialize(defs, trip_selection("green"), "2020-03", instance=instance).success
    for month in ("2020-04", "2020-05"):
        _stray_dates(http_server, month)
        assert materialize(defs, trip_selection("yellow"), month, instance=instance).success
    http_server.publish("green", "2020-06", 50)
    assert materialize(defs, trip_selection("green"), "2020-06", instance=instance).success
    result = tick(first.cursor)
    assert len(webhook.posts) == 2
    for post, month in zip(webhook.posts, ("2020-04", "2020-05"), strict=True):
        fields = {f["title"]: f["value"] for f in post["json"]["attachments"][0]["fields"]}
        assert (fields["asset"], fields["check"], fields["partition"]) == (
            "lake/yellow_tripdata",
            "pickups_in_month",
            month,
        )
        assert post["json"]["text"] == (
            f":warning: lake_assets check warns: lake/yellow_tripdata pickups_in_month for {month}"
        )
    # The cursor moves past them: the next tick sends nothing again.
    again = tick(result.cursor)
    assert len(webhook.posts) == 2
    assert again.skip_message == "0 new check execution(s), none failed with WARN"


def test_a_check_still_running_holds_the_cursor_back():
    """A check's execution is recorded when planned and completed later: the cursor must not
    pass a planned one, or its failure would never be posted."""
    from lake_assets.alerts import next_cursor

    # 4, 6 and 7 are handled, 5 is still running: the next tick starts after 4, skips 6 and 7.
    assert next_cursor(3, {4, 6, 7}, [4, 5, 6, 7], pending=[5]) == (4, {6, 7})
    # Nothing running: the watermark is the newest id and nothing is remembered above it.
    assert next_cursor(3, set(), [4, 5], pending=[]) == (5, set())
    assert next_cursor(9, {11}, [], pending=[]) == (9, {11})


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "GET https://host/f.csv.gz?X-Amz-Signature=abc failed",
            "GET https://host/f.csv.gz?<redacted> failed",
        ),
        ("https://user:pw@host/x", "https://<redacted>@host/x"),
        ("token=abc123 and api_key=xyz", "token=<redacted> and api_key=<redacted>"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_definitions_wire_the_webhook_through_envvar(monkeypatch):
    from lake_assets.settings import Settings

    monkeypatch.setenv("ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    defs = build_definitions(Settings.from_env())
    assert defs.resources["alerts"].url == dg.EnvVar("ALERT_WEBHOOK_URL")
    monkeypatch.delenv("ALERT_WEBHOOK_URL")
    assert build_definitions(Settings.from_env()).resources["alerts"].url == ""
