"""LAKE_ENV=gcp on fake-gcs-server and bqemulator, through the real google-cloud clients.

Every test here runs the same assets as the local tests; only the resources differ. What the
emulators cannot show (that a MERGE is atomic in BigQuery, the load job's exact configuration) is
pinned by the unit tests in test_gcp_sql.py.
"""

from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, storage

from lake_assets.definitions import build_definitions
from lake_assets.resources.build import build_backend
from lake_assets.resources.gcp import STAGING_TTL
from lake_assets.schemas import BIGQUERY_TYPES, DUCKDB_TYPES, SERVICES, YELLOW, arrow_schema
from lake_assets_tests.helpers import MARTS, ZONES, materialize, metadata, trip_selection

pytestmark = pytest.mark.gcp

ROWS = {"yellow": 400, "green": 120, "fhv": 250}
MONTHS = ["2021-01", "2021-02"]


def _bq(s) -> bigquery.Client:
    return bigquery.Client(
        project=s.gcp_project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=s.bigquery_emulator_host),
    )


def _bq_counts(s, table: str) -> dict[str, int]:
    rows = _bq(s).query(
        f"SELECT source_month, count(*) AS n FROM {s.bq_dataset}.{table} GROUP BY source_month"
    )
    return {f"{r[0]:%Y-%m}": r[1] for r in rows.result()}


def _objects(s) -> list[str]:
    client = storage.Client(
        project=s.gcp_project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": s.storage_emulator_host},
    )
    return sorted(b.name for b in client.list_blobs(s.gcs_bucket))


def _publish_all(http_server, extra: int = 0) -> None:
    for i, month in enumerate(MONTHS):
        for service in SERVICES:
            http_server.publish(service, month, ROWS[service] + i + extra)


def test_months_raw_to_marts_on_gcp_match_the_local_backend(http_server, settings, gcp_settings):
    _publish_all(http_server)
    gcp_defs, local_defs = build_definitions(gcp_settings), build_definitions(settings)
    for defs in (gcp_defs, local_defs):
        assert materialize(defs, ZONES).success
        for month in MONTHS:
            result = materialize(defs, trip_selection() + MARTS, month)
            assert result.success, month

    # Exact BigQuery row counts per month, as published.
    for service in SERVICES:
        assert _bq_counts(gcp_settings, f"{service}_tripdata") == {
            m: ROWS[service] + i for i, m in enumerate(MONTHS)
        }
    # The bucket holds the local lake's layout under the prefix, and nothing else (no staging).
    prefix = f"{gcp_settings.gcs_prefix}/"
    local_files = [p for p, _ in local_defs.resources["lake"].list_files()]
    assert _objects(gcp_settings) == [prefix + p for p in local_files]
    assert "lake/yellow_tripdata/yellow_tripdata_2021-01.parquet" in local_files

    # One schema on both engines: names exactly as in DuckDB (never re-cased), matching types.
    con = duckdb.connect(settings.duckdb_path, read_only=True)
    try:
        bq = _bq(gcp_settings)
        dataset = f"{gcp_settings.gcp_project}.{gcp_settings.bq_dataset}"
        tables = [*(f"{s}_tripdata" for s in SERVICES), "taxi_zones", *MARTS]
        for table in (t.split("/")[-1] for t in tables):
            local = con.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'nyc_taxi' AND table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
            remote = bq.get_table(f"{dataset}.{table}")
            to_bq = {v: BIGQUERY_TYPES[k] for k, v in DUCKDB_TYPES.items()}
            assert [(f.name, f.field_type, f.mode) for f in remote.schema] == [
                (name, to_bq[kind], "NULLABLE" if nullable == "YES" else "REQUIRED")
                for name, kind, nullable in local
            ], table
        yellow = bq.get_table(
            f"{gcp_settings.gcp_project}.{gcp_settings.bq_dataset}.yellow_tripdata"
        )
        assert yellow.time_partitioning.type_ == "MONTH"
        assert yellow.time_partitioning.field == "source_month"
        assert yellow.clustering_fields == ["pickup_location_id"]

        # The mart SQL, written once for DuckDB and transpiled, gives the same figures.
        for mart, order in (
            ("trips_by_zone_monthly", "service, pickup_borough, pickup_zone"),
            ("service_summary_monthly", "service"),
        ):
            sql = f"SELECT * FROM {{ds}}.{mart} WHERE source_month = DATE '2021-02-01' "
            sql += f"ORDER BY {order}"
            local_rows = con.execute(sql.format(ds="nyc_taxi")).fetchall()
            remote_rows = [
                tuple(r.values()) for r in bq.query(sql.format(ds=gcp_settings.bq_dataset)).result()
            ]
            assert len(remote_rows) == len(local_rows) > 0
            for lr, rr in zip(local_rows, remote_rows, strict=True):
                assert rr == pytest.approx(lr), mart
    finally:
        con.close()


