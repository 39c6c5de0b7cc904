"""What a user does in the Dagster UI, done in a real browser against the real stack: read the
graph and an asset's page, materialize a month and launch a backfill through the dialogs, read the
checks of each month (a failed one with its reason), and turn a sensor on. The tests run in file
order: the later ones read what the earlier ones materialized."""

from __future__ import annotations

import re
import urllib.parse

import dagster as dg
import pytest

# Dagster exports no public name for a tick's status.
from dagster._core.scheduler.instigation import TickStatus

from lake_assets import identity
from lake_assets.schemas import YELLOW
from lake_assets_tests.stack import BulkActionStatus
from lake_assets_tests.ui.conftest import EMPTY, ROWS, shown

pytestmark = pytest.mark.ui

PARTITIONS_INPUT = "ex: 2021-01, 2021-02"
JOB = "/locations/lake_assets/jobs/{}"
LAYERS = (identity.RAW, identity.LAKE, identity.WAREHOUSE, identity.MARTS)


def _launch(page, route: str, partitions: str, button: str | re.Pattern) -> str:
    """Materialize all… on route (a job's page, or the graph filtered to a selection), the
    partitions typed into the dialog; the id the confirmation names (a run's first 8
    characters, or a backfill's)."""
    page.goto(route)
    shown(page.get_by_role("button", name="Materialize all…"), "'Materialize all…' button").click()
    dialog = shown(page.get_by_role("dialog"), "partitions dialog")
    shown(dialog.get_by_placeholder(PARTITIONS_INPUT), "partition selection input").fill(partitions)
    page.keyboard.press("Enter")
    shown(dialog.get_by_role("button", name=button), f"{button!r} button").click()
    confirmation = shown(
        page.get_by_text(re.compile(r"(Launched run|Created backfill) [a-z0-9]+")),
        "confirmation of the launch",
    )
    return re.search(r"(?:run|backfill) ([a-z0-9]+)", confirmation.inner_text()).group(1)


def _run_ended(stack, prefix: str) -> dg.DagsterRun | None:
    with stack.instance() as instance:
        runs = [r for r in instance.get_runs(limit=50) if r.run_id.startswith(prefix)]
    if runs and runs[0].status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
        return runs[0]
    return None


def test_the_asset_graph_shows_the_four_layers_as_groups_in_lineage_order(page):
    page.goto("/asset-groups")
    shown(page.get_by_role("button", name=re.compile("Materialize all")), "graph toolbar")
    # The group boxes of the graph (not the sidebar's tree), left to right as the lineage runs.
    canvas_left = 520
    xs = {}
    for layer in LAYERS:
        shown(page.get_by_text(layer, exact=True), f"group {layer!r}")
        visible = [el for el in page.get_by_text(layer, exact=True).all() if el.is_visible()]
        boxes = [b for b in (el.bounding_box() for el in visible) if b and b["x"] > canvas_left]
        assert boxes, f"the graph shows no group box {layer!r}"
        xs[layer] = boxes[0]["x"]
    assert sorted(LAYERS, key=xs.get) == list(LAYERS), xs
    # The lineage of one table, as the asset page draws it.
    page.goto("/assets/warehouse/yellow_tripdata?view=lineage&lineageScope=neighbors")
    for key in ("lake/yellow_tripdata", "marts/service_summary_monthly"):
        shown(page.get_by_text(key.split("/")[1], exact=True), f"lineage node {key}")


def test_one_month_materialized_through_the_materialize_dialog(page, ui_stack):
    prefix = _launch(page, JOB.format("yellow_tripdata_job"), "2021-01", "Launch 1 run")
    run = ui_stack.wait(lambda: _run_ended(ui_stack, prefix), 300, f"run {prefix}")
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == "2021-01"
    page.goto(f"/runs/{run.run_id}")
    shown(page.get_by_text("Success", exact=True), "run status Success")
    assert ui_stack.warehouse_counts("yellow_tripdata") == {"2021-01": ROWS["yellow"]}


def test_the_warehouse_table_page_shows_description_schema_rows_and_partition_health(page):
    page.goto("/assets/warehouse/yellow_tripdata")
    shown(page.get_by_text("Table nyc_taxi.yellow_tripdata: each partition is"), "description")
    for column in YELLOW.column_names:
        shown(page.get_by_text(column, exact=True), f"column {column} of the schema")
    shown(page.get_by_text("Row count"), "row count label")
    shown(page.get_by_text(f"{ROWS['yellow']:,}", exact=True), "the month's row count")
    page.goto("/assets/warehouse/yellow_tripdata?view=partitions")
    shown(page.get_by_text("Materialized (1)"), "partition health: 1 materialized")
    shown(page.get_by_text("Missing (5)"), "partition health: 5 missing")


