"""The step executor: the forkserver preloads what each step process would import again (the
instance's modules, then the code location), and loading the code location freezes its objects
out of the cyclic garbage collector."""

import gc
import importlib
import shutil

import dagster as dg

from lake_assets import executor
from lake_assets_tests.conftest import REPO

SQLITE_INSTANCE = [
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "lake_assets.instance",
]


def _instance(tmp_path) -> dg.DagsterInstance:
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(tmp_path))


def test_the_forkserver_preloads_the_instance_modules_then_the_code_location(tmp_path):
    with _instance(tmp_path) as instance:
        assert executor.instance_modules(instance) == SQLITE_INSTANCE
        config = {"retries": {"enabled": {}}, "start_method": {"forkserver": {}}}
        assert executor.preloaded(config, instance) == {
            "retries": {"enabled": {}},
            "start_method": {
                "forkserver": {"preload_modules": [*SQLITE_INSTANCE, "lake_assets.definitions"]}
            },
        }
        assert config["start_method"] == {"forkserver": {}}  # the job's own config is untouched
        # every preloaded module exists under the pinned Dagster (the forkserver would skip a
        # missing one silently)
        for module in executor.instance_modules(instance):
            importlib.import_module(module)


def test_a_preload_or_start_method_the_user_chose_is_kept(tmp_path):
    with _instance(tmp_path) as instance:
        chosen = {"start_method": {"forkserver": {"preload_modules": ["dagster"]}}}
        assert executor.preloaded(chosen, instance) == chosen
        spawn = {"start_method": {"spawn": {}}}
        assert executor.preloaded(spawn, instance) == spawn
        assert executor.preloaded({}, instance) == {}


def test_loading_the_code_location_freezes_what_it_built():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    module = importlib.reload(importlib.import_module("lake_assets.definitions"))
    # the definitions and every module imported so far are out of the collector's reach
    assert gc.get_freeze_count() > 0
    assert not any(obj is module.defs for obj in gc.get_objects())
