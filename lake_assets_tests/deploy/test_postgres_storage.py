"""The deployment's instance storage against the stack's PostgreSQL: one connection kept between
statements, a dropped one replaced, none shared with a forked child."""

from __future__ import annotations

import os

import dagster as dg
import pytest
import sqlalchemy

from lake_assets.postgres_storage import PooledPostgresStorage

pytestmark = pytest.mark.deploy


def _engine(instance: dg.DagsterInstance) -> sqlalchemy.engine.Engine:
    stored = instance.get_ref().storage_data
    assert (stored.module_name, stored.class_name) == (
        PooledPostgresStorage.__module__,
        PooledPostgresStorage.__name__,
    )
    parts = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    engines = {id(part._engine): part._engine for part in parts}
    assert len(engines) == 1, "the three storages share one engine"
    return next(iter(engines.values()))


def _backend_pid(engine: sqlalchemy.engine.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()


def test_statements_share_one_kept_connection(stack):
    with stack.instance() as instance:
        engine = _engine(instance)
        opened: list[object] = []
        sqlalchemy.event.listen(engine, "connect", lambda conn, _: opened.append(conn))
        runs = instance.get_runs_count()
        for _ in range(20):
            assert instance.get_runs_count() == runs
            instance.get_asset_keys()
        # Dagster's own PostgreSQL storage opens a connection for each of these 41 statements.
        assert len(opened) == 1


def test_a_connection_postgresql_dropped_is_replaced(stack):
    with stack.instance() as instance, stack.instance() as other:
        engine = _engine(instance)
        before = _backend_pid(engine)
        runs = instance.get_runs_count()
        with _engine(other).connect() as conn:
            sql = sqlalchemy.text("SELECT pg_terminate_backend(:pid)")
            assert conn.execute(sql, {"pid": before}).scalar_one() is True
        # The kept connection is dead; the next statement checks it and opens a new one.
        assert instance.get_runs_count() == runs
        assert _backend_pid(engine) != before


def test_a_forked_child_opens_its_own_connection(stack):
    with stack.instance() as instance:
        engine = _engine(instance)
        parent = _backend_pid(engine)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its pid on the server, or 0 if it failed
            try:
                child = _backend_pid(engine)
            except BaseException:
                child = 0
            os.write(write, str(child).encode())
            os._exit(0)
        os.close(write)
        child = int(os.read(read, 64) or b"0")
        os.close(read)
        os.waitpid(pid, 0)
        assert child not in (0, parent)
        # The parent's connection was not touched by the child.
        assert _backend_pid(engine) == parent
