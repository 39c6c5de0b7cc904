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
