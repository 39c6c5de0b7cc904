"""The monthly partitioning every trip asset shares, built from the settings (never at import)."""

from datetime import date

import dagster as dg

from lake_assets import identity
from lake_assets.settings import DATATALKSCLUB_LAST_MONTH, Settings


def build_monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """Keys YYYY-MM from TLC_START_MONTH to the last month the source has (or TLC_END_MONTH).

    The DataTalksClub mirror ends at 2021-07. The TLC publishes about two months late, so its
    partitions end two months back and move on by themselves as time passes.
    """
    end = settings.end_month or (
        DATATALKSCLUB_LAST_MONTH if settings.tlc_source == "datatalksclub" else ""
    )
    if end:
        after = identity.month_key(identity.next_month(identity.month_of(end)))
        return dg.MonthlyPartitionsDefinition(
            start_date=settings.start_month, end_date=after, fmt="%Y-%m"
        )
    return dg.MonthlyPartitionsDefinition(
        start_date=settings.start_month, fmt="%Y-%m", end_offset=-1
    )


def partition_month(context: dg.AssetExecutionContext) -> date:
    """First day of the month being materialized."""
    return context.partition_time_window.start.date()


def partition_months(context: dg.AssetExecutionContext) -> list[date]:
    """First days of every month in the run's partition window (one, or a backfilled range)."""
    window = context.partition_time_window
    return identity.months_between(window.start.date(), window.end.date())


# Downloads run one month per run: each month's skip-unchanged decision, retries and data version
# are its own. A backfill that includes the raw assets therefore runs month by month.
ONE_MONTH_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# The layers derived from landed files (lake, warehouse, marts) take a backfilled range in one
# run, which saves a run's start-up per month (`make bench` measures it); each month is still
# converted and replaced on its own, with its own observation, and a month that fails midway
# leaves the months before it recorded as materialized.
RANGE_IN_ONE_RUN = dg.BackfillPolicy.single_run()
