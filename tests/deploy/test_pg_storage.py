"""The pooled PostgreSQL storage of deploy/dagster.yaml on a real server: connections are
reused, also by the next instance of the process (a Celery worker makes one per step), a
connection the server dropped is replaced before use, and a forked process opens its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import Postgres, write_dagster_yaml

pytestmark = pytest.mark.deploy


def _backend_pid(storage: object) -> int:
    """The server process behind the connection the storage hands out now."""
    from sqlalchemy import text

    with storage._engine.connect() as conn:  # type: ignore[attr-defined]
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


def test_instances_of_one_process_share_the_pool(instance, tmp_path: Path) -> None:
    import dagster as dg

    first = _backend_pid(instance.event_log_storage)
    home = tmp_path / "home"  # the same dagster.yaml, as each Celery task reads it
    for _ in range(3):
        other = dg.DagsterInstance.from_config(str(home))  # not disposed, like the tasks'
        assert _backend_pid(other.event_log_storage) == first
        assert _backend_pid(other.run_storage) == first  # one engine per database


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
    if child == 0:  # the child: report its backend, on a connection of its own
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
