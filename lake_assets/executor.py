"""The runs' step executor: Dagster's multiprocess executor, with steps forked from a server that
has imported the code location and the instance's modules once, after freeing the warehouse
slots of runs whose worker is gone."""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Mapping

import dagster as dg

from lake_assets.assets.warehouse import WAREHOUSE_POOL, WRITER_TAG
from lake_assets.instance import free_dead_runs_slots

CODE_LOCATION = "lake_assets.definitions"


def instance_modules(instance: dg.DagsterInstance) -> list[str]:
    """The modules the run's instance is built from (storage, compute logs, run launcher): each
    step process builds the instance again, and importing them after the fork (SQLAlchemy,
    Alembic, the storage classes) cost every step about half a second."""
    parts = (
        instance.run_storage,
        instance.event_log_storage,
        instance.schedule_storage,
        instance.compute_log_manager,
        instance.run_launcher,
    )
    return sorted({type(part).__module__ for part in parts if part is not None})


def preloaded(config: Mapping[str, object], instance: dg.DagsterInstance) -> dict[str, object]:
    """The executor's config with the forkserver preloading the instance's modules, then the
    code location (last: it freezes what was imported before it). A preload the user configured,
    or another start method, is kept as it is."""
    config = dict(config)
    forkserver = (config.get("start_method") or {}).get("forkserver")
    if forkserver is None or forkserver.get("preload_modules") is not None:
        return config
    preload = [*instance_modules(instance), CODE_LOCATION]
    config["start_method"] = {"forkserver": {**forkserver, "preload_modules": preload}}
    return config


def _multiprocess_freeing_dead_slots(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's multiprocess executor, after freeing the warehouse slots of runs whose worker
    is gone: without a daemon (the CLI) nothing else would, and the run would wait forever."""
    log = dg.get_dagster_logger()
    for line in free_dead_runs_slots(init_context.instance, WAREHOUSE_POOL):
        log.warning(line)
    config = preloaded(init_context.executor_config, init_context.instance)
    return dg.multiprocess_executor.executor_creation_fn(
        init_context._replace(executor_config=config)
    )


MULTIPROCESS = dg.ExecutorDefinition(
    name="multiprocess",
    config_schema=dg.multiprocess_executor.config_schema,
    requirements=dg.multiprocess_executor.get_requirements,
    executor_creation_fn=_multiprocess_freeing_dead_slots,
    description=dg.multiprocess_executor.description,
)


# A run starts its warehouse writers one after another itself: they wait for each other without
# asking the pool (whose turned-away steps retry a second later) and a writer that ends hands
# over at once. Other runs' writers are still held apart by the pool.
ONE_WRITER_PER_RUN = [{"key": WRITER_TAG, "value": WAREHOUSE_POOL, "limit": 1}]


def step_executor() -> dg.ExecutorDefinition:
    """Steps run in subprocesses forked from a server that has already imported this code
    location, instead of each starting Python and loading it again (about a second per step).
    Windows has no forkserver: there they are spawned."""
    config: dict[str, object] = {"tag_concurrency_limits": ONE_WRITER_PER_RUN}
    if "forkserver" in multiprocessing.get_all_start_methods():
        config["start_method"] = {"forkserver": {}}
    return MULTIPROCESS.configured(config)


def freeze_loaded_objects() -> None:
    """Exempt everything built so far (Dagster's and our modules, the definitions) from Python's
    cyclic garbage collector: they live as long as the process. Every full collection, and the
    one at exit, then skips them: a CLI run ended 0.7 s sooner after RUN_SUCCESS, and processes
    forked from the forkserver share those pages instead of copying them when collected."""
    gc.freeze()