def test_rerun_replaces_exactly_its_month_and_reports_gs_uris(http_server, gcp_settings):
    _publish_all(http_server)
    defs = build_definitions(gcp_settings)
    assert materialize(defs, ZONES).success
    for month in MONTHS:
        assert materialize(defs, trip_selection(), month).success
    # The source republishes January with other rows: the rerun replaces January only.
    http_server.publish("yellow", "2021-01", 333)
    result = materialize(defs, trip_selection("yellow"), "2021-01")
    assert result.success
    assert _bq_counts(gcp_settings, "yellow_tripdata") == {"2021-01": 333, "2021-02": 401}
    again = materialize(defs, trip_selection("yellow", layers=("lake", "warehouse")), "2021-01")
    assert again.success
    assert _bq_counts(gcp_settings, "yellow_tripdata") == {"2021-01": 333, "2021-02": 401}

    base = f"gs://{gcp_settings.gcs_bucket}/{gcp_settings.gcs_prefix}"
    raw = metadata(result, "raw/yellow_tripdata")
    # Landed as a candidate; the lake step promoted it (a server-side copy) once converted.
    assert raw["uri"] == f"{base}/raw/yellow_tripdata/candidate/yellow_tripdata_2021-01.csv.gz"
    assert raw["bytes"] == http_server.trip_path("yellow", "2021-01").stat().st_size
    lake = metadata(result, "lake/yellow_tripdata")
    assert lake["raw_uri"] == f"{base}/raw/yellow_tripdata/yellow_tripdata_2021-01.csv.gz"
    assert lake["raw_sha256"] == raw["sha256"]
    lake_files = dict(build_backend(gcp_settings, resolved=True)[0].list_files())
    assert lake_files["raw/yellow_tripdata/yellow_tripdata_2021-01.csv.gz"] == raw["bytes"]
    assert not [f for f in lake_files if "/candidate/" in f]
    assert lake["uri"] == f"{base}/lake/yellow_tripdata/yellow_tripdata_2021-01.parquet"
    assert lake["dagster/row_count"] == 333
    assert len(lake["sha256"]) == 64
    wh = metadata(again, "warehouse/yellow_tripdata")
    table = f"{gcp_settings.gcp_project}.{gcp_settings.bq_dataset}.yellow_tripdata"
    assert wh["table"] == table
    assert (wh["dagster/row_count"], wh["rows_loaded"], wh["table_rows"]) == (333, 333, 734)
    # Staging tables are dropped after each load.
    tables = {t.table_id for t in _bq(gcp_settings).list_tables(gcp_settings.bq_dataset)}
    assert tables == {"yellow_tripdata", "green_tripdata", "fhv_tripdata", "taxi_zones"}


