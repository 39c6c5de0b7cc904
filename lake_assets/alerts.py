"""Failure alerts: Slack-compatible JSON posted to ALERT_WEBHOOK_URL.

Two sensors post them, one alert per failure: one for failed runs (a failed blocking check fails
its run, so this one covers it), one for failed WARN checks, which let their run succeed and
would otherwise go unnoticed.
Nothing is sent when the webhook is not configured, and messages are redacted first: URL
credentials and query strings (signed URLs, tokens) and the webhook address never leave.
"""

import json
import re

import dagster as dg
import requests

_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+(:[^/\s@]*)?@", re.IGNORECASE)
# The query runs to the next blank or quote; punctuation that ends the sentence stays.
_URL_QUERY = re.compile(
    r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]+)\?[^\s'\"]*?(?=[:,;.)]*(?:[\s'\"]|$))", re.IGNORECASE
)
_ASSIGNED_SECRET = re.compile(
    r"\b(token|secret|password|passwd|api[_-]?key|access[_-]?key|signature|sig)=([^\s&'\"]+)",
    re.IGNORECASE,
)
MAX_ERROR_CHARS = 1500
# The tag Dagster puts on a failed run that its run retries will launch again (no public name).
WILL_RETRY_TAG = "dagster/will_retry"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    text = _URL_CREDENTIALS.sub(r"\1<redacted>@", text)
    text = _URL_QUERY.sub(r"\1?<redacted>", text)
    return _ASSIGNED_SECRET.sub(r"\1=<redacted>", text)


def slack_message(title: str, fields: dict[str, str | None], color: str = "danger") -> dict:
    """{"text": ..., "attachments": [{"fields": [...]}]}: what Slack and its clones accept."""
    return {
        "text": title,
        "attachments": [
            {
                "color": color,
                "fields": [
                    {"title": k, "value": v, "short": k != "error"}
                    for k, v in fields.items()
                    if v not in (None, "")
                ],
            }
        ],
    }


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go. An empty url disables them."""

    url: str = ""
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def post(self, message: dict) -> None:
        log = dg.get_dagster_logger()
        if not self.enabled:
            log.info("ALERT_WEBHOOK_URL is not set: no alert sent")
            return
        try:
            resp = requests.post(self.url, json=message, timeout=self.timeout_seconds)
            resp.raise_for_status()
        except requests.RequestException as e:
            # Never fail the sensor over the alert channel; say so without the address.
            log.warning(f"alert webhook failed: {redact(str(e), (self.url,))}")

    def redacted(self, text: str | None) -> str:
        text = redact(text or "", (self.url,))
        return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …"


def run_failure_message(alerts: AlertWebhook, run: dg.DagsterRun, step: str, error: str) -> dict:
    partition = run.tags.get("dagster/partition")
    where = f" for {partition}" if partition else ""
    return slack_message(
        f":red_circle: lake_assets run failed: {run.job_name}{where}",
        {
            "run": run.run_id,
            "job": run.job_name,
            "partition": partition,
            "step": step,
            "error": alerts.redacted(error),
            "retry": "automatic (run retries)" if run.tags.get(WILL_RETRY_TAG) == "true" else None,
        },
    )


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts a failed run (job, partition, step, error) to ALERT_WEBHOOK_URL.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertWebhook) -> None:
    steps = context.get_step_failure_events()
    if steps:
        step = steps[0].step_key or ""
        error = steps[0].event_specific_data.error
        message = error.message if error else steps[0].message
    else:
        step, message = "", context.failure_event.message
    alerts.post(run_failure_message(alerts, context.dagster_run, step, message or ""))


_PAGE = 100
# Statuses of an AssetCheckExecutionRecord (the instance's record of a check execution), whose
# enum Dagster does not export.
_PLANNED, _FAILED = "PLANNED", "FAILED"


def _executions_after(storage, key: dg.AssetCheckKey, after: int) -> list:
    """The check's executions with an id above after (the history comes newest first)."""
    found: list = []
    cursor = None
    while True:
        page = storage.get_asset_check_execution_history(key, limit=_PAGE, cursor=cursor)
        found += [r for r in page if r.id > after]
        if len(page) < _PAGE or page[-1].id <= after:
            return found
        cursor = page[-1].id


def _read_cursor(cursor: str | None) -> tuple[int, set[int]] | None:
    try:
        state = json.loads(cursor or "")
        return int(state["after"]), {int(i) for i in state["done"]}
    except (ValueError, TypeError, KeyError):
        return None  # none yet, or an older sensor's: start watching from now


@dg.sensor(
    name="asset_check_failure_alert",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Posts failed WARN asset checks (their runs succeed) to ALERT_WEBHOOK_URL; a failed "
        "blocking check fails its run, which run_failure_alert posts."
    ),
)
def asset_check_failure_alert(
    context: dg.SensorEvaluationContext, alerts: AlertWebhook
) -> dg.SkipReason | None:
    """Reads the instance's check executions, whose ids are global in every event log storage.

    (The event log's own record ids are not: the default SQLite storage keeps one file per run,
    and refuses a cross-run cursor.) An execution is planned with its id and completed later, so
    the cursor holds a watermark below the oldest execution still running, plus the ids above it
    already handled: none is missed and none is posted twice.
    """
    keys = (
        list(context.repository_def.asset_graph.asset_check_keys) if context.repository_def else []
    )
    storage = context.instance.event_log_storage
    state = _read_cursor(context.cursor)
    if state is None:
        latest = storage.get_latest_asset_check_execution_by_key(keys).values()
        after = max((r.id for r in latest), default=0)
        context.update_cursor(json.dumps({"after": after, "done": []}))
        return dg.SkipReason("watching asset check evaluations from now on")
    after, done = state
    records = sorted(
        (r for k in keys for r in _executions_after(storage, k, after)), key=lambda r: r.id
    )
    pending, sent = [], 0
    for record in records:
        if record.id in done:
            continue
        if record.status.value == _PLANNED:
            run = context.instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                pending.append(record.id)
            else:  # the run ended without evaluating it; the run failure alert said why
                done.add(record.id)
            continue
        done.add(record.id)
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if (
            record.status.value != _FAILED
            or evaluation is None
            or evaluation.severity != dg.AssetCheckSeverity.WARN
        ):
            continue
        run = context.instance.get_run_by_id(record.run_id)
        partition = record.partition or (run.tags.get("dagster/partition") if run else None)
        where = f" for {partition}" if partition else ""
        asset = record.key.asset_key.to_user_string()
        alerts.post(
            slack_message(
                f":warning: lake_assets check warns: {asset} {record.key.name}{where}",
                {
                    "asset": asset,
                    "check": record.key.name,
                    "partition": partition,
                    "run": record.run_id,
                    "error": alerts.redacted(evaluation.description),
                },
            )
        )
        sent += 1
    watermark, done = next_cursor(after, done, [r.id for r in records], pending)
    context.update_cursor(json.dumps({"after": watermark, "done": sorted(done)}))
    if not sent:
        return dg.SkipReason(
            f"{len(records)} new check execution(s), none failed with WARN"
            + (f"; {len(pending)} still running" if pending else "")
        )
    return None


def next_cursor(
    after: int, done: set[int], ids: list[int], pending: list[int]
) -> tuple[int, set[int]]:
    """(watermark, the handled ids above it) after a tick that saw ids above after, of which
    done are handled and pending still running."""
    watermark = min(pending) - 1 if pending else max([after, *ids])
    return watermark, {i for i in done if i > watermark}


alert_sensors = [run_failure_alert, asset_check_failure_alert]
