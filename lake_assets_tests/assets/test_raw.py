"""Tier 2: raw/* materialized against a real lake and DuckDB file in tmp_path: landing, skip-
unchanged and recovery, retries and the errors that fail at once.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import dagster as dg
import duckdb

from lake_assets.definitions import build_definitions
from lake_assets_tests.helpers import (
    ZONES,
    failed_step,
    failure_message,
    lake_files,
    materialize,
    metadata,
    month_counts,
    steps_with,
    trip_selection,
)


def _lake_version(instance: dg.DagsterInstance, service: str, month: str) -> tuple[str, str]:
    record = instance.get_latest_data_version_record(
        dg.AssetKey(["lake", f"{service}_tripdata"]), partition_key=month
    )
    materialization = record.asset_materialization
    return materialization.tags["dagster/data_version"], materialization.metadata["sha256"].value


GREEN = trip_selection("green")


def test_truncated_download_keeps_the_landed_file(http_server, settings, defs):
    src = http_server.publish("fhv", "2020-02", 2000)
    assert materialize(defs, ["raw/fhv_tripdata"], "2020-02").success
    # A raw landing waits as a candidate until a lake step has converted it.
    landed = Path(settings.lake_dir) / "raw/fhv_tripdata/candidate/fhv_tripdata_2020-02.csv.gz"
    good = landed.read_bytes()
    data = src.read_bytes()
    http_server.put("fhv/fhv_tripdata_2020-02.csv.gz", data[: len(data) * 2 // 3])
    result = materialize(defs, ["raw/fhv_tripdata"], "2020-02")
    assert not result.success
    assert "fhv_tripdata_2020-02.csv.gz: gzip stream is truncated" in failure_message(result)
    assert landed.read_bytes() == good
    assert lake_files(settings) == ["raw/fhv_tripdata/candidate/fhv_tripdata_2020-02.csv.gz"]


def test_http_404_fails_at_once_with_the_url(http_server, settings, defs):
    result = materialize(defs, trip_selection("green"), "2019-05")
    assert not result.success
    assert failed_step(result) == "raw__green_tripdata"
    url = f"{http_server.url}/green/green_tripdata_2019-05.csv.gz"
    assert f"{url}: HTTP 404 (not published there)" in failure_message(result)
    assert http_server.behaviour.hits["/green/green_tripdata_2019-05.csv.gz"] == 1  # no retries
    assert lake_files(settings) == []


def test_transient_errors_are_retried(http_server, settings, defs):
    http_server.publish("yellow", "2019-02", 10)
    http_server.behaviour.status["/yellow/yellow_tripdata_2019-02.csv.gz"] = [503, 503]
    result = materialize(defs, ["raw/yellow_tripdata"], "2019-02")
    assert result.success
    assert http_server.behaviour.hits["/yellow/yellow_tripdata_2019-02.csv.gz"] == 3


def test_an_unchanged_month_materializes_every_layer_without_converting(
    http_server, settings, defs
):
    """An explicit run of an unchanged month ends with every selected asset materialized: the
    source answers 304, the lake file is verified and kept, the warehouse month reloaded."""
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-05", 500)
    first = materialize(defs, trip_selection("yellow"), "2021-05", instance=instance)
    assert first.success
    parquet = Path(settings.lake_dir) / "lake/yellow_tripdata/yellow_tripdata_2021-05.parquet"
    before = parquet.stat()
    second = materialize(defs, trip_selection("yellow"), "2021-05", instance=instance)
    assert second.success
    # No ETag from this server: its Last-Modified and size, asked by HEAD, say unchanged.
    method, _, _ = http_server.behaviour.requests[-1]
    assert method == "HEAD"
    assert not steps_with(second, "STEP_SKIPPED")
    assert {e.asset_key.to_user_string() for e in second.get_asset_materialization_events()} == {
        "raw/yellow_tripdata",
        "lake/yellow_tripdata",
        "warehouse/yellow_tripdata",
    }
    raw = metadata(second, "raw/yellow_tripdata")
    promoted = "raw/yellow_tripdata/yellow_tripdata_2021-05.csv.gz"
    assert raw["unchanged"] == "the source's Last-Modified and size are those of the landed file"
    assert (raw["path"], raw["promoted_path"]) == (promoted, promoted)
    assert raw["uri"] == (Path(settings.lake_dir) / promoted).resolve().as_uri()
    assert raw["sha256"] == metadata(first, "raw/yellow_tripdata")["sha256"]
    # No conversion: the very same file, and the metadata says it was kept.
    after = parquet.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    lake = metadata(second, "lake/yellow_tripdata")
    assert lake["reused"] is True
    assert lake["dagster/row_count"] == 500
    assert lake["sha256"] == metadata(first, "lake/yellow_tripdata")["sha256"]
    assert lake["raw_sha256"] == raw["sha256"]
    assert {c.check_name: c.passed for c in second.get_asset_check_evaluations()} == {
        c.check_name: c.passed for c in first.get_asset_check_evaluations()
    }
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
    raw = metadata(second, "raw/green_tripdata")
    assert raw["unchanged"] == "the source's bytes have the sha256 of the landed file"
    assert metadata(second, "lake/green_tripdata")["reused"] is True
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-05": 200}


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
    assert second.success
    assert not steps_with(second, "STEP_SKIPPED")
    assert len(second.get_asset_materialization_events()) == 3
    assert metadata(second, "lake/taxi_zones")["reused"] is True
    # The zone checks ran again on the kept file: none is left without a result.
    assert {(c.check_name, c.passed) for c in second.get_asset_check_evaluations()} == {
        ("schema_matches_contract", True),
        ("unique_location_ids", True),
        ("borough_present", True),
    }


def test_a_landing_in_another_lake_on_the_same_instance_is_not_reused(
    http_server, settings, tmp_path
):
    """Two backends share a DAGSTER_HOME: the second lake holds the same bytes (copied), but its
    warehouse was never built, so nothing may be skipped there."""
    import dataclasses
    import shutil
    from pathlib import Path

    from lake_assets.definitions import build_definitions

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
    assert not steps_with(result, "STEP_SKIPPED")

    con = duckdb.connect(other.duckdb_path, read_only=True)
    assert con.execute("SELECT count(*) FROM nyc_taxi.taxi_zones").fetchone() == (265,)
    con.close()


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


def test_a_rerun_after_a_lost_warehouse_step_rebuilds_it_from_the_landed_file(
    http_server, settings, defs
):
    """What a kill -9 during the warehouse step leaves: raw and lake of the new file, the
    warehouse of the old one. The same command again must load the new month, not skip it."""
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-02", 100)
    assert materialize(defs, trip_selection("yellow"), "2021-02", instance=instance).success
    src = http_server.publish("yellow", "2021-02", 3000)
    later = time.time() + 120
    os.utime(src, (later, later))
    partial = trip_selection("yellow", layers=("raw", "lake"))
    assert materialize(defs, partial, "2021-02", instance=instance).success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-02": 100}

    rerun = materialize(defs, trip_selection("yellow"), "2021-02", instance=instance)
    assert rerun.success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-02": 3000}
    raw = metadata(rerun, "raw/yellow_tripdata")
    assert raw["unchanged"] == "the source's Last-Modified and size are those of the landed file"
    assert metadata(rerun, "lake/yellow_tripdata")["reused"] is True
    assert metadata(rerun, "warehouse/yellow_tripdata")["raw_sha256"] == raw["sha256"]


def test_a_lake_folder_that_cannot_exist_fails_at_once(http_server, settings, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the lake's parent folder should be")
    broken = dataclasses.replace(settings, lake_dir=str(blocker / "lake"))
    http_server.publish("green", "2021-01", 10)
    result = materialize(build_definitions(broken), ["raw/green_tripdata"], "2021-01")
    assert not result.success
    assert not steps_with(result, "STEP_UP_FOR_RETRY")
    assert "NotADirectoryError" in failure_message(result)


def test_transient_then_success_converges_with_exact_counts(http_server, settings, defs):
    http_server.publish("green", "2021-02", 77)
    http_server.behaviour.status["/green/green_tripdata_2021-02.csv.gz"] = [503]
    result = materialize(defs, GREEN, "2021-02")
    assert result.success
    assert "raw__green_tripdata" in steps_with(result, "STEP_UP_FOR_RETRY")
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-02": 77}


def test_an_html_page_fails_at_once_and_keeps_the_month(http_server, settings, defs):
    http_server.publish("green", "2021-05", 60)
    assert materialize(defs, GREEN, "2021-05").success
    http_server.behaviour.faults["/green/green_tripdata_2021-05.csv.gz"] = "html"
    result = materialize(defs, GREEN, "2021-05")
    assert not result.success
    assert not steps_with(result, "STEP_UP_FOR_RETRY")
    assert "with an HTML page (Content-Type text/html)" in failure_message(result)
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-05": 60}


def test_stale_scratch_is_removed_by_the_next_step(http_server, settings, defs):
    from lake_assets import scratch

    staging = Path(settings.lake_dir) / ".staging"
    stale = staging / f"{scratch.PREFIX}killed"
    stale.mkdir(parents=True)
    (stale / scratch.LOCK_NAME).touch()  # its owner is gone: nobody holds the lock
    (stale / "download").write_bytes(b"x" * 1000)
    (stale / "out.parquet.inprogress").write_bytes(b"x")
    (stale / "duckdb_spill").mkdir()
    http_server.publish("green", "2021-06", 20)
    assert materialize(defs, GREEN, "2021-06").success
    assert not stale.exists()
    assert list(staging.iterdir()) == []


def test_a_304_to_a_request_without_validators_fails_at_once(http_server, settings, defs):
    http_server.publish("green", "2021-03", 30)
    path = "/green/green_tripdata_2021-03.csv.gz"
    http_server.behaviour.status[path] = [304]  # a broken proxy: nothing was asked to match
    result = materialize(defs, ["raw/green_tripdata"], "2021-03")
    assert not result.success
    assert not steps_with(result, "STEP_UP_FOR_RETRY")
    assert http_server.behaviour.hits[path] == 1
    assert failure_message(result) == (
        f"dagster._core.definitions.events.Failure: {http_server.url}{path}: the server "
        "answered 304 Not Modified to a request without validators (a broken proxy or CDN); "
        "nothing was downloaded\n"
    )
    assert lake_files(settings) == []


def test_credentials_in_the_source_url_never_reach_metadata_or_logs(http_server, settings):
    secret_url = settings.tlc_source_url.replace("http://", "http://reader:pa55word@") + (
        "?sig=s3cr3t&sv=2022"
    )
    signed = dataclasses.replace(settings, tlc_source_url=secret_url)
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-04", 20)
    result = materialize(
        build_definitions(signed), ["raw/yellow_tripdata"], "2021-04", instance=instance
    )
    assert result.success
    host = http_server.url.removeprefix("http://")
    assert metadata(result, "raw/yellow_tripdata")["source_url"] == (
        f"http://<redacted>@{host}/yellow/yellow_tripdata_2021-04.csv.gz?sig=<redacted>&sv=2022"
    )
    logged = [str(e) for e in instance.all_logs(result.run_id)]
    assert any("landed http://<redacted>@" in line for line in logged)
    assert not [line for line in logged if "pa55word" in line or "s3cr3t" in line]
    # A failure's text is redacted too.
    failed = materialize(
        build_definitions(signed), ["raw/yellow_tripdata"], "2019-01", instance=instance
    )
    assert not failed.success
    message = failure_message(failed)
    assert "HTTP 404" in message and "pa55word" not in message and "s3cr3t" not in message


def test_an_etag_makes_the_request_conditional(http_server, settings, defs):
    http_server.behaviour.etags = True
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("green", "2021-04", 40)
    assert materialize(defs, trip_selection("green"), "2021-04", instance=instance).success
    again = materialize(defs, trip_selection("green"), "2021-04", instance=instance)
    assert again.success
    method, _, headers = http_server.behaviour.requests[-1]
    assert method == "GET" and "If-None-Match" in headers
    assert "If-Modified-Since" not in headers
    assert metadata(again, "raw/green_tripdata")["unchanged"] == (
        "the source answered 304 Not Modified to its ETag"
    )
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-04": 40}


def test_a_file_replaced_with_its_time_kept_is_landed(http_server, settings, defs):
    """cp -p, rsync -a: the same Last-Modified, other bytes. The size tells."""
    instance = dg.DagsterInstance.ephemeral()
    src = http_server.publish("fhv", "2021-04", 300)
    assert materialize(defs, trip_selection("fhv"), "2021-04", instance=instance).success
    kept = src.stat()
    http_server.publish("fhv", "2021-04", 350)
    os.utime(src, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    again = materialize(defs, trip_selection("fhv"), "2021-04", instance=instance)
    assert again.success
    assert metadata(again, "raw/fhv_tripdata")["unchanged"] == "no: new bytes landed"
    assert month_counts(settings.duckdb_path, "fhv_tripdata") == {"2021-04": 350}


def test_a_redirect_from_a_public_source_into_a_private_address_is_refused(
    http_server, settings, defs, monkeypatch
):
    """The resolver is injected: the test server stands for a public host, and internal.test
    for a private one. Nothing connects to internal.test: the redirect is refused first."""
    from lake_assets import fetch

    addresses = {"127.0.0.1": {"93.184.216.34"}, "internal.test": {"10.20.30.40"}}
    monkeypatch.setattr(fetch, "resolve", lambda host: addresses.get(host, set()))
    path = "/yellow/yellow_tripdata_2021-04.csv.gz"
    http_server.behaviour.redirects[path] = "http://internal.test/latest/meta-data"
    result = materialize(defs, ["raw/yellow_tripdata"], "2021-04")
    assert not result.success
    assert not steps_with(result, "STEP_UP_FOR_RETRY")
    assert (
        f"{http_server.url}{path}: refused a redirect from a public address to internal.test "
        "(10.20.30.40, a private address)"
    ) in failure_message(result)
    assert lake_files(settings) == []


def test_a_redirect_is_followed_and_recorded(http_server, settings, defs):
    http_server.publish("yellow", "2021-04", 25)
    path = "/yellow/yellow_tripdata_2021-04.csv.gz"
    http_server.put("moved/y.csv.gz", http_server.trip_path("yellow", "2021-04"))
    http_server.behaviour.redirects[path] = "/moved/y.csv.gz"
    result = materialize(defs, trip_selection("yellow"), "2021-04")
    assert result.success
    raw = metadata(result, "raw/yellow_tripdata")
    assert raw["source_url"] == f"{http_server.url}{path}"
    assert raw["fetched_from"] == f"{http_server.url}/moved/y.csv.gz"
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-04": 25}
