"""Retries by policy, for real: the run worker of a run is SIGKILLed in the middle of the run.

A live ``dagster-daemon`` on a PostgreSQL instance with ``run_monitoring`` and
``run_retries`` (max 1) enabled, as ``deploy/dagster.yaml`` ships them. The sensor requests
the run of one recording; as soon as the run's first asset is materialized, the test kills
the run worker (the ``execute_run`` process whose PID the run's "Started process for run"
event names). The code server that launched it sees its child gone and marks the run failed;
the daemon's run-retry consumer launches a retry run (tags ``dagster/parent_run_id``,
``dagster/retry_number=1``) that re-executes from the failure, succeeds, and every check
passes on outputs that read whole. Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from .conftest import (
    BIN,
    WORKSPACE,
    Postgres,
    base_env,
    start_process,
    start_sensor,
    stop_process,
    tail,
    write_dagster_yaml,
)
from .test_load import write_tiny_edfs

pytestmark = [pytest.mark.deploy]

#: Run monitoring and run retries as deploy/dagster.yaml ships them, with shorter intervals.
RETRIES_YAML = """\
run_monitoring:
  enabled: true
  start_timeout_seconds: 120
  poll_interval_seconds: 2
run_retries:
  enabled: true
  max_retries: 1
"""
KEY = "retry__rec0000_edf"


def _run_worker_pid(instance, run_id: str) -> int | None:
    """The PID of the run worker, from the run's "Started process for run (pid: N)" event."""
    import dagster as dg

    for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        m = re.search(r"Started process for run \(pid: (\d+)\)", e.message or "")
        if m:
            return int(m.group(1))
    return None


@pytest.mark.timeout(600)  # generous: 2 loaded cores can be several times slower
def test_killed_run_worker_is_retried_by_policy(tmp_path: Path,
                                                postgres_server: Postgres) -> None:
    import dagster as dg

    from biosigio_lib import Recording

    T, S = dg.DagsterEventType, dg.DagsterRunStatus
    t0 = time.monotonic()
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home, postgres_server, postgres_server.create_database(),
                       extra=RETRIES_YAML)
    sources, storage = tmp_path / "sources", tmp_path / "storage"
    write_tiny_edfs(sources / "retry", 1)
    env = base_env(home, tmp_path, BIOSIGIO_SOURCE_ROOTS=str(sources),
                   BIOSIGIO_STORAGE_ROOT=str(storage), BIOSIGIO_SENSOR_INTERVAL="1")
    work = tmp_path / "daemon_cwd"
    work.mkdir()
    log = tmp_path / "daemon.log"
    start_sensor(env, work, timeout=120)
    daemon = start_process([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                           log=log, env=env, cwd=work)
    instance = dg.DagsterInstance.from_config(str(home))
    killed = first = None
    try:
        deadline = time.monotonic() + 300
        while killed is None:  # the first run: kill its worker once an asset is materialized
            assert daemon.poll() is None, f"daemon exited:\n{tail(log)}"
            assert time.monotonic() < deadline, tail(log)
            records = instance.get_run_records()
            if records:
                first = records[-1].dagster_run
                assert first.status not in (S.SUCCESS, S.FAILURE), (
                    f"run ended ({first.status}) before the test could kill it")
                pid = _run_worker_pid(instance, first.run_id)
                if pid and instance.all_logs(first.run_id, of_type=T.ASSET_MATERIALIZATION):
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    t_kill = time.monotonic() - t0
                    break
            time.sleep(0.05)

        def retried() -> list:
            return [r.dagster_run for r in instance.get_run_records()
                    if r.dagster_run.tags.get("dagster/parent_run_id") == first.run_id]

        while not (retried() and retried()[0].status in (S.SUCCESS, S.FAILURE, S.CANCELED)):
            assert daemon.poll() is None, f"daemon exited:\n{tail(log)}"
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.5)
    finally:
        stop_process(daemon)
    assert daemon.poll() is not None
    print(f"\nkilled run worker {killed} after {t_kill:.1f} s; retry done after "
          f"{time.monotonic() - t0:.1f} s")

    failed = instance.get_run_by_id(first.run_id)
    assert failed is not None and failed.status == S.FAILURE
    why = " ".join(e.message or "" for e in instance.all_logs(first.run_id,
                                                              of_type=T.ENGINE_EVENT))
    assert f"Run execution process for {first.run_id}" in why, why  # seen dead, not a step
    (retry,) = retried()
    assert retry.status == S.SUCCESS, tail(log)
    assert retry.tags["dagster/retry_number"] == "1"
    assert retry.tags["dagster/partition"] == KEY
    assert retry.root_run_id == first.run_id
    runs = instance.get_run_records()
    assert len(runs) == 2  # the killed run and one retry: no further attempt
    # every check passes, evaluated once, on the retry's outputs
    checks = [e.dagster_event.event_specific_data for r in (first, retry)
              for e in instance.all_logs(r.run_id, of_type=T.ASSET_CHECK_EVALUATION)]
    assert sorted(c.check_name for c in checks) == [
        "feather_round_trip", "parquet_round_trip", "store_complete",
        "store_level0_within_bound"]
    assert all(c.passed for c in checks), checks
    # each of the 5 assets has a materialization, across the two runs
    mats = {e.dagster_event.asset_key.path[-1] for r in (first, retry)
            for e in instance.all_logs(r.run_id, of_type=T.ASSET_MATERIALIZATION)}
    assert mats == {"source_recording", "recording", "parquet_archive", "feather_archive",
                    "zarr_store"}
    # the retry re-executed from the failure: no step the killed run finished (its
    # STEP_SUCCESS written; the kill may land between a materialization and that event)
    # is redone
    finished = {e.dagster_event.step_key
                for e in instance.all_logs(first.run_id, of_type=T.STEP_SUCCESS)}
    redone = {e.dagster_event.step_key
              for e in instance.all_logs(retry.run_id, of_type=T.STEP_START)}
    assert not finished & redone, (finished, redone)
    assert redone, "the retry ran no step"
    # no output is half-written: each reads whole (atomic writes leave at most a dot-named
    # temporary from the killed attempt), and the archives equal the source bit for bit
    manifest = json.loads((storage / "sources" / f"{KEY}.json").read_text())
    assert manifest["key"] == KEY
    from biosigio_pipeline.steps import Outputs
    from biosigio_pipeline.verify import diff_recordings

    out = Outputs(str(storage), KEY)
    src = Recording.from_file(sources / "retry" / "rec0000.edf")
    for url in (out.parquet, out.feather):
        # the archives carry the lineage the pipeline stamps (source key and checksum)
        assert diff_recordings(Recording.from_file(url), src,
                               ignore_metadata_keys=("source_checksum", "source_key")) == [], url
    instance.dispose()
