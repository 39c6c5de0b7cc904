"""The deployment's instance storage: Dagster's PostgreSQL storage, keeping its connection.

Dagster's PostgreSQL storage opens a new connection for every statement outside the webserver
(SQLAlchemy's NullPool). On this machine a connection costs 5 ms (the TCP handshake, a server
process, SCRAM authentication) against 0.06 ms for a query on an open one, and a run writes
hundreds of events: a month of every service from the UI took 10.7 s with a connection per
statement and 7.0 s with this storage (`make bench`'s run overhead).

PooledPostgresStorage is the same storage with the same config (`storage: custom:` in
deploy/dagster.yaml), whose run, event log and schedule storages share one engine per process
that keeps one connection open between statements.

- Statements that overlap (threads) open further connections as before, closed after use:
  nothing waits for the pool, and a process holds at most one idle connection.
- A kept connection is checked with a round trip before use, so one that PostgreSQL or the
  network dropped is replaced instead of failing a step.
- A forked child never uses its parent's connection: it opens its own.
- The webserver replaces the engines with its own pool (Dagster's `optimize_for_webserver`).
- The storages' engines are private attributes of dagster-postgres; the dagster pin bounds them
  and lake_assets_tests/deploy/test_postgres_storage.py checks them against a real PostgreSQL.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

import sqlalchemy
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

# Engines of this process, for the fork hook; weak so that a disposed instance's engine goes.
_ENGINES: weakref.WeakSet[sqlalchemy.engine.Engine] = weakref.WeakSet()
_FORK_HOOK: list[bool] = []


def _forget_parents_connections() -> None:
    """In a forked child: drop the pooled connections without closing them (they are the
    parent's sockets); the child's first statement opens its own."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


def pooled_engine(postgres_url: str, token_provider: Any) -> sqlalchemy.engine.Engine:
    """An engine for the URL that keeps one connection between statements."""
    if not _FORK_HOOK:
        os.register_at_fork(after_in_child=_forget_parents_connections)
        _FORK_HOOK.append(True)
    engine = create_pg_engine(
        postgres_url,
        token_provider,
        isolation_level="AUTOCOMMIT",  # as dagster-postgres's own engines
        pool_size=1,
        max_overflow=-1,  # overlapping statements never wait: they open one more, as before
        pool_pre_ping=True,
    )
    _ENGINES.add(engine)
    return engine


class PooledPostgresStorage(DagsterPostgresStorage):
    """Dagster's PostgreSQL storage (same config) whose three storages share one engine that
    keeps its connection open between statements."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        engine = pooled_engine(postgres_url, token_provider)
        for part in (self._run_storage, self._event_log_storage, self._schedule_storage):
            part._engine = engine

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
        )
