"""The pooled PostgreSQL storage of deploy/dagster.yaml on a real server: connections are
reused, a connection the server dropped is replaced before use, and a forked process never
uses its parent's connection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import Postgres, write_dagster_yaml

pytestmark = pytest.mark.deploy


def _backend_pid(storage: object) -> int:
    """The server process behind the connection the storage hands out now."""
    from sqlalchemy import text

    with storage._connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("select pg_backend_pid()")).scalar_one())


@pytest.fixture
def instance(tmp_path: Path, postgres_server: Postgres):
    import dagster as dg

    home = tmp_path / "home"
    write_dagster_yaml(home, postgres_server, postgres_server.create_database())
    inst = dg.DagsterInstance.from_config(str(home))
    try:
        yield inst
    finally:
        inst.dispose()


def test_connections_are_reused(instance) -> None:
    events = instance.event_log_storage
    first = _backend_pid(events)
    instance.add_dynamic_partitions("recordings", [f"r{i}" for i in range(20)])
    for _ in range(5):
        assert len(instance.get_dynamic_partitions("recordings")) == 20
    assert _backend_pid(events) == first  # dagster-postgres alone: a new backend every time


def test_a_dropped_connection_is_replaced(instance, postgres_server: Postgres) -> None:
    import psycopg2

    events = instance.event_log_storage
    pid = _backend_pid(events)
    conn = psycopg2.connect(host=postgres_server.host, port=postgres_server.port,
                            user=postgres_server.user, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:  # as a server restart or an idle timeout would
            cur.execute("select pg_terminate_backend(%s)", (pid,))
    finally:
        conn.close()
    instance.add_dynamic_partitions("recordings", ["after"])  # no error: pinged, reconnected
    assert instance.get_dynamic_partitions("recordings") == ["after"]
    assert _backend_pid(events) != pid


def test_a_fork_opens_its_own_connection(instance) -> None:
    events = instance.event_log_storage
    parent = _backend_pid(events)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its backend, never touch the parent's socket
        code = 1
        try:
            os.write(write, str(_backend_pid(events)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    got = os.read(read, 64).decode()
    os.close(read)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert int(got) != parent
    assert _backend_pid(events) == parent  # the parent's connection still works, unshared