def test_a_backfill_of_two_months_and_three_services_through_the_dialog(page, ui_stack):
    # The graph filtered to the trip tables of every layer: an asset backfill, which runs each
    # asset under its own backfill policy (a backfill of a job's page runs the job per month).
    route = "/asset-groups~" + urllib.parse.quote('key:"*_tripdata"') + "/"
    backfill_id = _launch(page, route, "2021-02, 2021-03", "Launch backfill")
    status = ui_stack.wait(lambda: ui_stack.backfill_done(backfill_id), 600, "the backfill")
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    for service, rows in ROWS.items():
        counts = ui_stack.warehouse_counts(f"{service}_tripdata")
        assert {m: counts[m] for m in ("2021-02", "2021-03")} == {"2021-02": rows, "2021-03": rows}
    with ui_stack.instance() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    # The backfill policies: the downloads one month per run, the derived layers the range in one.
    spans = [
        (
            r.tags["dagster/asset_partition_range_start"],
            r.tags["dagster/asset_partition_range_end"],
            {k.to_user_string().split("/")[0] for k in r.asset_selection or ()},
        )
        for r in runs
    ]
    raw = sorted((start, end) for start, end, layers in spans if layers == {identity.RAW})
    derived = [(start, end, layers) for start, end, layers in spans if identity.RAW not in layers]
    assert raw == [("2021-02", "2021-02"), ("2021-03", "2021-03")], spans
    assert derived and {(start, end) for start, end, _ in derived} == {("2021-02", "2021-03")}
    assert set().union(*(layers for _, _, layers in derived)) == {identity.LAKE, identity.WAREHOUSE}
    page.goto(f"/runs/b/{backfill_id}")
    shown(page.get_by_text("Succeeded", exact=True), "backfill status Succeeded")


def _marts_match_the_warehouse(stack, months: list[str]) -> None:
    """Every mart month counts exactly the warehouse's trips of each service."""
    import duckdb

    con = duckdb.connect(stack.deployment.env["DUCKDB_PATH"], read_only=True)
    try:
        for month in months:
            for mart in ("service_summary_monthly", "trips_by_zone_monthly"):
                trips = dict(
                    con.execute(
                        f"SELECT service, sum(trips) FROM nyc_taxi.{mart} "
                        "WHERE source_month = ? GROUP BY 1",
                        [f"{month}-01"],
                    ).fetchall()
                )
                assert trips == ROWS, (mart, month, trips)
    finally:
        con.close()


def _backfill_whole_graph(page, stack, partitions: str) -> str:
    """Lineage -> Materialize all... over partitions, every asset of the graph (14, the zone
    lookup's three unpartitioned ones among them); the backfill's id once it has ended."""
    backfill_id = _launch(page, "/asset-groups", partitions, re.compile("Launch backfill"))
    status = stack.wait(lambda: stack.backfill_done(backfill_id), 600, "the backfill")
    assert status == BulkActionStatus.COMPLETED_SUCCESS, status
    with stack.instance() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        # Every selected partition of every asset was materialized: none left to Failed.
        backfill = instance.get_backfill(backfill_id)
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    page.goto(f"/runs/b/{backfill_id}")
    shown(page.get_by_text("Succeeded", exact=True), "backfill status Succeeded")
    # No asset row of the backfill counts a failed partition (the "Failed" column's cells).
    shown(page.get_by_text("marts / service_summary_monthly"), "the marts' row of the backfill")
    return backfill_id


