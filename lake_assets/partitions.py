"""The monthly partitioning every trip asset shares, defined once."""

from __future__ import annotations

from datetime import date

import dagster as dg

# The DataTalksClub mirror publishes 2019-01 through 2021-07; end_date is exclusive.
FIRST_MONTH = "2019-01"
END_MONTH_EXCLUSIVE = "2021-08"

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_MONTH, end_date=END_MONTH_EXCLUSIVE, fmt="%Y-%m"
)


def partition_month(context: dg.AssetExecutionContext) -> date:
    """First day of the month being materialized."""
    return context.partition_time_window.start.date()
