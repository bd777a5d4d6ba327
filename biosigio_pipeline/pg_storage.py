"""Dagster's PostgreSQL instance storage with a small connection pool in every process.

dagster-postgres opens a new database connection for every query (SQLAlchemy ``NullPool``, so
that short-lived instances hold nothing open): about a dozen per partition of a batched run,
each a TCP connect, an authentication and a new server process. This storage (``storage:
custom`` in ``dagster.yaml``, see ``deploy/dagster.yaml``) is dagster-postgres's own, with a
pooled engine for the run and event log storages (the ones a run uses), as the webserver
already does (``optimize_for_webserver``) but without its statement timeout:

- one engine per process and database, shared by every instance the process creates (a
  Celery worker creates one per step and never disposes it), so a process keeps at most
  ``pool_size`` idle connections, whatever its instances do;
- ``max_overflow`` more are opened under concurrent use (daemon threads) and closed when
  returned; -1, the default, never makes a thread wait for a connection, as ``NullPool``;
- a connection is pinged before use (``pool_pre_ping``), so a restarted server costs a
  reconnect, not a failed step, and it is recycled after ``pool_recycle`` seconds;
- a forked child drops the pool it inherited without touching the parent's connections;
- the event log remembers which tables exist instead of asking the catalog before every
  check evaluation it stores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, cast

from dagster import Field, IntSource
from dagster._config.config_schema import UserConfigSchema  # no public API for these
from dagster._core.storage.config import pg_config
from dagster._serdes import ConfigurableClassData
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.engine import Engine

__all__ = ["PooledPostgresStorage", "pooled_engine"]

#: The ``pool`` settings unless ``dagster.yaml`` says otherwise.
POOL_DEFAULTS = {"pool_size": 2, "max_overflow": -1, "pool_recycle": 3600}

_ENGINES: dict[tuple[Any, ...], Engine] = {}
_LOCK = threading.Lock()


def _forget_inherited() -> None:
    """In a forked child: drop the inherited pools without closing the parent's sockets."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()


os.register_at_fork(after_in_child=_forget_inherited)


def pooled_engine(url: str, *, options: str | None = None, **pool: int) -> Engine:
    """This process's pooled, autocommit engine on ``url`` with these ``pool`` settings
    (:data:`POOL_DEFAULTS` for the others), created on first use, then shared."""
    settings = {**POOL_DEFAULTS, **pool}
    key = (url, options, *sorted(settings.items()))
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            kwargs: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_pre_ping": True,
                                      **settings}
            if options:
                kwargs["connect_args"] = {"options": options}
            engine = _ENGINES[key] = create_pg_engine(url, None, **kwargs)
        return engine


def _pool(storage: Any, token_provider: Any, pool: Mapping[str, int] | None) -> None:
    """Swap ``storage``'s per-query engine for the process's pooled one (not with a cloud
    token provider, whose engines are per instance: those stay unpooled)."""
    if token_provider is not None:
        return
    old: Engine = storage._engine
    options = old.url.query.get("options")
    storage._engine = pooled_engine(storage.postgres_url, **(pool or {}),
                                    options=options if isinstance(options, str) else None)
    old.dispose()


class PooledPostgresRunStorage(PostgresRunStorage):
    """dagster-postgres's run storage on a pooled engine."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 token_provider: Any = None, pool: Mapping[str, int] | None = None) -> None:
        super().__init__(postgres_url, should_autocreate_tables, token_provider=token_provider)
        _pool(self, token_provider, pool)


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres's event log storage on a pooled engine, remembering existing tables."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 token_provider: Any = None, pool: Mapping[str, int] | None = None) -> None:
        self._tables: set[str] = set()
        super().__init__(postgres_url, should_autocreate_tables, token_provider=token_provider)
        _pool(self, token_provider, pool)

    def has_table(self, table_name: str) -> bool:
        """Whether the table exists (a table found once is not looked up again: Dagster's
        migrations add tables, never drop them)."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables


class PooledPostgresStorage(DagsterPostgresStorage):
    """:class:`dagster_postgres.DagsterPostgresStorage` with pooled engines (module doc)."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider: Any = None,
                 pool: Mapping[str, int] | None = None) -> None:
        # DagsterPostgresStorage.__init__ with the pooled run and event log storages
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PooledPostgresRunStorage(postgres_url, should_autocreate_tables,
                                                     token_provider, pool)
        self._event_log_storage = PooledPostgresEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider, pool)
        self._schedule_storage = PostgresScheduleStorage(  # sensors and schedules: per tick
            postgres_url, should_autocreate_tables, token_provider=token_provider)
        super(DagsterPostgresStorage, self).__init__()

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        """dagster-postgres's settings plus the optional ``pool`` block."""
        return {**cast("dict[str, Any]", pg_config()), "pool": Field(
            {"pool_size": Field(IntSource, is_required=False),
             "max_overflow": Field(IntSource, is_required=False),
             "pool_recycle": Field(IntSource, is_required=False)}, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> PooledPostgresStorage:
        return cls(postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data,
                   token_provider=get_token_provider_from_config(config_value),
                   pool=config_value.get("pool"))
