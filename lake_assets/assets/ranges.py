"""One month, or a range of months in one run (a backfill): what Dagster records for each.

A single month returns its own metadata and check results. A range records one
materialization for every month of it, each with that month's own figures (partition-scoped
metadata) beside a table of the run by month, and each month's check results filed under that
month. If a month fails midway, the months already written are recorded as materialized, with
their checks, before the error propagates, so the catalog matches the data.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from lake_assets import quality, steps
from lake_assets.assets import checks


@dataclass(frozen=True)
class MonthDone:
    month: date
    metadata: dict
    outcomes: list[quality.Outcome] = field(default_factory=list)


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    def cell(v) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _label(month: date) -> str:
    return f"{month:%Y-%m}"


def _record(context: dg.AssetExecutionContext, key: dg.AssetKey, done: list[MonthDone]) -> None:
    """The months a failed range wrote before its failure: materialized, with their checks."""
    for d in done:
        context.log_event(
            dg.AssetMaterialization(asset_key=key, partition=_label(d.month), metadata=d.metadata)
        )
    found = checks.targets(context, key, [_label(d.month) for d in done]) if done else {}
    for d in done:
        label = _label(d.month)
        for evaluation in checks.evaluations(key, label, d.outcomes, found.get(label)):
            context.log_event(evaluation)


def blocked(
    label: str | None, e: steps.BlockingCheckFailed, key: dg.AssetKey | None = None
) -> Iterator:
    """The failed month's check results (with key: filed under that month of a range), then the
    step's failure (not retried: the same input fails the same check again)."""
    if key is not None and label is not None:
        yield from checks.evaluations(key, label, e.outcomes)
    else:
        yield from checks.results(e.outcomes)
    where = f"{label}: " if label else ""
    raise dg.Failure(description=f"{where}{e}", allow_retries=False) from e


def run_months(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    months: Sequence[date],
    build: Callable[[date], MonthDone],
    summary_header: list[str],
    summary: Callable[[MonthDone], tuple],
) -> Iterator:
    """Yields the materialization (and check results) of the months, or of the months done
    before one that failed, then that failure."""
    ranged = len(months) > 1
    done: list[MonthDone] = []
    for i, month in enumerate(months):
        if ranged:
            context.log.info(f"{_label(month)}: month {i + 1} of {len(months)}")
        try:
            done.append(build(month))
        except steps.BlockingCheckFailed as e:
            if ranged:
                _record(context, key, done)
            yield from blocked(_label(month), e, key if ranged else None)
        except BaseException:
            if ranged:
                _record(context, key, done)
            raise
    for d in done:
        for problem in checks.failed(d.outcomes):
            context.log.error(
                f"{_label(d.month)}: blocking check failed, downstream steps will not run: "
                f"{problem}"
            )
    if not ranged:
        d = done[0]
        yield dg.MaterializeResult(metadata=d.metadata, check_results=checks.results(d.outcomes))
        return
    # Each month keeps its own figures (rows, bytes, null rates, schema) on its own
    # materialization; the run's summary goes on every month of it beside them.
    for d in done:
        context.add_asset_metadata(d.metadata, partition_key=_label(d.month))
    rows = [(_label(d.month), *summary(d)) for d in done]
    yield dg.MaterializeResult(
        metadata={
            "months": len(done),
            "rows_in_run": sum(int(d.metadata.get("dagster/row_count", 0)) for d in done),
            "by_month": dg.MetadataValue.md(markdown_table(["month", *summary_header], rows)),
        }
    )
    # The materializations above are stored by now: link each month's results to its own.
    found = checks.targets(context, key, [_label(d.month) for d in done])
    for d in done:
        label = _label(d.month)
        yield from checks.evaluations(key, label, d.outcomes, found.get(label))
    yield from checks.planned_outputs(context)
