"""One month, or a range of months in one run (a backfill): what Dagster records for each.

A single month returns its own metadata and check results. A range records one
materialization for every month of it, so each month's own figures go into an observation of
that month, the checks are combined (a check passes only if it passes for every month), and the
materialization carries a table by month. If a month fails midway, the months already written
are recorded as materialized before the error propagates, so the catalog matches the data.
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
    for d in done:
        context.log_event(
            dg.AssetMaterialization(asset_key=key, partition=_label(d.month), metadata=d.metadata)
        )


def blocked(label: str | None, e: steps.BlockingCheckFailed) -> Iterator:
    """The failed month's check results, then the step's failure (not retried: the same input
    fails the same check again)."""
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
    done: list[MonthDone] = []
    for month in months:
        try:
            done.append(build(month))
        except steps.BlockingCheckFailed as e:
            if len(months) > 1:
                _record(context, key, done)
            yield from blocked(_label(month), e)
        except BaseException:
            if len(months) > 1:
                _record(context, key, done)
            raise
    for d in done:
        for problem in checks.failed(d.outcomes):
            context.log.error(
                f"{_label(d.month)}: blocking check failed, downstream steps will not run: "
                f"{problem}"
            )
    if len(done) == 1:
        d = done[0]
        yield dg.MaterializeResult(metadata=d.metadata, check_results=checks.results(d.outcomes))
        return
    for d in done:
        context.log_event(
            dg.AssetObservation(asset_key=key, partition=_label(d.month), metadata=d.metadata)
        )
    names = list(dict.fromkeys(o.name for d in done for o in d.outcomes))
    by_name = {
        n: [(_label(d.month), o) for d in done for o in d.outcomes if o.name == n] for n in names
    }
    combined = [quality.combine(n, by_month) for n, by_month in by_name.items()]
    rows = [(_label(d.month), *summary(d)) for d in done]
    yield dg.MaterializeResult(
        metadata={
            "months": len(done),
            # Not dagster/row_count: Dagster copies this result to every month of the range.
            "rows_in_run": sum(int(d.metadata.get("dagster/row_count", 0)) for d in done),
            "by_month": dg.MetadataValue.md(markdown_table(["month", *summary_header], rows)),
        },
        check_results=checks.results(combined),
    )
