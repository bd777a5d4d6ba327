"""Real servers for the deployment tests, each on loopback and stopped by its PID.

- ``postgres_server``: PostgreSQL from Debian's ``postgresql`` package, a fresh cluster in a
  temporary folder (``initdb`` as the ``postgres`` user when the tests run as root, since the
  server refuses root), started as a direct child on a free port.
- ``redis_server``: ``redis-server`` from Debian's package, no persistence.
- ``dagster_home``: a ``DAGSTER_HOME`` whose ``dagster.yaml`` keeps runs, events and schedules
  in a fresh PostgreSQL database (dagster-postgres's storage with pooled connections, as
  ``deploy/dagster.yaml``) and queues runs (QueuedRunCoordinator:
  at most 2 at once, at most 1 tagged ``biosigio/weight=heavy``).
- :func:`start_process` / :func:`stop_process`: the Dagster daemon and Celery workers run as
  subprocesses in their own process group; they are stopped by that PID (TERM, then KILL).

A fixture skips its test, with the reason, when the binaries are not installed (``.ci/run``
installs them with apt-get).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = REPO / "workspace.yaml"
BIN = Path(sys.executable).parent  # the venv's console scripts (dagster-daemon, celery...)
MAX_RUNS = 2
HEAVY_LIMIT = 1


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sensor(env: Mapping[str, str], cwd: Path, timeout: float = 120) -> None:
    """``dagster sensor start recordings_sensor`` on the repository's workspace (asserted)."""
    start = subprocess.run([str(BIN / "dagster"), "sensor", "start", "recordings_sensor",
                            "-w", str(WORKSPACE)], env=dict(env), cwd=cwd, capture_output=True,
                           text=True, timeout=timeout)
    assert start.returncode == 0, start.stdout + start.stderr


def start_process(cmd: list[str], *, log: Path, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None, user: str | None = None) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its PID is its process group), output into ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None, cwd=cwd, user=user,
                                start_new_session=True)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop the process group led by ``proc.pid``: ``sig``, then SIGKILL after ``timeout``."""
    for s, wait in ((sig, timeout), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, s)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; children it left in its group (run workers...) go too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


def tail(path: Path, n: int = 60) -> str:
    """The last ``n`` lines of a log, for assertion messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_for(ready: Callable[[], bool], what: str, proc: subprocess.Popen | None, log: Path | None,
             timeout: float = 30) -> None:
    """Poll ``ready()`` until true; fail with the log when ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{tail(log) if log else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {timeout} s:\n{tail(log) if log else ''}")
        time.sleep(0.2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the ``load`` test out unless the ``-m`` expression names it (``-m load``): it
    takes far longer than the rest, and ``-m "not spark"`` and the like must not pull it in."""
    if "load" in (config.option.markexpr or ""):
        return
    keep = [i for i in items if i.get_closest_marker("load") is None]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


# ------------------------------------------------------------------------------ PostgreSQL
@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL server that trusts loopback connections."""

    host: str
    port: int
    user: str

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}:testing@{self.host}:{self.port}/{db}"

    def create_database(self) -> str:
        """A new, empty database; its name."""
        import psycopg2

        name = f"dagster_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name


def _pg_bindir() -> Path | None:
    which = shutil.which("pg_ctl")
    candidates = [Path(os.path.realpath(which)).parent] if which else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    return None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A PostgreSQL server of its own for the session, on a free loopback port."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed: "
                    "apt-get install postgresql")
    pytest.importorskip("psycopg2", reason="dagster-postgres is not installed (uv sync)")
    user = None
    if os.geteuid() == 0:  # postgres refuses to run as root: use the package's system user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        user = "postgres"
    data = Path(tempfile.mkdtemp(prefix="biosigio-pg-"))  # not under pytest's 0700 root tmp
    if user:
        shutil.chown(data, user, user)
    log = tmp_path_factory.mktemp("postgres") / "postgres.log"
    subprocess.run([str(bindir / "initdb"), "-D", str(data / "db"), "-U", "dagster", "-A",
                    "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                   check=True, capture_output=True, user=user, cwd=data)
    port = free_port()
    proc = start_process(
        [str(bindir / "postgres"), "-D", str(data / "db"), "-p", str(port), "-h", "127.0.0.1",
         "-k", str(data), "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=300"],
        log=log, user=user, cwd=data)
    server = Postgres("127.0.0.1", port, "dagster")

    def ready() -> bool:
        import psycopg2

        try:
            psycopg2.connect(host=server.host, port=port, user="dagster", dbname="postgres",
                             connect_timeout=1).close()
            return True
        except psycopg2.OperationalError:
            return False

    try:
        wait_for(ready, "postgres", proc, log)
        yield server
    finally:
        stop_process(proc, signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(data, ignore_errors=True)


# ----------------------------------------------------------------------------------- Redis
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of its own for the session; yields its ``redis://`` URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    pytest.importorskip("redis", reason="the redis client is not installed (uv sync)")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = folder / "redis.log"
    proc = start_process([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"],
                         log=log, cwd=folder)
    url = f"redis://127.0.0.1:{port}"

    def ready() -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    try:
        wait_for(ready, "redis-server", proc, log)
        yield url
    finally:
        stop_process(proc)


# ------------------------------------------------------------------------- Dagster instance
DAGSTER_YAML = """\
telemetry:
  enabled: false
