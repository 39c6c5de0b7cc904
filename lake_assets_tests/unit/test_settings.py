import pytest

from lake_assets.settings import DEFAULT_SOURCE_URL, DEFAULT_ZONES_URL, Settings, SettingsError


def test_defaults_are_the_public_mirror_and_a_local_backend():
    s = Settings.from_env({})
    assert s.tlc_source_url == DEFAULT_SOURCE_URL
    assert DEFAULT_SOURCE_URL == (
        "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/"
        "{service}/{service}_tripdata_{year}-{month}.csv.gz"
    )
    assert s.tlc_zones_url == DEFAULT_ZONES_URL
    assert (s.lake_env, s.lake_dir, s.duckdb_path, s.bad_rows) == (
        "local",
        "data/lake",
        "data/warehouse.duckdb",
        "fail",
    )


def test_environment_overrides():
    s = Settings.from_env(
        {
            "TLC_SOURCE_URL": "file:///m/{service}/{service}_{year}-{month}.csv",
            "LAKE_DIR": "/x/lake",
            "DUCKDB_PATH": "/x/w.duckdb",
            "TLC_BAD_ROWS": "QUARANTINE",
            "TLC_HTTP_TIMEOUT": "5",
        }
    )
    assert s.lake_dir == "/x/lake" and s.duckdb_path == "/x/w.duckdb"
    assert s.bad_rows == "quarantine" and s.http_timeout == 5.0


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LAKE_ENV": "azure"}, "LAKE_ENV='azure' is not supported"),
        ({"TLC_BAD_ROWS": "drop"}, "TLC_BAD_ROWS='drop': use one of fail, quarantine"),
        ({"TLC_SOURCE_URL": "https://h/{service}.csv"}, r"lacks \{year\}, \{month\}"),
        ({"TLC_ZONES_URL": "ftp://h/z.csv"}, "TLC_ZONES_URL='ftp://h/z.csv': use an http"),
        ({"TLC_HTTP_TIMEOUT": "soon"}, "TLC_HTTP_TIMEOUT='soon' is not a number"),
    ],
)
def test_bad_settings_fail_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_tlc_source_defaults_and_partitions():
    from lake_assets.partitions import build_monthly_partitions
    from lake_assets.settings import TLC_SOURCE_URL, TLC_ZONES_URL

    s = Settings.from_env({"TLC_SOURCE": "tlc"})
    assert (s.tlc_source_url, s.tlc_zones_url) == (TLC_SOURCE_URL, TLC_ZONES_URL)
    assert TLC_SOURCE_URL == (
        "https://d37ci6vzurychx.cloudfront.net/trip-data/{service}_tripdata_{year}-{month}.parquet"
    )
    keys = build_monthly_partitions(s).get_partition_keys()
    assert keys[0] == "2019-01"
    import datetime

    today = datetime.date.today()
    two_back = (today.year * 12 + today.month - 1) - 2
    assert keys[-1] == f"{two_back // 12:04d}-{two_back % 12 + 1:02d}"
    capped = Settings.from_env({"TLC_SOURCE": "tlc", "TLC_END_MONTH": "2024-03"})
    assert build_monthly_partitions(capped).get_partition_keys()[-1] == "2024-03"
    # TLC_SOURCE_URL still overrides the source's template
    s = Settings.from_env(
        {"TLC_SOURCE": "tlc", "TLC_SOURCE_URL": "file:///m/{service}{year}{month}"}
    )
    assert s.tlc_source_url == "file:///m/{service}{year}{month}"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TLC_SOURCE": "nyc"}, "TLC_SOURCE='nyc': use one of datatalksclub, tlc"),
        ({"TLC_END_MONTH": "2021-13"}, "TLC_END_MONTH='2021-13' is not a month"),
        ({"TLC_END_MONTH": "2018-12"}, "TLC_END_MONTH='2018-12' is before TLC_START_MONTH"),
    ],
)
def test_bad_source_settings(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"TLC_SOURCE_URL": "https://h/{service}/{service}_{year}-{month}.csv.gz?{token}"},
            "has unknown placeholder(s) {token}; allowed: {service}, {year}, {month}",
        ),
        (
            {"TLC_SOURCE_URL": "https://h/{service}_{year}-{mnth}.csv.gz"},
            "has unknown placeholder(s) {mnth}",
        ),
        ({"TLC_ZONES_URL": "https://h/{service}/zones.csv"}, "TLC_ZONES_URL='https://h/{servi"),
        ({"TLC_SOURCE_URL": "https://h/{service/{year}-{month}"}, "is not a valid template"),
        ({"TLC_DOWNLOAD_DEADLINE": "-1"}, "TLC_DOWNLOAD_DEADLINE='-1' must be at least 0"),
    ],
)
def test_templates_and_deadlines_fail_at_load(env, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert message in str(info.value)


def test_a_lake_dir_under_a_regular_file_fails_at_load(tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"LAKE_DIR": str(tmp_path / "plain" / "lake")})
    assert str(info.value) == (
        f"LAKE_DIR={str(tmp_path / 'plain' / 'lake')!r}: {tmp_path / 'plain'} is a file, "
        "not a folder"
    )
    with pytest.raises(SettingsError, match="DUCKDB_PATH="):
        Settings.from_env({"DUCKDB_PATH": str(tmp_path / "plain" / "w.duckdb")})


