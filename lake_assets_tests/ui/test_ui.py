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


def _launch(page, route: str, partitions: str, button: str) -> str:
    """Materialize all… on route (a job's page, or the graph filtered to a selection), the
    partitions typed into the dialog; the id the confirmation names (a run's first 8
    characters, or a backfill's)."""
    page.goto(route)
    shown(page.get_by_role("button", name="Materialize all…"), "'Materialize all…' button").click()
    dialog = shown(page.get_by_role("dialog"), "partitions dialog")
    shown(dialog.get_by_placeholder(PARTITIONS_INPUT), "partition selection input").fill(partitions)
    page.keyboard.press("Enter")
    shown(dialog.get_by_role("button", name=button), f"'{button}' button").click()
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
    shown(page.get_by_text("Missing (3)"), "partition health: 3 missing")


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
    assert sorted(by_month) == ["2021-01", "2021-02", "2021-03"]
    for month, e in by_month.items():
        rows = ROWS["yellow"]
        assert (e["status"], e["evaluation"]["description"]) == (
            "SUCCEEDED",
            f"{rows} source rows = {rows} written + 0 rejected",
        ), month
    assert {e["status"] for e in executions} == {"SUCCEEDED"}, "a check left without a result"

    page.goto(f"/assets/lake/yellow_tripdata?view=checks&checkDetail={check}")
    shown(page.get_by_text("Execution history"), "the check's execution history tab").click()
    for month in ("2021-01", "2021-02", "2021-03"):
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
    assert ticks[0].status in (TickStatus.SKIPPED, TickStatus.SUCCESS), ticks[0]
    page.reload()
    tick = re.compile(r"\d+ runs? requested|Skipped")
    shown(page.get_by_text(tick), "the tick in the sensor's page")
