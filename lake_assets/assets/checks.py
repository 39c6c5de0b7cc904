"""Turn quality.Outcome values into Dagster check specs and results."""

from collections.abc import Iterable

import dagster as dg

from lake_assets import quality
from lake_assets.schemas import TableContract

_SEVERITY = {quality.ERROR: dg.AssetCheckSeverity.ERROR, quality.WARN: dg.AssetCheckSeverity.WARN}


def specs(key: dg.AssetKey, layer: str, contract: TableContract) -> list[dg.AssetCheckSpec]:
    """The registered checks of layer for this table, as Dagster check specs."""
    return [
        dg.AssetCheckSpec(c.name, asset=key, blocking=c.blocking, description=c.description)
        for c in quality.checks_for(layer, contract)
    ]


def results(outcomes: Iterable[quality.Outcome]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=o.name,
            passed=o.passed,
            severity=_SEVERITY[o.severity],
            description=o.description,
            metadata=o.metadata,
        )
        for o in outcomes
    ]


def failed(outcomes: list[quality.Outcome]) -> list[str]:
    return [o.description for o in quality.failed_blocking(outcomes)]