def test_the_whole_graph_backfilled_over_new_then_loaded_months_completes(page, ui_stack):
    months = ["2021-05", "2021-06"]
    _backfill_whole_graph(page, ui_stack, ", ".join(months))
    _marts_match_the_warehouse(ui_stack, months)
    for service, rows in ROWS.items():
        counts = ui_stack.warehouse_counts(f"{service}_tripdata")
        assert {m: counts[m] for m in months} == dict.fromkeys(months, rows)
    # The same months again, nothing changed at the source: every run succeeds, the backfill
    # says Succeeded, and every selected partition is materialized again (cheaply).
    again = _backfill_whole_graph(page, ui_stack, ", ".join(months))
    with ui_stack.instance() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": again}))
        materialized = {
            (e.dagster_event.asset_key.to_user_string(), e.dagster_event.partition)
            for r in runs
            for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        }
    trip_keys = [
        identity.key_string(identity.trip_key(layer, s)) for layer in LAYERS[:3] for s in ROWS
    ]
    marts = ["marts/service_summary_monthly", "marts/trips_by_zone_monthly"]
    zones = [identity.key_string(identity.zones_key(layer)) for layer in LAYERS[:3]]
    assert materialized == {(k, m) for k in trip_keys + marts for m in months} | {
        (k, None) for k in zones
    }
    _marts_match_the_warehouse(ui_stack, months)


def test_one_month_whose_marts_are_missing_gets_them_from_the_graph(page, ui_stack):
    # 2021-03: every service's trips were loaded by the backfill above, its marts never. One
    # month of the whole graph is one run of its 14 assets.
    prefix = _launch(page, "/asset-groups", "2021-03", "Launch 1 run")
    run = ui_stack.wait(lambda: _run_ended(ui_stack, prefix), 300, f"run {prefix}")
    assert run.status == dg.DagsterRunStatus.SUCCESS
    with ui_stack.instance() as instance:
        materialized = {
            e.dagster_event.asset_key.to_user_string()
            for e in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            )
        }
    assert {"marts/service_summary_monthly", "marts/trips_by_zone_monthly"} <= materialized
    assert len(materialized) == 14
    _marts_match_the_warehouse(ui_stack, ["2021-03"])