def test_download_deadline_setting():
    assert Settings.from_env({}).download_deadline == 0.0
    assert Settings.from_env({"TLC_DOWNLOAD_DEADLINE": "900"}).download_deadline == 900.0


def test_the_lake_store_defaults_from_lake_env_and_is_chosen_apart_from_the_warehouse():
    assert Settings.from_env({}).storage == "local"
    gcp = {"LAKE_ENV": "gcp", "GCP_PROJECT": "p", "GCS_BUCKET": "my-lake"}
    assert Settings.from_env(gcp).storage == "gcs"
    s3 = Settings.from_env(
        {
            "LAKE_STORAGE": "s3",
            "S3_BUCKET": "my-lake",
            "S3_PREFIX": "/tlc/",
            "AWS_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        }
    )
    assert (s3.lake_env, s3.storage, s3.s3_bucket, s3.s3_prefix, s3.aws_region) == (
        "local",
        "s3",
        "my-lake",
        "tlc",
        "eu-west-1",
    )
    azure = Settings.from_env(
        {"LAKE_STORAGE": "AZURE", "AZURE_CONTAINER": "lake", "AZURE_STORAGE_ACCOUNT": "acct"}
    )
    assert (azure.storage, azure.azure_container, azure.azure_storage_account) == (
        "azure",
        "lake",
        "acct",
    )
    secret = Settings.from_env(
        {
            "LAKE_STORAGE": "azure",
            "AZURE_CONTAINER": "lake",
            "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=hush",
        }
    )
    assert "hush" not in repr(secret)
    gcs_under_duckdb = Settings.from_env(
        {"LAKE_STORAGE": "gcs", "GCP_PROJECT": "p", "GCS_BUCKET": "my-lake"}
    )
    assert (gcs_under_duckdb.lake_env, gcs_under_duckdb.storage) == ("local", "gcs")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LAKE_STORAGE": "hdfs"}, "LAKE_STORAGE='hdfs' is not supported; use one of local, gcs"),
        ({"LAKE_STORAGE": "s3"}, "LAKE_STORAGE=s3 needs S3_BUCKET set"),
        (
            {"LAKE_STORAGE": "s3", "S3_BUCKET": "s3://my-lake/tlc"},
            "S3_BUCKET='s3://my-lake/tlc': give the name only (not a s3:// URI); a folder "
            "inside it goes in S3_PREFIX",
        ),
        ({"LAKE_STORAGE": "s3", "S3_BUCKET": "My_Lake"}, "S3_BUCKET='My_Lake': use 3 to 63"),
        (
            {"LAKE_STORAGE": "s3", "S3_BUCKET": "my-lake", "AWS_ENDPOINT_URL": "127.0.0.1:5000"},
            "AWS_ENDPOINT_URL='127.0.0.1:5000': use a URL such as http://127.0.0.1:5000",
        ),
        ({"LAKE_STORAGE": "azure"}, "LAKE_STORAGE=azure needs AZURE_CONTAINER set"),
        (
            {"LAKE_STORAGE": "azure", "AZURE_CONTAINER": "lake"},
            "LAKE_STORAGE=azure needs AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT",
        ),
        ({"LAKE_STORAGE": "gcs"}, "LAKE_STORAGE=gcs needs GCP_PROJECT and GCS_BUCKET set"),
        (
            {"LAKE_ENV": "gcp", "GCP_PROJECT": "p", "GCS_BUCKET": "b1b", "LAKE_STORAGE": "s3"},
            "LAKE_ENV=gcp loads BigQuery from the GCS lake, so LAKE_STORAGE='s3' cannot be used",
        ),
    ],
)
def test_bad_lake_store_settings_fail_at_load_naming_what_is_missing(env, message):
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert message in str(e.value)
