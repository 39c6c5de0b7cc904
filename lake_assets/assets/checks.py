"""Turn quality.Outcome values into Dagster check specs, results and per-month evaluations."""

import warnings
from collections.abc import Iterable, Iterator

import dagster as dg

# Dagster has no public name for the link from a check evaluation to the materialization it
# judged (1.13); without it the UI shows a range run's results against no materialization.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as Target,
)

from lake_assets import quality
from lake_assets.schemas import TableContract

_SEVERITY = {quality.ERROR: dg.AssetCheckSeverity.ERROR, quality.WARN: dg.AssetCheckSeverity.WARN}


def specs(
    key: dg.AssetKey,
    layer: str,
    contract: TableContract,
    partitions: dg.PartitionsDefinition | None = None,
) -> list[dg.AssetCheckSpec]:
    """The registered checks of layer for this table, as Dagster check specs. With the asset's
    partitions each month's result lands on that month (the Checks tab lists them by month)."""
    with warnings.catch_warnings():
        # Partitioned check specs are a preview feature in Dagster 1.13; we use them on purpose.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                c.name,
                asset=key,
                blocking=c.blocking,
                description=c.description,
                partitions_def=partitions,
            )
            for c in quality.checks_for(layer, contract)
        ]


def results(outcomes: Iterable[quality.Outcome]) -> list[dg.AssetCheckResult]:
    """Results of a one-month (or unpartitioned) step: Dagster files them under its partition."""
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


def targets(
    context: dg.AssetExecutionContext, key: dg.AssetKey, partitions: list[str]
) -> dict[str, Target]:
    """This run's materialization of each partition of key, as check evaluation targets."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions),
        limit=len(partitions) * 4,
    ).records
    found: dict[str, Target] = {}
    for r in records:
        if r.run_id == context.run.run_id and r.partition_key not in found:
            found[r.partition_key] = Target(
                storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
            )
    return found


def evaluations(
    key: dg.AssetKey,
    partition: str,
    outcomes: Iterable[quality.Outcome],
    target: Target | None = None,
) -> Iterator[dg.AssetCheckEvaluation]:
    """One month's results inside a run of several months, each filed under its own month (a
    check result of a range run would otherwise land on no partition at all) and linked to that
    month's materialization by this run (target)."""
    for o in outcomes:
        yield dg.AssetCheckEvaluation(
            asset_key=key,
            check_name=o.name,
            passed=o.passed,
            metadata=o.metadata,
            severity=_SEVERITY[o.severity],
            description=o.description,
            blocking=quality.CHECKS[o.name].blocking,
            partition=partition,
            target_materialization_data=target,
        )


def planned_outputs(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The step's check outputs, marked as produced once every month's evaluation is logged:
    their results went out as per-month evaluations, so these carry none of their own."""
    for check_key in context.selected_asset_check_keys:
        yield dg.Output(
            None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key)
        )


def failed(outcomes: list[quality.Outcome]) -> list[str]:
    return [o.description for o in quality.failed_blocking(outcomes)]