def _reexecute(stack, run_id: str, strategy: str) -> dg.DagsterRun:
    """What the run page's Re-execute menu sends (From failure / All steps), then its end."""
    launched = stack.graphql(
        """mutation($parent: String!, $strategy: ReexecutionStrategy!) {
          launchPipelineReexecution(
            reexecutionParams: {parentRunId: $parent, strategy: $strategy}
          ) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
          }
        }""",
        {"parent": run_id, "strategy": strategy},
    )["launchPipelineReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    child = launched["run"]["runId"]
    return stack.wait(lambda: _run_ended(stack, child), 300, f"re-execution {child}")


def _step_errors(stack, run_id: str) -> str:
    with stack.instance() as instance:
        failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return "\n".join(e.dagster_event.event_specific_data.error.message for e in failures)


def test_a_bad_file_fixed_then_reexecuted_converges(page, ui_stack):
    """A month fails on a bad row; the source is fixed; Re-execute > From failure fails at once
    saying to re-execute all steps (it has no raw step to fetch with); All steps converges."""
    from lake_dev import generator

    service, month = "fhv", "2021-06"
    path = ui_stack.mirror / service / f"{service}_tripdata_{month}.csv.gz"
    lines = generator.gzip_text(path).splitlines()
    fields = lines[3].split(",")
    fields[1] = "not a time"  # pickup_datetime
    lines[3] = ",".join(fields)
    path.write_bytes(generator.gzip_bytes("\n".join(lines) + "\n"))
    prefix = _launch(page, JOB.format(f"{service}_tripdata_job"), month, "Launch 1 run")
    failed = ui_stack.wait(lambda: _run_ended(ui_stack, prefix), 300, f"run {prefix}")
    assert failed.status == dg.DagsterRunStatus.FAILURE
    assert "line 4" in _step_errors(ui_stack, failed.run_id)
    assert ui_stack.warehouse_counts(f"{service}_tripdata")[month] == ROWS[service]

    path.write_bytes(_fixed_month(service, month))
    from_failure = _reexecute(ui_stack, failed.run_id, "FROM_FAILURE")
    assert from_failure.status == dg.DagsterRunStatus.FAILURE
    assert "re-execute all steps (Re-execute > All steps in root run)" in _step_errors(
        ui_stack, from_failure.run_id
    )
    page.goto(f"/runs/{from_failure.run_id}")
    shown(page.get_by_text(re.compile("re-execute all steps")), "the failure's advice")

    all_steps = _reexecute(ui_stack, from_failure.run_id, "ALL_STEPS")
    assert all_steps.status == dg.DagsterRunStatus.SUCCESS
    assert ui_stack.warehouse_counts(f"{service}_tripdata")[month] == FIXED_ROWS


FIXED_ROWS = 650


def _fixed_month(service: str, month: str) -> bytes:
    """The month as the source republishes it once fixed: other rows than before."""
    import tempfile
    from datetime import date
    from pathlib import Path

    from lake_dev import generator

    with tempfile.TemporaryDirectory() as d:
        out = generator.write_month(
            service, date.fromisoformat(f"{month}-01"), FIXED_ROWS, Path(d) / "m.csv.gz"
        )
        return out.read_bytes()


def test_the_checks_tab_lists_each_months_result_on_that_month(page, ui_stack):
    check = "rows_accounted_for"
    executions = ui_stack.graphql(
        """query($key: AssetKeyInput!, $check: String!) {
          assetCheckExecutions(assetKey: $key, checkName: $check, limit: 20) {
            status evaluation { success partition description }
          }
        }""",
        {"key": {"path": ["lake", "yellow_tripdata"]}, "check": check},
    )["assetCheckExecutions"]
    by_month = {e["evaluation"]["partition"]: e for e in executions if e["evaluation"]}
    assert sorted(by_month) == ["2021-01", "2021-02", "2021-03", "2021-05", "2021-06"]
    for month, e in by_month.items():
        rows = ROWS["yellow"]
        assert (e["status"], e["evaluation"]["description"]) == (
            "SUCCEEDED",
            f"{rows} source rows = {rows} written + 0 rejected",
        ), month
    assert {e["status"] for e in executions} == {"SUCCEEDED"}, "a check left without a result"

    page.goto(f"/assets/lake/yellow_tripdata?view=checks&checkDetail={check}")
    shown(page.get_by_text("Execution history"), "the check's execution history tab").click()
    for month in ("2021-01", "2021-02", "2021-03", "2021-05", "2021-06"):
        shown(page.get_by_text(month, exact=True), f"the {month} result in the history")
    assert page.get_by_text("Skipped", exact=True).count() == 0


def test_a_month_failing_a_blocking_check_shows_as_failed_with_its_reason(page, ui_stack):
    service, month = EMPTY
    prefix = _launch(page, JOB.format(f"{service}_tripdata_job"), month, "Launch 1 run")
    run = ui_stack.wait(lambda: _run_ended(ui_stack, prefix), 300, f"run {prefix}")
    assert run.status == dg.DagsterRunStatus.FAILURE
    page.goto(f"/assets/lake/{service}_tripdata?view=checks&checkDetail=month_not_empty")
    shown(page.get_by_text("the month has no rows"), "the failed check's reason")
    shown(page.get_by_text("Failed", exact=True), "the check shown as failed")
    shown(page.get_by_text(month, exact=True), f"the failed check on {month}")
    # The warehouse never saw the empty month.
    assert month not in ui_stack.warehouse_counts(f"{service}_tripdata")


def test_a_sensor_turned_on_under_automation_ticks(page, ui_stack):
    sensor = "fhv_new_release_sensor"
    page.goto(f"/locations/lake_assets/sensors/{sensor}")
    # The switch's checkbox is drawn by its label: a user clicks the label.
    toggle = page.get_by_role("checkbox")
    switch = shown(page.locator("label").filter(has=toggle), f"the Running switch of {sensor}")
    assert not toggle.is_checked()
    switch.click()
    assert toggle.is_checked()

    def ticked() -> list:
        with ui_stack.instance() as instance:
            state = next(
                (s for s in instance.all_instigator_state() if s.instigator_name == sensor), None
            )
            if state is None or not state.is_running:
                return []
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
            return [t for t in ticks if t.status != TickStatus.STARTED]

    ticks = ui_stack.wait(ticked, 180, f"an evaluated tick of {sensor}")
    # Every fhv month up to the last one, 2021-06, was landed by the backfills above.
    assert ticks[0].status == TickStatus.SKIPPED, ticks[0]
    assert ticks[0].skip_reason == (
        "every fhv month up to 2021-06 is landed or requested; later months are outside the "
        "partitions (TLC_END_MONTH, or the source's last month)"
    )
    page.reload()
    # The tick table shows a skipped tick as "0 runs requested"; hovering it shows the reason.
    shown(page.get_by_text("0 runs requested", exact=True), "the skipped tick").hover()
    shown(page.get_by_text(ticks[0].skip_reason, exact=True), "the tick's skip reason on hover")
