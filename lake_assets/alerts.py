"""Failure alerts: Slack-compatible JSON posted to ALERT_WEBHOOK_URL.

Two sensors post them: one for failed runs, one for failed blocking (ERROR) asset checks.
Nothing is sent when the webhook is not configured, and messages are redacted first: URL
credentials and query strings (signed URLs, tokens) and the webhook address never leave.
"""

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


@dg.sensor(
    name="asset_check_failure_alert",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed blocking (ERROR) asset checks to ALERT_WEBHOOK_URL.",
)
def asset_check_failure_alert(
    context: dg.SensorEvaluationContext, alerts: AlertWebhook
) -> dg.SkipReason | None:
    if not context.cursor:
        # First tick: start from now; failures from before the sensor ran are history.
        latest = context.instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION),
            ascending=False,
            limit=1,
        )
        context.update_cursor(str(latest[0].storage_id if latest else 0))
        return dg.SkipReason("watching asset check evaluations from now on")
    records = context.instance.get_event_records(
        dg.EventRecordsFilter(
            event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            after_cursor=int(context.cursor),
        ),
        ascending=True,
        limit=200,
    )
    sent = 0
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        run = context.instance.get_run_by_id(record.run_id)
        partition = run.tags.get("dagster/partition") if run else None
        where = f" for {partition}" if partition else ""
        asset = evaluation.asset_key.to_user_string()
        alerts.post(
            slack_message(
                f":warning: lake_assets check failed: {asset} {evaluation.check_name}{where}",
                {
                    "asset": asset,
                    "check": evaluation.check_name,
                    "partition": partition,
                    "run": record.run_id,
                    "error": alerts.redacted(evaluation.description),
                },
            )
        )
        sent += 1
    if records:
        context.update_cursor(str(records[-1].storage_id))
    if not sent:
        return dg.SkipReason(f"{len(records)} new check evaluation(s), none failed with ERROR")
    return None


alert_sensors = [run_failure_alert, asset_check_failure_alert]
