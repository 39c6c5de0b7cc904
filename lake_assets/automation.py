"""Declarative automation: lake, warehouse and marts follow their upstream once switched on.

The condition is Dagster's eager() without its latest-window limit, so a re-landed old month
is converted and loaded too, not only the newest. Nothing happens until the user turns the
`lake_assets_automation` sensor on (UI: Automation), so a laptop never starts work by itself.
"""

import dagster as dg

FOLLOW_UPSTREAM = dg.AutomationCondition.eager().without(
    dg.AutomationCondition.in_latest_time_window()
)

automation_sensor = dg.AutomationConditionSensorDefinition(
    "lake_assets_automation",
    target=dg.AssetSelection.groups("lake", "warehouse", "marts"),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Materializes lake, warehouse and mart partitions when their upstream changes.",
)
