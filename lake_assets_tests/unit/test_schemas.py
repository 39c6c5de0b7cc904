import pyarrow as pa
import pytest

from lake_assets.schemas import (
    FHV,
    GREEN,
    SERVICES,
    TAXI_ZONES,
    TRIP_CONTRACTS,
    YELLOW,
    arrow_schema,
    contract_for,
    duckdb_ddl,
)
from lake_dev import generator


def test_services_are_the_public_three():
    assert SERVICES == ("yellow", "green", "fhv")


@pytest.mark.parametrize("contract", TRIP_CONTRACTS.values(), ids=SERVICES)
def test_trip_contracts_end_with_a_required_source_month(contract):
    last = contract.columns[-1]
    assert (last.name, last.type, last.nullable) == ("source_month", "date", False)
    assert all(c.nullable for c in contract.columns[:-1])
    assert len(set(contract.column_names)) == len(contract.column_names)


@pytest.mark.parametrize("service", SERVICES)
def test_generator_headers_map_onto_every_contract_column_but_the_derived_ones(service):
    contract = contract_for(service)
    mapping = contract.source_map()
    mapped = {mapping[h.lower()].name for h in generator.HEADERS[service]}
    absent = set(contract.column_names) - mapped
    # Columns the 2019-2021 CSV months never have: they come out null.
    expected = {
        "yellow": {"airport_fee", "cbd_congestion_fee", "source_month"},
        "green": {"cbd_congestion_fee", "source_month"},
        "fhv": {"source_month"},
    }
    assert absent == expected[service]


def test_both_fhv_headers_map_to_the_same_columns():
    mapping = FHV.source_map()
    tlc = "dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,SR_Flag"
    dtc = "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,SR_Flag"
    assert [mapping[h.lower()].name for h in tlc.split(",")] == [
        mapping[h.lower()].name for h in dtc.split(",")
    ]


def test_ids_and_counts_are_integers_money_is_float():
    for contract in (YELLOW, GREEN):
        for name in ("vendor_id", "passenger_count", "ratecode_id", "payment_type"):
            assert contract.column(name).type == "int64"
        for name in ("fare_amount", "tip_amount", "total_amount", "congestion_surcharge"):
            assert contract.column(name).type == "float64"
    assert FHV.column("pickup_location_id").type == "int64"


def test_arrow_schema_and_ddl():
    schema = arrow_schema(YELLOW)
    assert schema.field("pickup_datetime").type == pa.timestamp("us")
    assert schema.field("source_month").type == pa.date32()
    assert not schema.field("source_month").nullable
    ddl = duckdb_ddl(TAXI_ZONES, "nyc_taxi.taxi_zones")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS nyc_taxi.taxi_zones")
    assert '"location_id" BIGINT' in ddl
    assert '"source_month" DATE NOT NULL' in duckdb_ddl(YELLOW, "t")


def test_unknown_service_is_named():
    with pytest.raises(ValueError, match="unknown service 'fhvhv'; expected one of yellow"):
        contract_for("fhvhv")
