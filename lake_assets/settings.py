"""Every environment variable lake_assets reads, read here and nowhere else."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lake_assets import redaction

DEFAULT_SOURCE_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/"
    "{service}/{service}_tripdata_{year}-{month}.csv.gz"
)
DEFAULT_ZONES_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/misc/taxi_zone_lookup.csv"
)
# The TLC's own site: Parquet, published monthly with a lag of about two months.
TLC_SOURCE_URL = (
    "https://d37ci6vzurychx.cloudfront.net/trip-data/{service}_tripdata_{year}-{month}.parquet"
)
TLC_ZONES_URL = "https://d37ci6vzurychx.cloudfront.net/misc/taxi+_zone_lookup.csv"
SOURCES = {
    "datatalksclub": (DEFAULT_SOURCE_URL, DEFAULT_ZONES_URL),
    "tlc": (TLC_SOURCE_URL, TLC_ZONES_URL),
}
# The DataTalksClub mirror's last month.
DATATALKSCLUB_LAST_MONTH = "2021-07"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
LAKE_ENVS = ("local", "gcp")
# Where the lake lives; by default the LAKE_ENV's own (a folder for local, GCS for gcp).
LAKE_STORAGES = ("local", "gcs", "s3", "azure")
_OBJECT_STORES = "(see the README: The lake on S3 or Azure Blob)"
STORAGE_OF_ENV = {"local": "local", "gcp": "gcs"}
# Bucket names (S3) and container names (Azure): lower case, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# BigQuery dataset names: letters, digits and underscores.
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
BAD_ROWS = ("fail", "quarantine")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    lake_env: str = "local"
    # LAKE_STORAGE; empty: the LAKE_ENV's own (see `storage`).
    lake_storage: str = ""
    tlc_source: str = "datatalksclub"
    tlc_source_url: str = DEFAULT_SOURCE_URL
    tlc_zones_url: str = DEFAULT_ZONES_URL
    lake_dir: str = "data/lake"
    duckdb_path: str = "data/warehouse.duckdb"
    # How long a write waits for another process's lock on the DuckDB file, in seconds.
    duckdb_lock_timeout: float = 600.0
    bad_rows: str = "fail"
    http_timeout: float = 60.0
    # Overall seconds one download may take; 0: derived from its size (at least 256 KiB/s).
    download_deadline: float = 0.0
    # Only whether it is set is read here; the address itself goes through dg.EnvVar.
    alert_webhook_configured: bool = False
    # When the monthly schedules tick (cron, UTC): 06:00 on the 5th, when the month is out.
    schedule_cron: str = "0 6 5 * *"
    start_month: str = "2019-01"
    # Last partition (YYYY-MM); empty: the mirror's last month, or for the TLC source the
    # month it is expected to have published (two months back).
    end_month: str = ""
    # LAKE_ENV=gcp. The project and bucket reach the resources through dg.EnvVar; they are read
    # here only to fail at launch, naming what is missing.
    gcp_project: str = ""
    gcs_bucket: str = ""
    gcs_prefix: str = ""
    bq_dataset: str = "nyc_taxi"
    bq_location: str = "US"
    # Emulator endpoints (tests, `make demo-gcp`): anonymous credentials, no Google.
    storage_emulator_host: str = ""
    bigquery_emulator_host: str = ""
    # LAKE_STORAGE=s3: credentials are boto3's own business (environment, files, roles).
    s3_bucket: str = ""
    s3_prefix: str = ""
    aws_region: str = ""
    aws_endpoint_url: str = ""
    # LAKE_STORAGE=azure. The connection string is a secret: never printed (repr=False); the
    # code location passes it to the resource as dg.EnvVar, so the UI shows its name only.
    azure_container: str = ""
    azure_prefix: str = ""
    azure_connection_string: str = field(default="", repr=False)
    azure_storage_account: str = ""

    @property
    def storage(self) -> str:
        """The lake's backend: LAKE_STORAGE, or the LAKE_ENV's own."""
        return self.lake_storage or STORAGE_OF_ENV.get(self.lake_env, "local")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        source = get("TLC_SOURCE", cls.tlc_source).lower()
        source_url, zones_url = SOURCES.get(source, (cls.tlc_source_url, cls.tlc_zones_url))
        settings = cls(
            lake_env=get("LAKE_ENV", cls.lake_env).lower(),
            lake_storage=get("LAKE_STORAGE", "").lower(),
            tlc_source=source,
            tlc_source_url=get("TLC_SOURCE_URL", source_url),
            tlc_zones_url=get("TLC_ZONES_URL", zones_url),
            lake_dir=get("LAKE_DIR", cls.lake_dir),
            duckdb_path=get("DUCKDB_PATH", cls.duckdb_path),
            duckdb_lock_timeout=_float(
                get("DUCKDB_LOCK_TIMEOUT", str(cls.duckdb_lock_timeout)), "DUCKDB_LOCK_TIMEOUT", 0
            ),
            bad_rows=get("TLC_BAD_ROWS", cls.bad_rows).lower(),
            http_timeout=_float(get("TLC_HTTP_TIMEOUT", str(cls.http_timeout)), "TLC_HTTP_TIMEOUT"),
            download_deadline=_float(get("TLC_DOWNLOAD_DEADLINE", "0"), "TLC_DOWNLOAD_DEADLINE", 0),
            alert_webhook_configured=bool(get("ALERT_WEBHOOK_URL", "")),
            start_month=get("TLC_START_MONTH", cls.start_month),
            schedule_cron=get("TLC_SCHEDULE", cls.schedule_cron),
            end_month=get("TLC_END_MONTH", ""),
            gcp_project=get("GCP_PROJECT", ""),
            gcs_bucket=get("GCS_BUCKET", ""),
            gcs_prefix=get("GCS_PREFIX", "").strip("/"),
            bq_dataset=get("BQ_DATASET", cls.bq_dataset),
            bq_location=get("BQ_LOCATION", cls.bq_location),
            storage_emulator_host=get("STORAGE_EMULATOR_HOST", ""),
            bigquery_emulator_host=get("BIGQUERY_EMULATOR_HOST", ""),
            s3_bucket=get("S3_BUCKET", ""),
            s3_prefix=get("S3_PREFIX", "").strip("/"),
            aws_region=get("AWS_REGION", ""),
            aws_endpoint_url=get("AWS_ENDPOINT_URL", ""),
            azure_container=get("AZURE_CONTAINER", ""),
            azure_prefix=get("AZURE_PREFIX", "").strip("/"),
            azure_connection_string=get("AZURE_STORAGE_CONNECTION_STRING", ""),
            azure_storage_account=get("AZURE_STORAGE_ACCOUNT", ""),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.tlc_source not in SOURCES:
            raise SettingsError(f"TLC_SOURCE={self.tlc_source!r}: use one of {', '.join(SOURCES)}")
        for name, value in (
            ("TLC_START_MONTH", self.start_month),
            ("TLC_END_MONTH", self.end_month),
        ):
            if value and not _MONTH.match(value):
                raise SettingsError(f"{name}={value!r} is not a month like 2021-07")
        if self.end_month and self.end_month < self.start_month:
            raise SettingsError(
                f"TLC_END_MONTH={self.end_month!r} is before TLC_START_MONTH={self.start_month!r}"
            )
        if self.lake_env not in LAKE_ENVS:
            raise SettingsError(
                f"LAKE_ENV={self.lake_env!r} is not supported; use one of {', '.join(LAKE_ENVS)}"
            )
        if self.storage not in LAKE_STORAGES:
            raise SettingsError(
                f"LAKE_STORAGE={self.lake_storage!r} is not supported; use one of "
                f"{', '.join(LAKE_STORAGES)}"
            )
        if self.lake_env == "gcp" and self.storage != "gcs":
            # BigQuery's load jobs read the lake from GCS; no other store is read by them.
            raise SettingsError(
                f"LAKE_ENV=gcp loads BigQuery from the GCS lake, so LAKE_STORAGE={self.storage!r} "
                "cannot be used with it; unset LAKE_STORAGE (or set it to gcs), or use "
                "LAKE_ENV=local for the DuckDB warehouse"
            )
        if self.lake_env == "gcp" or self.storage == "gcs":
            self._validate_gcp()
        if self.storage == "s3":
            self._validate_s3()
        if self.storage == "azure":
            self._validate_azure()
        if self.bad_rows not in BAD_ROWS:
            raise SettingsError(f"TLC_BAD_ROWS={self.bad_rows!r}: use one of {', '.join(BAD_ROWS)}")
        if len(self.schedule_cron.split()) != 5:
            raise SettingsError(
                f"TLC_SCHEDULE={self.schedule_cron!r} is not a cron schedule of 5 fields, "
                "such as '0 6 5 * *'"
            )
        _validate_template("TLC_SOURCE_URL", self.tlc_source_url, TEMPLATE_FIELDS)
        _validate_template("TLC_ZONES_URL", self.tlc_zones_url, ())
        _validate_dir("LAKE_DIR", self.lake_dir)
        _validate_dir("DUCKDB_PATH", str(Path(self.duckdb_path).parent))
        for name, url in (
            ("TLC_SOURCE_URL", self.tlc_source_url),
            ("TLC_ZONES_URL", self.tlc_zones_url),
        ):
            if not url.startswith(("http://", "https://", "file://")):
                raise SettingsError(
                    f"{name}={redaction.redact_url(url)!r}: use an http://, https:// or file:// URL"
                )

    def _validate_gcp(self) -> None:
        missing = [
            name
            for name, value in (("GCP_PROJECT", self.gcp_project), ("GCS_BUCKET", self.gcs_bucket))
            if not value
        ]
        if missing:
            who = "LAKE_ENV=gcp" if self.lake_env == "gcp" else "LAKE_STORAGE=gcs"
            raise SettingsError(
                f"{who} needs {' and '.join(missing)} set (see the README's GCP section)"
            )
        if self.gcs_bucket.startswith("gs://") or "/" in self.gcs_bucket:
            raise SettingsError(
                f"GCS_BUCKET={self.gcs_bucket!r}: give the bucket's name only; a folder inside "
                "it goes in GCS_PREFIX"
            )
        if not _DATASET.match(self.bq_dataset):
            raise SettingsError(
                f"BQ_DATASET={self.bq_dataset!r}: use letters, digits and underscores"
            )
        for name, host in (
            ("STORAGE_EMULATOR_HOST", self.storage_emulator_host),
            ("BIGQUERY_EMULATOR_HOST", self.bigquery_emulator_host),
        ):
            _validate_endpoint(name, host, "http://127.0.0.1:9050")
        if self.lake_env == "gcp" and bool(self.storage_emulator_host) != bool(
            self.bigquery_emulator_host
        ):
            # Half emulated would write test data to a real bucket or a real dataset.
            raise SettingsError(
                "set both STORAGE_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST, or neither"
            )

    def _validate_s3(self) -> None:
        if not self.s3_bucket:
            raise SettingsError(f"LAKE_STORAGE=s3 needs S3_BUCKET set {_OBJECT_STORES}")
        _validate_bucket("S3_BUCKET", self.s3_bucket, "s3://", "S3_PREFIX")
        _validate_endpoint("AWS_ENDPOINT_URL", self.aws_endpoint_url, "http://127.0.0.1:5000")

    def _validate_azure(self) -> None:
        if not self.azure_container:
            raise SettingsError(f"LAKE_STORAGE=azure needs AZURE_CONTAINER set {_OBJECT_STORES}")
        _validate_bucket("AZURE_CONTAINER", self.azure_container, "abfs://", "AZURE_PREFIX")
        if not (self.azure_connection_string or self.azure_storage_account):
            raise SettingsError(
                "LAKE_STORAGE=azure needs AZURE_STORAGE_CONNECTION_STRING, or "
                "AZURE_STORAGE_ACCOUNT with a credential DefaultAzureCredential finds "
                f"{_OBJECT_STORES}"
            )


def _validate_endpoint(name: str, value: str, example: str) -> None:
    """An optional service endpoint: unset, or an http(s) URL."""
    if value and not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name}={value!r}: use a URL such as {example}")


def _validate_bucket(name: str, value: str, scheme: str, prefix_setting: str) -> None:
    if "://" in value or "/" in value:
        raise SettingsError(
            f"{name}={value!r}: give the name only (not a {scheme} URI); a folder inside it goes "
            f"in {prefix_setting}"
        )
    if not _BUCKET.match(value):
        raise SettingsError(
            f"{name}={value!r}: use 3 to 63 lower-case letters, digits, dots and hyphens"
        )


TEMPLATE_FIELDS = ("service", "year", "month")
_TEMPLATE_EXAMPLE = "https://host/{service}/{service}_tripdata_{year}-{month}.csv.gz"


def _validate_template(name: str, template: str, fields: tuple[str, ...]) -> None:
    """Every placeholder known and every required one present, so a typo fails at load, not as
    a KeyError in each attempt of every run."""
    try:
        found = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise SettingsError(
            f"{name}={redaction.redact_url(template)!r} is not a valid template: {e}"
        ) from None
    unknown = sorted({f for f in found if f not in fields})
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in fields) or "none"
        raise SettingsError(
            f"{name}={redaction.redact_url(template)!r} has unknown placeholder(s) "
            f"{', '.join('{' + f + '}' for f in unknown)}; allowed: {allowed}"
        )
    missing = [f"{{{f}}}" for f in fields if f not in found]
    if missing:
        raise SettingsError(
            f"{name}={redaction.redact_url(template)!r} lacks {', '.join(missing)}: it is a "
            f"template such as {_TEMPLATE_EXAMPLE}"
        )


def _validate_dir(name: str, folder: str) -> None:
    """A folder that can exist: no part of it is a regular file (which no retry can change)."""
    path = Path(folder).resolve()
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise SettingsError(f"{name}={folder!r}: {part} is a file, not a folder")
            return


def _float(text: str, name: str, minimum: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number of seconds") from None
    if minimum is None and value <= 0:
        raise SettingsError(f"{name}={text!r} must be positive")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={text!r} must be at least {minimum}")
    return value