storage:  # as deploy/dagster.yaml: dagster-postgres's storage with pooled connections
  custom:
    module: biosigio_pipeline.pg_storage
    class: PooledPostgresStorage
    config:
      postgres_db:
        hostname: {host}
        port: {port}
        username: {user}
        password: testing
        db_name: {db}
        scheme: postgresql+psycopg2  # SQLAlchemy 2.1 would pick psycopg 3, not installed
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: {max_runs}
    dequeue_interval_seconds: 1
    tag_concurrency_limits:
      - key: biosigio/weight
        value: heavy
        limit: {heavy}
run_launcher:
  module: dagster._core.launcher
  class: DefaultRunLauncher
{extra}"""


def write_dagster_yaml(home: Path, pg: Postgres, db: str, extra: str = "",
                       max_runs: int = MAX_RUNS) -> Path:
    """``home/dagster.yaml`` for PostgreSQL storage and the queued run coordinator (at most
    ``max_runs`` at once); ``extra`` is appended (run monitoring, run retries...)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(DAGSTER_YAML.format(host=pg.host, port=pg.port, user=pg.user, db=db,
                                        max_runs=max_runs, heavy=HEAVY_LIMIT, extra=extra))
    return path


@pytest.fixture
def dagster_home(tmp_path: Path, postgres_server: Postgres) -> Path:
    """A DAGSTER_HOME on a fresh PostgreSQL database of the session's server."""
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home, postgres_server, postgres_server.create_database())
    return home


def base_env(home: Path, project: Path, **extra: str) -> dict[str, str]:
    """The environment of the Dagster processes of one test (no inherited BIOSIGIO_*)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BIOSIGIO_", "DAGSTER_", "PYTEST_"))}
    env.update(DAGSTER_HOME=str(home), BIOSIGIO_HOME=str(project), PYTHONWARNINGS="ignore",
               PYTHONUNBUFFERED="1", **extra)
    return env


# ---------------------------------------------------------------------------- Celery workers
def start_celery_worker(name: str, broker: str, backend: str, *, env: Mapping[str, str],
                        folder: Path) -> tuple[subprocess.Popen, Path]:
    """One Celery worker of ``dagster_celery.app`` (solo pool: the task runs in the worker's
    own process, so its PID is the one that executes steps), in its own working folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster_celery_config.py", folder)  # late acks (docs)
    env = {**env, "PYTHONPATH": str(folder)}
    log = folder / "worker.log"
    proc = start_process(
        [str(BIN / "celery"), "-A", "dagster_celery.app", "-b", broker, "--result-backend",
         backend, "worker", "-Q", "dagster", "-P", "solo", "-n", f"{name}@%h", "-l", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        log=log, env=env, cwd=folder)
    return proc, log


def wait_celery_ready(workers: list[tuple[subprocess.Popen, Path]], timeout: float = 60) -> None:
    """Until every worker's log says it is ready."""
    for proc, log in workers:
        wait_for(lambda log=log: " ready." in tail(log, 200), f"celery worker ({log})", proc, log,
                 timeout=timeout)
