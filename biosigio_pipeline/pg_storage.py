"""Dagster's PostgreSQL instance storage with a small connection pool in every process.

dagster-postgres opens a new database connection for every query (SQLAlchemy ``NullPool``):
about a dozen per partition of a batched run, each a TCP connect, an authentication and a
forked server backend. This storage (``storage: custom`` in ``dagster.yaml``, see
``deploy/dagster.yaml``) is dagster-postgres's own, with pooled engines for the run and event
log storages (the ones a run uses), as the webserver already does (``optimize_for_webserver``)
but without its statement timeout:

- ``pool_size`` connections are kept per process and storage, ``max_overflow`` more are
  opened under concurrent use and closed after it; all are closed when the instance is
  disposed (or garbage-collected), so instances that come and go do not pile connections up;
- a connection is pinged before use (``pool_pre_ping``), so a restarted server costs a
  reconnect, not a failed step, and it is recycled after ``pool_recycle`` seconds;
- a connection opened in another process (a fork that inherited the pool) is never reused;
- the event log remembers which tables exist instead of asking the catalog before every
  check evaluation it stores.
"""

from __future__ import annotations

import os
import weakref
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
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

__all__ = ["PooledPostgresStorage", "pooled_engine"]

#: The ``pool`` settings unless ``dagster.yaml`` says otherwise.
POOL_DEFAULTS = {"pool_size": 1, "max_overflow": 4, "pool_recycle": 3600}


def pooled_engine(url: str, token_provider: Any = None, *, pool_size: int = 1,
                  max_overflow: int = 4, pool_recycle: int = 3600,
                  options: str | None = None) -> Engine:
    """A pooled, autocommit engine on ``url`` that never hands a connection across a fork."""
    kwargs: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_size": pool_size,
                              "max_overflow": max_overflow, "pool_recycle": pool_recycle,
                              "pool_pre_ping": True}
    if options:
        kwargs["connect_args"] = {"options": options}
    engine = create_pg_engine(url, token_provider, **kwargs)

    @event.listens_for(engine, "connect")
    def _remember_pid(dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _same_process(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():  # inherited through a fork: not ours
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError("connection opened in another process")

    return engine


def _pool(storage: Any, token_provider: Any, pool: Mapping[str, int] | None) -> None:
    """Swap ``storage``'s per-query engine for a pooled one, closed with the storage."""
    old: Engine = storage._engine
    options = old.url.query.get("options")
    storage._engine = pooled_engine(storage.postgres_url, token_provider,
                                    **{**POOL_DEFAULTS, **(pool or {})},
                                    options=options if isinstance(options, str) else None)
    old.dispose()
    weakref.finalize(storage, storage._engine.dispose)  # an instance nobody disposed


class PooledPostgresRunStorage(PostgresRunStorage):
    """dagster-postgres's run storage on a pooled engine."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 token_provider: Any = None, pool: Mapping[str, int] | None = None) -> None:
        super().__init__(postgres_url, should_autocreate_tables, token_provider=token_provider)
        _pool(self, token_provider, pool)

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres's event log storage on a pooled engine, remembering existing tables."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 token_provider: Any = None, pool: Mapping[str, int] | None = None) -> None:
        super().__init__(postgres_url, should_autocreate_tables, token_provider=token_provider)
        _pool(self, token_provider, pool)
        self._tables: set[str] = set()

    def has_table(self, table_name: str) -> bool:
        """Whether the table exists (a table found once is not looked up again: Dagster's
        migrations add tables, never drop them)."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


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
