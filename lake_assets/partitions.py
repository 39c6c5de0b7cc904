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
