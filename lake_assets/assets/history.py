"""What the instance recorded last for an asset partition: the identity of what was built.

The data decides whether work can be skipped (steps.py verifies files and footers); these
records only say what to verify against (a landing's sha256 and validators, a lake file's rows
and sha256).
"""

import dagster as dg


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> dict:
    """Metadata values of key's last materialization for partition (None: unpartitioned)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition is not None else None
        ),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
