"""The schema contract of each service: column names, types, and the source headers behind them.

Plain Python, no Dagster import: the converter, the warehouse DDL, the UI column schema and the
tests all read these definitions, so a column is described exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical types and their spelling in each engine. Integers are nullable everywhere: a month with
# blanks must never turn an id column into a float column.
DUCKDB_TYPES = {
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}
ARROW_TYPES = {
    "int64": "int64",
    "float64": "double",
    "string": "string",
    "timestamp": "timestamp[us]",
    "date": "date32[day]",
}
BIGQUERY_TYPES = {
    "int64": "INT64",
    "float64": "FLOAT64",
    "string": "STRING",
    "timestamp": "DATETIME",
    "date": "DATE",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    # Source header spellings (compared case-insensitively) that land in this column.
    sources: tuple[str, ...] = ()
    nullable: bool = True

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


TRIPS, ZONES, MART = "trips", "zones", "mart"


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[Column, ...]
    description: str
    # trips (a service's monthly files), zones (the lookup) or mart: which checks apply.
    kind: str = TRIPS
    # Per-check thresholds where this table differs from the check's default (quality.py).
    thresholds: tuple[tuple[str, float], ...] = ()

    def threshold(self, check: str, default: float) -> float:
        return dict(self.thresholds).get(check, default)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def source_map(self) -> dict[str, Column]:
        """Lower-cased source header name -> contract column."""
        mapping: dict[str, Column] = {}
        for c in self.columns:
            for alias in (c.name, *c.sources):
                mapping[alias.lower()] = c
        return mapping


SOURCE_MONTH = Column(
    "source_month",
    "date",
    "First day of the partition month the row was published in.",
    nullable=False,
)


def _c(name: str, type_: str, description: str, *sources: str) -> Column:
    return Column(name, type_, description, tuple(sources))


_VENDOR = _c("vendor_id", "int64", "TPEP/LPEP provider code (1, 2, 6).", "VendorID")
_PU_LOC = _c("pickup_location_id", "int64", "TLC taxi zone of the pickup.", "PULocationID")
_DO_LOC = _c("dropoff_location_id", "int64", "TLC taxi zone of the dropoff.", "DOLocationID")
_PASSENGERS = _c("passenger_count", "int64", "Passengers, as entered by the driver.")
_DISTANCE = _c("trip_distance", "float64", "Trip distance in miles from the taximeter.")
_RATECODE = _c(
    "ratecode_id", "int64", "Final rate code (1 standard ... 6 group ride).", "RatecodeID"
)
_FLAG = _c("store_and_fwd_flag", "string", "Y when the trip was stored before sending, else N.")
_PAYMENT = _c("payment_type", "int64", "1 card, 2 cash, 3 no charge, 4 dispute, 5 unknown, 6 void.")
_MONEY = tuple(
    _c(name, "float64", description)
    for name, description in (
        ("fare_amount", "Time-and-distance fare in USD."),
        ("extra", "Rush hour and overnight surcharges in USD."),
        ("mta_tax", "MTA tax in USD."),
        ("tip_amount", "Card tips in USD (cash tips are not recorded)."),
        ("tolls_amount", "Tolls paid in USD."),
    )
)
_IMPROVEMENT = _c("improvement_surcharge", "float64", "Improvement surcharge in USD.")
_TOTAL = _c("total_amount", "float64", "Total charged to passengers in USD (cash tips excluded).")
_CONGESTION = _c("congestion_surcharge", "float64", "NYS congestion surcharge in USD (2019-02 on).")
_CBD = _c("cbd_congestion_fee", "float64", "MTA congestion relief zone fee in USD (2025 on).")

YELLOW = TableContract(
    "yellow_tripdata",
    (
        _VENDOR,
        _c("pickup_datetime", "timestamp", "Meter engaged.", "tpep_pickup_datetime"),
        _c("dropoff_datetime", "timestamp", "Meter disengaged.", "tpep_dropoff_datetime"),
        _PASSENGERS,
        _DISTANCE,
        _RATECODE,
        _FLAG,
        _PU_LOC,
        _DO_LOC,
        _PAYMENT,
        *_MONEY,
        _IMPROVEMENT,
        _TOTAL,
        _CONGESTION,
        _c("airport_fee", "float64", "Airport pickup fee in USD (2021 on).", "Airport_fee"),
        _CBD,
        SOURCE_MONTH,
    ),
    "Yellow taxi trips (street hails in Manhattan and the airports).",
)

GREEN = TableContract(
    "green_tripdata",
    (
        _VENDOR,
        _c("pickup_datetime", "timestamp", "Meter engaged.", "lpep_pickup_datetime"),
        _c("dropoff_datetime", "timestamp", "Meter disengaged.", "lpep_dropoff_datetime"),
        _FLAG,
        _RATECODE,
        _PU_LOC,
        _DO_LOC,
        _PASSENGERS,
        _DISTANCE,
        *_MONEY,
        _c("ehail_fee", "float64", "E-hail fee in USD (never filled in since 2015)."),
        _IMPROVEMENT,
        _TOTAL,
        _PAYMENT,
        _c("trip_type", "int64", "1 street hail, 2 dispatch."),
        _CONGESTION,
        _CBD,
        SOURCE_MONTH,
    ),
    "Green (boro) taxi trips.",
)

FHV = TableContract(
    "fhv_tripdata",
    (
        _c("dispatching_base_num", "string", "TLC base license number that dispatched the trip."),
        _c("pickup_datetime", "timestamp", "Pickup time."),
        _c("dropoff_datetime", "timestamp", "Dropoff time.", "dropOff_datetime"),
        _c("pickup_location_id", "int64", "TLC taxi zone of the pickup.", "PULocationID"),
        _c("dropoff_location_id", "int64", "TLC taxi zone of the dropoff.", "DOLocationID"),
        _c("sr_flag", "int64", "1 for a shared-ride request, else null.", "SR_Flag"),
        _c(
            "affiliated_base_number",
            "string",
            "Base the vehicle is affiliated with.",
            "Affiliated_base_number",
        ),
        SOURCE_MONTH,
    ),
    "For-hire vehicle trips (community cars, black cars, luxury limousines).",
    # fhv trips often carry no zone at all: the share is still reported.
    thresholds=(("location_ids_present", 0.95),),
)

TAXI_ZONES = TableContract(
    "taxi_zones",
    (
        _c("location_id", "int64", "TLC taxi zone id (1-265).", "LocationID"),
        _c("borough", "string", "Borough, or Unknown.", "Borough"),
        _c("zone", "string", "Zone name.", "Zone"),
        _c(
            "service_zone",
            "string",
            "Yellow Zone, Boro Zone, Airports, EWR or N/A.",
            "service_zone",
        ),
    ),
    "TLC taxi zone lookup.",
    kind=ZONES,
)

TRIP_CONTRACTS: dict[str, TableContract] = {"yellow": YELLOW, "green": GREEN, "fhv": FHV}
SERVICES: tuple[str, ...] = tuple(TRIP_CONTRACTS)


def contract_for(service: str) -> TableContract:
    try:
        return TRIP_CONTRACTS[service]
    except KeyError:
        known = ", ".join(SERVICES)
        raise ValueError(f"unknown service {service!r}; expected one of {known}") from None


def arrow_schema(contract: TableContract):
    """The pyarrow schema every Parquet file of this contract must have."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(c.name, pa.type_for_alias(ARROW_TYPES[c.type]), nullable=c.nullable)
            for c in contract.columns
        ]
    )


