"""The monthly partitioning every trip asset shares, defined once."""

from datetime import date

import dagster as dg

from lake_assets.settings import DATATALKSCLUB_LAST_MONTH, Settings


def _next_month(month: str) -> str:
    year, m = int(month[:4]), int(month[5:7])
    return f"{year + m // 12:04d}-{m % 12 + 1:02d}"


def build_monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """Keys YYYY-MM from TLC_START_MONTH to the last month the source has (or TLC_END_MONTH).

    The DataTalksClub mirror ends at 2021-07. The TLC publishes about two months late, so its
    partitions end two months back and move on by themselves as time passes.
    """
    end = settings.end_month or (
        DATATALKSCLUB_LAST_MONTH if settings.tlc_source == "datatalksclub" else ""
    )
    if end:
        return dg.MonthlyPartitionsDefinition(
            start_date=settings.start_month, end_date=_next_month(end), fmt="%Y-%m"
        )
    return dg.MonthlyPartitionsDefinition(
        start_date=settings.start_month, fmt="%Y-%m", end_offset=-1
    )


monthly_partitions = build_monthly_partitions(Settings.from_env())


def partition_month(context: dg.AssetExecutionContext) -> date:
    """First day of the month being materialized."""
    return context.partition_time_window.start.date()


def partition_months(context: dg.AssetExecutionContext) -> list[date]:
    """First days of every month in the run's partition window (one, or a backfilled range)."""
    window = context.partition_time_window
    months, current = [], window.start.date()
    while current < window.end.date():
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


# Downloads run one month per run: each month's skip-unchanged decision, retries and data version
# are its own. A backfill that includes the raw assets therefore runs month by month.
ONE_MONTH_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# The layers derived from landed files (lake, warehouse, marts) take a backfilled range in one
# run, which saves a run's start-up per month (`make bench` measures it); each month is still
# converted and replaced on its own, with its own observation, and a month that fails midway
# leaves the months before it recorded as materialized.
RANGE_IN_ONE_RUN = dg.BackfillPolicy.single_run()
