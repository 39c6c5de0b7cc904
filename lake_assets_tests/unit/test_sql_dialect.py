"""Tier 1: DuckDB SQL transpiled for BigQuery (lake_assets/sql_dialect.py)."""

from lake_assets.sql_dialect import to_bigquery


def test_named_parameters_become_bigquery_parameters():
    assert to_bigquery("SELECT count(*) FROM nyc_taxi.t WHERE source_month = $month") == (
        "SELECT COUNT(*) FROM nyc_taxi.t WHERE source_month = @month"
    )


def test_a_difference_of_two_timestamps_is_datetime_diff():
    sql = to_bigquery("SELECT date_diff('minute', pickup_datetime, dropoff_datetime) FROM t")
    assert sql == "SELECT DATETIME_DIFF(dropoff_datetime, pickup_datetime, MINUTE) FROM t"


def test_the_slice_check_reads_the_staging_name_it_is_given():
    # assets/marts.py transpiles with a plain name, then puts the quoted staging table there.
    sql = to_bigquery("SELECT service, sum(trips) FROM new_slice GROUP BY service")
    assert sql == "SELECT service, SUM(trips) FROM new_slice GROUP BY service"
