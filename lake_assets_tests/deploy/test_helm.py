"""deploy/helm against the official Dagster chart: the values (and the key-file overlay merged
over them, as Helm merges) validate against the chart's own values schema, and the instance the
chart's templates render from them is one Dagster accepts (Dagster issue #31086)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

# The check Dagster runs on an instance's run queue and concurrency settings at start-up; no
# public name exists for it.
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import validate_concurrency_config

from lake_dev.deploy_local import DEPLOY, REPO

pytestmark = pytest.mark.deploy

# ../shared/helm: the chart's values.schema.json and where it comes from (its PROVENANCE.md).
SCHEMA = (
    Path(os.environ.get("LAKE_SHARED_DIR", REPO.parent / "shared"))
    / "helm"
    / "dagster-chart-values.schema.json"
)
KEY_PATH = "/var/secrets/google/key.json"


def _values(name: str = "values.yaml") -> dict:
    return yaml.safe_load((DEPLOY / "helm" / name).read_text())


def _offline(node, conditional: bool = False):
    """The schema as PROVENANCE.md says to use it offline: remote $refs (Kubernetes objects)
    permissive, and no `required` (they assume the chart's defaults merged under ours), except
    under `then`, where a choice of ours (a coordinator's type) requires its own block."""
    if isinstance(node, dict):
        return {
            k: _offline(v, conditional or k == "then")
            for k, v in node.items()
            if not (k == "required" and not conditional)
            and not (k == "$ref" and not str(v).startswith("#"))
        }
    if isinstance(node, list):
        return [_offline(v, conditional) for v in node]
    return node


def _errors(values: dict) -> list[str]:
    schema = _offline(json.loads(SCHEMA.read_text()))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)
    ]


def helm_merge(base: dict, over: dict) -> dict:
    """`-f a.yaml -f b.yaml` as Helm merges them: maps key by key, null deletes a key, a list or
    a scalar replaces the value."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def test_the_values_validate_against_the_charts_schema():
    assert SCHEMA.exists(), f"the chart's schema is not at {SCHEMA} (../shared/helm)"
    assert _errors(_values()) == []


def test_the_key_file_overlay_validates_and_only_adds_the_key():
    base, overlay = _values(), _values("values-keyfile.yaml")
    merged = helm_merge(base, overlay)
    assert _errors(merged) == []
    # What the key file adds, and nothing else: the lists Helm replaces repeat the base's.
    (code,), (base_code,) = (
        merged["dagster-user-deployments"]["deployments"],
        base["dagster-user-deployments"]["deployments"],
    )
    key_env = {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": KEY_PATH}
    assert code["env"] == [*base_code["env"], key_env]
    assert {k: v for k, v in code.items() if k not in ("env", "volumes", "volumeMounts")} == {
        k: v for k, v in base_code.items() if k != "env"
    }
    launcher = merged["runLauncher"]["config"]["k8sRunLauncher"]
    base_launcher = base["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envVars"] == [
        *base_launcher["envVars"],
        f"GOOGLE_APPLICATION_CREDENTIALS={KEY_PATH}",
    ]
    assert launcher["envSecrets"] == base_launcher["envSecrets"]
    for holder in (code, launcher, merged["dagsterWebserver"], merged["dagsterDaemon"]):
        (mount,) = holder["volumeMounts"]
        (volume,) = holder["volumes"]
        assert mount == {
            "name": "gcp-key",
            "mountPath": os.path.dirname(KEY_PATH),
            "readOnly": True,
        }
        assert volume == {"name": "gcp-key", "secret": {"secretName": "lake-assets-gcp-key"}}
    assert merged["serviceAccount"]["annotations"] == {}


def test_the_schema_check_catches_a_misspelt_key():
    values = _values()
    values["dagsterDaemon"]["runMonitring"] = values["dagsterDaemon"].pop("runMonitoring")
    assert any("runMonitring" in e for e in _errors(values))


def test_no_secret_is_in_the_values():
    """With Workload Identity no key exists; the database password comes from --set or a
    secret. (The overlay's GOOGLE_APPLICATION_CREDENTIALS is a path: the test above.)"""
    values = _values()
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in json.dumps(values)
    assert "postgresqlPassword" not in values["postgresql"]
    assert values["serviceAccount"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "lake-assets@PROJECT_ID.iam.gserviceaccount.com"
    }
    assert values["global"]["serviceAccountName"] == values["serviceAccount"]["name"]


def _compact(values: dict) -> list:
    return [v for v in values.values() if v not in (None, 0, False, "", [], {})]


def render_run_coordinator(values: dict, unset_max: str) -> dict:
    """The chart's _run-coordinator.tpl. A custom coordinator is rendered as written. The queued
    one's versions differ in what they render for an unset maxConcurrentRuns once another value
    is set: "-1" (the 1.9-1.12 charts) or nothing ("omit", other versions)."""
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    if coordinator["type"] == "CustomRunCoordinator":
        custom = coordinator["config"]["customRunCoordinator"]
        return {"module": custom["module"], "class": custom["class"], "config": custom["config"]}
    qrc = coordinator["config"]["queuedRunCoordinator"]
    rendered = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
    if not _compact(qrc):
        return rendered
    config = {}
    if qrc.get("maxConcurrentRuns") is not None:
        config["max_concurrent_runs"] = qrc["maxConcurrentRuns"]
    elif unset_max == "-1":
        config["max_concurrent_runs"] = -1
    if qrc.get("tagConcurrencyLimits"):
        config["tag_concurrency_limits"] = qrc["tagConcurrencyLimits"]
    if qrc.get("dequeueIntervalSeconds"):
        config["dequeue_interval_seconds"] = qrc["dequeueIntervalSeconds"]
    return {**rendered, "config": config}


def rendered_instance(values: dict, unset_max: str) -> dict:
    """The parts of the chart's dagster.yaml that bear on the run queue: the run coordinator,
    then additionalInstanceConfig's keys."""
    return {
        "run_coordinator": render_run_coordinator(values, unset_max),
        **values.get("additionalInstanceConfig", {}),
    }


@pytest.mark.parametrize("unset_max", ["-1", "omit"])
def test_the_chart_renders_the_shipped_instances_queue_and_dagster_accepts_it(unset_max):
    instance = rendered_instance(_values(), unset_max)
    validate_concurrency_config(instance)  # raises on #31086's conflict
    shipped = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert instance == {
        "run_coordinator": shipped["run_coordinator"],
        "concurrency": shipped["concurrency"],
        "run_retries": shipped["run_retries"],
    }


@pytest.mark.parametrize(
    "queue",
    [
        {"dequeueIntervalSeconds": 1},
        {"dequeueIntervalSeconds": 1, "maxConcurrentRuns": 4},
    ],
)
def test_the_queued_coordinators_values_are_what_issue_31086_breaks(queue):
    """Why the values name the coordinator as a custom one: with the chart's own queued form,
    the instance the 1.9-1.12 chart renders is one whose daemon does not start."""
    values = _values()
    values["dagsterDaemon"]["runCoordinator"] = {
        "enabled": True,
        "type": "QueuedRunCoordinator",
        "config": {"queuedRunCoordinator": queue},
    }
    assert _errors(values) == []  # the schema does not catch it
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        validate_concurrency_config(rendered_instance(values, "-1"))