def test_a_month_with_rows_of_another_month_is_refused_and_the_table_kept(gcp_settings, tmp_path):
    lake, warehouse = build_backend(gcp_settings, resolved=True)
    month = date(2021, 1, 1)

    def upload(months: list[date], name: str) -> str:
        schema = arrow_schema(YELLOW)
        columns = {
            f.name: pa.array(months, f.type)
            if f.name == "source_month"
            else pa.nulls(len(months), f.type)
            for f in schema
        }
        local = tmp_path / name
        pq.write_table(pa.table(columns, schema=schema), local)
        lake.put_file(local, f"lake/test/{name}")
        return lake.uri(f"lake/test/{name}")

    good = upload([month] * 5, "good.parquet")
    assert warehouse.replace_month(YELLOW, month, good).slice_rows == 5
    bad = upload([month] * 3 + [date(2021, 2, 1)] * 2, "bad.parquet")
    with pytest.raises(ValueError) as e:
        warehouse.replace_month(YELLOW, month, bad)
    assert str(e.value) == (
        f"{bad}: 2 rows have a source_month other than 2021-01-01; "
        f"{warehouse.table_name(YELLOW)} is unchanged"
    )
    assert _bq_counts(gcp_settings, "yellow_tripdata") == {"2021-01": 5}
    tables = {t.table_id for t in _bq(gcp_settings).list_tables(gcp_settings.bq_dataset)}
    assert tables == {"yellow_tripdata"}


def test_emulators_never_look_up_google_credentials(gcp_settings, monkeypatch):
    import google.auth

    def no_adc(*args, **kwargs):
        raise AssertionError("looked up application default credentials")

    monkeypatch.setattr(google.auth, "default", no_adc)
    lake, warehouse = build_backend(gcp_settings, resolved=True)
    with lake.open_write("raw/check.txt") as f:
        f.write(b"ok")
    assert lake.exists("raw/check.txt")
    assert warehouse.ensure_table(YELLOW).endswith(".yellow_tripdata")
    assert warehouse.query(
        f"SELECT count(*) FROM {warehouse.dataset}.yellow_tripdata WHERE source_month = $month",
        {"month": date(2021, 1, 1)},
    ) == [(0,)]


def test_demo_summary_reads_bigquery_and_the_bucket(http_server, gcp_settings):
    from lake_dev import demo

    http_server.publish("green", "2021-01", 250)
    defs = build_definitions(gcp_settings)
    assert materialize(defs, ZONES).success
    assert materialize(defs, trip_selection("green") + MARTS, "2021-01").success
    text = demo.summary(gcp_settings)
    dataset = f"{gcp_settings.gcp_project}.{gcp_settings.bq_dataset}"
    assert text.splitlines()[0] == f"warehouse BigQuery {dataset}"
    assert f"  {gcp_settings.bq_dataset}.green_tripdata" in text and " 2021-01        250" in text
    assert f"lake gs://{gcp_settings.gcs_bucket}/{gcp_settings.gcs_prefix}" in text
    assert "  lake/green_tripdata/green_tripdata_2021-01.parquet  (" in text
    assert "  green       250 trips, revenue " in demo.top_zones(gcp_settings, "2021-01")


def test_a_staging_table_expires_from_its_creation(gcp_settings, monkeypatch):
    """A worker that dies during the load job must not leave a table that never expires: the
    staging table is created with its expiry before anything fills it. (bqemulator keeps no
    expiry, so what the client sends at creation is what is asserted.)"""
    from datetime import datetime, timedelta, timezone

    _, warehouse = build_backend(gcp_settings, resolved=True)
    created: list = []
    create = bigquery.Client.create_table

    def recording(self, table, *args, **kwargs):
        created.append((table.table_id, table.expires))
        return create(self, table, *args, **kwargs)

    def dies_during_the_load(self, uri, destination, *args, **kwargs):
        raise KeyboardInterrupt("the worker died during the load")

    monkeypatch.setattr(bigquery.Client, "create_table", recording)
    monkeypatch.setattr(bigquery.Client, "load_table_from_uri", dies_during_the_load)
    before = datetime.now(timezone.utc)
    with pytest.raises(KeyboardInterrupt):
        warehouse.replace_month(YELLOW, date(2021, 1, 1), "gs://bucket/lake/x.parquet")
    staging = [(t, e) for t, e in created if t.startswith("_staging_yellow_tripdata_202101_")]
    assert len(staging) == 1, created
    after = datetime.now(timezone.utc)
    ms = timedelta(milliseconds=1)  # the API keeps milliseconds
    assert before + STAGING_TTL - ms <= staging[0][1] <= after + STAGING_TTL + ms
