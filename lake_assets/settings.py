"""Every environment variable lake_assets reads, read here and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SOURCE_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/"
    "{service}/{service}_tripdata_{year}-{month}.csv.gz"
)
DEFAULT_ZONES_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/misc/taxi_zone_lookup.csv"
)
LAKE_ENVS = ("local",)
BAD_ROWS = ("fail", "quarantine")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    lake_env: str = "local"
    tlc_source_url: str = DEFAULT_SOURCE_URL
    tlc_zones_url: str = DEFAULT_ZONES_URL
    lake_dir: str = "data/lake"
    duckdb_path: str = "data/warehouse.duckdb"
    bad_rows: str = "fail"
    http_timeout: float = 60.0
    # Only whether it is set is read here; the address itself goes through dg.EnvVar.
    alert_webhook_configured: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        settings = cls(
            lake_env=get("LAKE_ENV", cls.lake_env).lower(),
            tlc_source_url=get("TLC_SOURCE_URL", cls.tlc_source_url),
            tlc_zones_url=get("TLC_ZONES_URL", cls.tlc_zones_url),
            lake_dir=get("LAKE_DIR", cls.lake_dir),
            duckdb_path=get("DUCKDB_PATH", cls.duckdb_path),
            bad_rows=get("TLC_BAD_ROWS", cls.bad_rows).lower(),
            http_timeout=_float(get("TLC_HTTP_TIMEOUT", str(cls.http_timeout)), "TLC_HTTP_TIMEOUT"),
            alert_webhook_configured=bool(get("ALERT_WEBHOOK_URL", "")),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.lake_env not in LAKE_ENVS:
            raise SettingsError(
                f"LAKE_ENV={self.lake_env!r} is not supported; use one of {', '.join(LAKE_ENVS)}"
            )
        if self.bad_rows not in BAD_ROWS:
            raise SettingsError(f"TLC_BAD_ROWS={self.bad_rows!r}: use one of {', '.join(BAD_ROWS)}")
        missing = [p for p in ("{service}", "{year}", "{month}") if p not in self.tlc_source_url]
        if missing:
            raise SettingsError(
                f"TLC_SOURCE_URL={self.tlc_source_url!r} lacks {', '.join(missing)}: it is a "
                "template such as https://host/{service}/{service}_tripdata_{year}-{month}.csv.gz"
            )
        for name, url in (
            ("TLC_SOURCE_URL", self.tlc_source_url),
            ("TLC_ZONES_URL", self.tlc_zones_url),
        ):
            if not url.startswith(("http://", "https://", "file://")):
                raise SettingsError(f"{name}={url!r}: use an http://, https:// or file:// URL")


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number of seconds") from None
    if value <= 0:
        raise SettingsError(f"{name}={text!r} must be positive")
    return value
