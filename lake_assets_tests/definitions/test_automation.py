"""Tier 3: declarative automation follows a new raw month down the layers."""

import dagster as dg

from lake_assets_tests.helpers import materialize, trip_selection


def test_automation_follows_a_new_raw_month_down_the_layers(http_server, settings, defs):
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_sensor_def("lake_assets_automation").default_status == (
        dg.DefaultSensorStatus.STOPPED
    )
    followers = [
        dg.AssetKey(["lake", "yellow_tripdata"]),
        dg.AssetKey(["warehouse", "yellow_tripdata"]),
        dg.AssetKey(["marts", "trips_by_zone_monthly"]),
    ]

    def requested(cursor=None):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        wanted = {
            (key.to_user_string(), pk)
            for key in followers
            for pk in result.get_requested_partitions(key)
        }
        return result, wanted

    # The sensor's first tick sets its baseline; the month lands after it.
    result, wanted = requested()
    assert wanted == set()
    http_server.publish("yellow", "2019-03", 50)  # an old month: not the latest partition
    assert materialize(defs, ["raw/yellow_tripdata"], "2019-03", instance=instance).success
    result, wanted = requested(result.cursor)
    # lake and warehouse in one go; the marts wait for the other services' months.
    assert wanted == {("lake/yellow_tripdata", "2019-03"), ("warehouse/yellow_tripdata", "2019-03")}
    assert materialize(defs, trip_selection("yellow")[1:], "2019-03", instance=instance).success
    result, wanted = requested(result.cursor)
    assert wanted == set()
