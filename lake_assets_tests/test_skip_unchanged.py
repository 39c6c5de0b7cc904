"""Caching: an unchanged source keeps the landed file and skips the steps downstream."""

import os
import time

import dagster as dg

from lake_assets_tests.helpers import materialize, month_counts, trip_selection


def _events(result, event_type: str) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == event_type}


def _raw_observations(instance: dg.DagsterInstance, key: str) -> list[dict]:
    records = instance.fetch_observations(dg.AssetKey(key.split("/")), limit=10).records
    return [
        {k: v.value for k, v in r.asset_observation.metadata.items()}
        | {"partition": r.partition_key}
        for r in records
    ]


def test_conditional_request_skips_an_unchanged_month(http_server, settings, defs):
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-05", 500)
    first = materialize(defs, trip_selection("yellow"), "2021-05", instance=instance)
    assert first.success
    second = materialize(defs, trip_selection("yellow"), "2021-05", instance=instance)
    assert second.success
    method, _, headers = http_server.behaviour.requests[-1]
    assert method == "GET" and "If-Modified-Since" in headers
    assert not second.get_asset_materialization_events()
    assert _events(second, "STEP_SKIPPED") == {
        "lake__yellow_tripdata",
        "warehouse__yellow_tripdata",
    }
    (observation,) = _raw_observations(instance, "raw/yellow_tripdata")
    assert observation == {
        "unchanged": True,
        "reason": "the source answered 304 Not Modified",
        "source_url": f"{http_server.url}/yellow/yellow_tripdata_2021-05.csv.gz",
        "partition": "2021-05",
    }
    # The data version the lake step was built from is still the current one.
    record = instance.get_latest_data_version_record(dg.AssetKey(["raw", "yellow_tripdata"]))
    first_raw = [
        e
        for e in first.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "raw/yellow_tripdata"
    ][0]
    assert (
        record.asset_materialization.metadata["sha256"]
        == (first_raw.materialization.metadata["sha256"])
    )
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-05": 500}


def test_same_bytes_without_validators_are_detected_by_hash(http_server, settings, defs):
    http_server.behaviour.no_validators = True
    instance = dg.DagsterInstance.ephemeral()
    src = http_server.publish("green", "2021-05", 200)
    assert materialize(defs, trip_selection("green"), "2021-05", instance=instance).success
    # Re-published with a new modification time but the same bytes.
    os.utime(src, (time.time() + 60, time.time() + 60))
    second = materialize(defs, trip_selection("green"), "2021-05", instance=instance)
    assert second.success
    assert "If-Modified-Since" not in http_server.behaviour.requests[-1][2]
    assert not second.get_asset_materialization_events()
    (observation,) = _raw_observations(instance, "raw/green_tripdata")
    assert observation["reason"] == "the source's bytes have the sha256 of the landed file"


def test_a_republished_month_is_landed_and_recomputed(http_server, settings, defs):
    instance = dg.DagsterInstance.ephemeral()
    src = http_server.publish("fhv", "2021-05", 300)
    assert materialize(defs, trip_selection("fhv"), "2021-05", instance=instance).success
    http_server.publish("fhv", "2021-05", 350)
    os.utime(src, (time.time() + 60, time.time() + 60))
    second = materialize(defs, trip_selection("fhv"), "2021-05", instance=instance)
    assert second.success
    assert {e.asset_key.to_user_string() for e in second.get_asset_materialization_events()} == {
        "raw/fhv_tripdata",
        "lake/fhv_tripdata",
        "warehouse/fhv_tripdata",
    }
    assert month_counts(settings.duckdb_path, "fhv_tripdata") == {"2021-05": 350}


def test_a_deleted_landed_file_is_fetched_again(http_server, settings, defs):
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-06", 100)
    assert materialize(defs, ["raw/yellow_tripdata"], "2021-06", instance=instance).success
    landed = os.path.join(
        settings.lake_dir, "raw/yellow_tripdata/candidate/yellow_tripdata_2021-06.csv.gz"
    )
    os.remove(landed)
    again = materialize(defs, ["raw/yellow_tripdata"], "2021-06", instance=instance)
    assert len(again.get_asset_materialization_events()) == 1
    assert "If-Modified-Since" not in http_server.behaviour.requests[-1][2]
    assert os.path.exists(landed)


def test_zones_too(http_server, settings, defs):
    instance = dg.DagsterInstance.ephemeral()
    zones = ["raw/taxi_zones", "lake/taxi_zones", "warehouse/taxi_zones"]
    assert materialize(defs, zones, instance=instance).success
    second = materialize(defs, zones, instance=instance)
    assert _events(second, "STEP_SKIPPED") == {"lake__taxi_zones", "warehouse__taxi_zones"}


def test_a_landing_in_another_lake_on_the_same_instance_is_not_reused(
    http_server, settings, tmp_path
):
    """Two backends share a DAGSTER_HOME: the second lake holds the same bytes (copied), but its
    warehouse was never built, so nothing may be skipped there."""
    import dataclasses
    import shutil
    from pathlib import Path

    from lake_assets.definitions import build_definitions
    from lake_assets_tests.helpers import ZONES

    instance = dg.DagsterInstance.ephemeral()
    assert materialize(build_definitions(settings), ZONES, instance=instance).success
    other = dataclasses.replace(
        settings, lake_dir=str(tmp_path / "lake_b"), duckdb_path=str(tmp_path / "b.duckdb")
    )
    raw = "raw/taxi_zones/taxi_zone_lookup.csv"
    (Path(other.lake_dir) / raw).parent.mkdir(parents=True)
    shutil.copyfile(Path(settings.lake_dir) / raw, Path(other.lake_dir) / raw)
    result = materialize(build_definitions(other), ZONES, instance=instance)
    assert result.success
    assert not _events(result, "STEP_SKIPPED")
    import duckdb

    con = duckdb.connect(other.duckdb_path, read_only=True)
    assert con.execute("SELECT count(*) FROM nyc_taxi.taxi_zones").fetchone() == (265,)
    con.close()


def _lake_version(instance: dg.DagsterInstance, service: str, month: str) -> tuple[str, str]:
    record = instance.get_latest_data_version_record(
        dg.AssetKey(["lake", f"{service}_tripdata"]), partition_key=month
    )
    materialization = record.asset_materialization
    return materialization.tags["dagster/data_version"], materialization.metadata["sha256"].value


def test_rebuilding_a_month_from_the_same_landed_file_keeps_its_data_version(
    http_server, settings, defs
):
    """The lake month's version is Dagster's, from the code version and the raw file's, not the
    Parquet file's sha256, which DuckDB does not keep stable across builds of a large month."""
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-05", 500)
    assert materialize(defs, trip_selection("yellow"), "2021-05", instance=instance).success
    version, sha = _lake_version(instance, "yellow", "2021-05")
    assert version != sha
    assert materialize(defs, ["lake/yellow_tripdata"], "2021-05", instance=instance).success
    assert _lake_version(instance, "yellow", "2021-05")[0] == version
    # A republished month is a new version.
    src = http_server.publish("yellow", "2021-05", 501)
    os.utime(src, (time.time() + 60, time.time() + 60))
    assert materialize(defs, trip_selection("yellow"), "2021-05", instance=instance).success
    assert _lake_version(instance, "yellow", "2021-05")[0] != version
