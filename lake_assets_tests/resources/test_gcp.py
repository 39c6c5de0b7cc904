"""Tier 1 for the GCP backend: the exact job configurations and SQL it sends to BigQuery.

The emulator runs these statements but cannot show BigQuery's guarantees (a MERGE is one atomic
statement; a load job reads the bucket without the worker), so the statements are pinned here.
"""

from datetime import date, datetime

import pytest
from google.cloud import bigquery

from lake_assets import marts_sql, sql_dialect
from lake_assets.definitions import build_definitions
from lake_assets.resources import BigQueryWarehouse, GCSLake
from lake_assets.resources.gcp import (
    bigquery_schema,
    merge_month_sql,
    parquet_load_config,
    query_parameters,
    staging_check_sql,
    table_spec,
)
from lake_assets.schemas import FHV, GREEN, SERVICE_SUMMARY_MONTHLY, TAXI_ZONES, YELLOW
from lake_assets.settings import Settings, SettingsError

GCP = {"LAKE_ENV": "gcp", "GCP_PROJECT": "my-project-123", "GCS_BUCKET": "my-lake"}


def test_a_month_is_replaced_by_one_merge_statement():
    cols = ", ".join(GREEN.column_names)
    values = ", ".join(f"s.{c}" for c in GREEN.column_names)
    assert merge_month_sql(GREEN, "`p.nyc_taxi.green_tripdata`", "`p.nyc_taxi._stage`") == (
        "MERGE `p.nyc_taxi.green_tripdata` AS t\n"
        "USING `p.nyc_taxi._stage` AS s\n"
        "ON FALSE\n"
        "WHEN NOT MATCHED BY SOURCE AND t.source_month = @month THEN DELETE\n"
        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
    )
    assert staging_check_sql("`p.nyc_taxi._stage`") == (
        "SELECT count(*) AS rows_staged, "
        "COUNTIF(source_month IS NULL OR source_month != @month) AS other_months "
        "FROM `p.nyc_taxi._stage`"
    )


def test_the_lake_file_reaches_bigquery_by_a_load_job_with_the_contract_schema():
    config = parquet_load_config(YELLOW)
    assert config.source_format == bigquery.SourceFormat.PARQUET
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert config.create_disposition == bigquery.CreateDisposition.CREATE_IF_NEEDED
    assert [f.name for f in config.schema] == YELLOW.column_names
    # Never a partition decorator (table$YYYYMM): the month is replaced by the MERGE.
    assert config.time_partitioning is None
    assert config.to_api_repr()["load"]["sourceFormat"] == "PARQUET"


def test_tables_are_month_partitioned_and_clustered_with_exact_column_names():
    table = table_spec(FHV, "p.nyc_taxi.fhv_tripdata")
    assert table.time_partitioning.type_ == "MONTH"
    assert table.time_partitioning.field == "source_month"
    assert table.clustering_fields == ["pickup_location_id"]
    assert [f.name for f in table.schema] == FHV.column_names
    assert all(f.name == f.name.lower() for f in table.schema)
    modes = {f.name: f.mode for f in bigquery_schema(YELLOW)}
    assert modes["source_month"] == "REQUIRED"
    assert modes["pickup_datetime"] == "NULLABLE"
    assert {f.field_type for f in bigquery_schema(YELLOW)} == {
        "INT64",
        "FLOAT64",
        "STRING",
        "DATETIME",
        "DATE",
    }
    assert table_spec(SERVICE_SUMMARY_MONTHLY, "p.d.t").clustering_fields == ["service"]
    zones = table_spec(TAXI_ZONES, "p.d.taxi_zones")
    assert zones.time_partitioning is None and zones.clustering_fields is None


def test_mart_sql_is_transpiled_not_copied():
    sql = sql_dialect.to_bigquery(marts_sql.trips_by_zone_sql("nyc_taxi"))
    assert "@month" in sql and "$month" not in sql
    # Timestamps are DATETIME in BigQuery: the duration is a DATETIME_DIFF in seconds.
    assert sql.count("DATETIME_DIFF(t.dropoff_datetime, t.pickup_datetime, SECOND)") == 3
    assert "epoch" not in sql.lower() and "DATE_DIFF(" not in sql.replace("DATETIME_DIFF(", "")
    summary = sql_dialect.to_bigquery(marts_sql.service_summary_sql("nyc_taxi"))
    assert "CAST(@month AS DATE) AS source_month" in summary
    assert "FLOAT64" in summary and "DOUBLE" not in summary
    assert sql_dialect.to_bigquery(
        "SELECT count(*) FILTER (source_month = $month) FROM nyc_taxi.t"
    ) == ("SELECT COUNTIF(source_month = @month) FROM nyc_taxi.t")


def test_query_parameters_are_typed():
    params = query_parameters(
        {"month": date(2021, 1, 1), "n": 3, "x": 1.5, "s": "a", "ts": datetime(2021, 1, 1)}
    )
    assert [(p.name, p.type_) for p in params] == [
        ("month", "DATE"),
        ("n", "INT64"),
        ("x", "FLOAT64"),
        ("s", "STRING"),
        ("ts", "DATETIME"),
    ]
    assert [p.type_ for p in query_parameters([date(2021, 1, 1)])] == ["DATE"]
    assert query_parameters(None) == []


def test_gcp_settings_and_resources():
    s = Settings.from_env({**GCP, "GCS_PREFIX": "/tlc/", "BQ_LOCATION": "EU"})
    assert (s.gcs_prefix, s.bq_dataset, s.bq_location) == ("tlc", "nyc_taxi", "EU")
    resources = build_definitions(s).resources
    assert isinstance(resources["lake"], GCSLake)
    assert isinstance(resources["warehouse"], BigQueryWarehouse)
    lake = GCSLake(project="p", bucket="my-lake", prefix="tlc")
    assert lake.uri("lake/x/y.parquet") == "gs://my-lake/tlc/lake/x/y.parquet"
    assert GCSLake(project="p", bucket="b").uri("raw/a.csv") == "gs://b/raw/a.csv"
    warehouse = BigQueryWarehouse(project="my-project-123")
    assert warehouse.table_name(YELLOW) == "my-project-123.nyc_taxi.yellow_tripdata"
    with pytest.raises(ValueError, match="BigQuery loads from the GCS lake"):
        warehouse.replace_month(YELLOW, date(2021, 1, 1), "file:///tmp/x.parquet")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKE_ENV": "gcp"}, "LAKE_ENV=gcp needs GCP_PROJECT and GCS_BUCKET set"),
        ({"LAKE_ENV": "gcp", "GCP_PROJECT": "p"}, "LAKE_ENV=gcp needs GCS_BUCKET set"),
        ({**GCP, "GCS_BUCKET": "gs://my-lake/tlc"}, "GCS_BUCKET='gs://my-lake/tlc': give the"),
        ({**GCP, "BQ_DATASET": "nyc-taxi"}, "BQ_DATASET='nyc-taxi': use letters, digits"),
        (
            {**GCP, "STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"},
            "set both STORAGE_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST, or neither",
        ),
        (
            {**GCP, "STORAGE_EMULATOR_HOST": "127.0.0.1:1", "BIGQUERY_EMULATOR_HOST": "x"},
            "STORAGE_EMULATOR_HOST='127.0.0.1:1': use a URL",
        ),
    ],
)
def test_missing_or_wrong_gcp_settings_fail_at_launch_naming_them(env, message):
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert str(e.value).startswith(message)