def duckdb_ddl(contract: TableContract, table: str) -> str:
    cols = ",\n  ".join(
        f'"{c.name}" {c.duckdb_type}{"" if c.nullable else " NOT NULL"}' for c in contract.columns
    )
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}\n)"


TRIPS_BY_ZONE_MONTHLY = TableContract(
    "trips_by_zone_monthly",
    (
        _c("service", "string", "yellow, green or fhv."),
        SOURCE_MONTH,
        _c("pickup_borough", "string", "Borough of the pickup zone; Unknown when not known."),
        _c("pickup_zone", "string", "Pickup zone; Unknown when the trip has no known zone."),
        _c("trips", "int64", "Trips of the month that started in the zone."),
        _c("passengers", "int64", "Sum of passenger_count (null for fhv)."),
        _c("revenue", "float64", "Sum of total_amount in USD (null for fhv)."),
        _c("tips", "float64", "Sum of tip_amount in USD (null for fhv)."),
        _c("avg_distance_miles", "float64", "Average trip_distance (null for fhv)."),
        _c("avg_duration_minutes", "float64", "Average dropoff minus pickup, in minutes."),
    ),
    "Trips, passengers and revenue per service, month and pickup zone.",
    kind=MART,
)

SERVICE_SUMMARY_MONTHLY = TableContract(
    "service_summary_monthly",
    (
        _c("service", "string", "yellow, green or fhv."),
        SOURCE_MONTH,
        _c("trips", "int64", "Trips of the month."),
        _c("revenue", "float64", "Sum of total_amount in USD (null for fhv)."),
        _c(
            "avg_fare_per_mile",
            "float64",
            "Sum of fare_amount over sum of trip_distance, trips with a positive distance only.",
        ),
        _c(
            "card_share",
            "float64",
            "Share of trips with a known payment type that were paid by card (payment_type 1).",
        ),
    ),
    "One row per service and month: trips, revenue, fare per mile, card share.",
    kind=MART,
)

MART_CONTRACTS = (TRIPS_BY_ZONE_MONTHLY, SERVICE_SUMMARY_MONTHLY)
