"""A partition run on the Celery executor, for real: Redis as broker and result backend,
2 Celery workers started in their own working folders, sources and outputs on ``s3://`` of
the loopback S3 server (moto), the instance on PostgreSQL. Every step runs in a worker; the
run succeeds with every check passing. Every process is stopped by its PID."""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from .conftest import (
    BIN,
    base_env,
    start_celery_worker,
    stop_process,
    tail,
    wait_celery_ready,
)

pytestmark = [pytest.mark.deploy]
KEY = "bids_demo__sub-01_task-rest_eeg"


def s3_env(s3_server, redis_url: str, home: Path, project: Path) -> dict[str, str]:
    """The environment of every process: where sources and outputs are, how to reach S3
    (credentials as the usual AWS variables, the endpoint as storage options) and Celery."""
    opts = json.dumps({"client_kwargs": s3_server.storage_options["client_kwargs"]})
    return base_env(home, project, BIOSIGIO_SOURCE_ROOTS=s3_server.url("sources"),
                    BIOSIGIO_STORAGE_ROOT=s3_server.url("storage"),
                    BIOSIGIO_SOURCE_OPTIONS=opts, BIOSIGIO_STORAGE_OPTIONS=opts,
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                    AWS_DEFAULT_REGION="us-east-1", BIOSIGIO_EXECUTOR="celery",
                    BIOSIGIO_CELERY_BROKER=f"{redis_url}/0",
                    BIOSIGIO_CELERY_BACKEND=f"{redis_url}/1")


def upload_samples(s3_server, folder: Path) -> None:
    """The sample dataset, written locally and put under ``s3://<bucket>/sources``."""
    import fsspec

    from biosigio_lib.samples import make_sample_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_sample_dataset(folder, seconds_scale=0.1)
    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    fs.put(str(folder) + "/", s3_server.url("sources") + "/", recursive=True)


def step_workers(instance, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker that executed it (from the run's engine events)."""
    import dagster as dg

    out = {}
    for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        md = e.dagster_event.event_specific_data.metadata or {}
        if "Celery worker" in md and e.step_key:
            out[e.step_key] = md["Celery worker"].value
    return out


@pytest.mark.timeout(600)  # generous: 2 loaded cores can be several times slower
def test_partition_run_on_celery_workers(tmp_path: Path, dagster_home: Path, redis_server: str,
                                         s3_server) -> None:
    import dagster as dg
    import fsspec

    pytest.importorskip("dagster_celery", reason="dagster-celery is not installed (uv sync)")
    t0 = time.monotonic()
    upload_samples(s3_server, tmp_path / "local_sources")
    env = s3_env(s3_server, redis_server, dagster_home, tmp_path)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    instance.add_dynamic_partitions("recordings", [KEY])
    workers = [start_celery_worker(f"w{i}", env["BIOSIGIO_CELERY_BROKER"],
                                   env["BIOSIGIO_CELERY_BACKEND"], env=env,
                                   folder=tmp_path / f"worker{i}") for i in (1, 2)]
    try:
        wait_celery_ready(workers)
        t_ready = time.monotonic() - t0
        cwd = tmp_path / "launcher"
        cwd.mkdir()
        res = subprocess.run(
            [str(BIN / "dagster"), "job", "execute", "-m", "biosigio_pipeline.definitions",
             "-j", "convert_recording", "--tags", json.dumps({"dagster/partition": KEY})],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=400)
    finally:
        for proc, _ in workers:
            stop_process(proc)
    logs = "\n".join(tail(log) for _, log in workers)
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}\n{logs}"
    print(f"\nworkers ready after {t_ready:.1f} s, run done after {time.monotonic() - t0:.1f} s")

    (rec,) = instance.get_run_records()
    run = rec.dagster_run
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == KEY
    checks = [e.dagster_event.event_specific_data for e in instance.all_logs(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert sorted(c.check_name for c in checks) == sorted(
        ["parquet_round_trip", "feather_round_trip", "store_level0_within_bound",
         "store_complete"])
    assert all(c.passed for c in checks), checks
    placed = step_workers(instance, run.run_id)
    print("steps on workers:", placed)
    assert len(placed) == 8  # 5 assets + 3 check steps (the store's 2 checks in one), a task each
    assert {n.split("@")[0] for n in placed.values()} <= {"w1", "w2"}
    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    for part in (f"serving/{KEY}.zarr/zarr.json", f"archive/feather/{KEY}.arrow",
                 f"sources/{KEY}.json"):
        assert fs.exists(s3_server.url("storage", part)), part
    instance.dispose()


@pytest.mark.timeout(600)  # generous: 2 loaded cores can be several times slower
def test_killed_worker_step_runs_again(tmp_path: Path, dagster_home: Path, redis_server: str,
                                       s3_server) -> None:
    """SIGKILL the worker in the middle of a step: the step's task was not acknowledged
    (late acks), so Redis hands it to the other worker after the visibility timeout; the run
    succeeds, every check passes and every output is whole."""
    import os
    import signal

    import dagster as dg

    from .conftest import start_process

    pytest.importorskip("dagster_celery", reason="dagster-celery is not installed (uv sync)")
    t0 = time.monotonic()
    upload_samples(s3_server, tmp_path / "local_sources")
    env = s3_env(s3_server, redis_server, dagster_home, tmp_path)
    env["BIOSIGIO_CELERY_VISIBILITY_TIMEOUT"] = "6"
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    instance.add_dynamic_partitions("recordings", [KEY])
    names = {"w1": tmp_path / "worker1", "w2": tmp_path / "worker2"}
    workers = {n: start_celery_worker(n, env["BIOSIGIO_CELERY_BROKER"],
                                      env["BIOSIGIO_CELERY_BACKEND"], env=env, folder=f)
               for n, f in names.items()}
    launcher_log = tmp_path / "launcher.log"
    launcher = None
    victim = step = None
    try:
        wait_celery_ready(list(workers.values()))
        (tmp_path / "launcher").mkdir()
        launcher = start_process(
            [str(BIN / "dagster"), "job", "execute", "-m", "biosigio_pipeline.definitions",
             "-j", "convert_recording", "--tags", json.dumps({"dagster/partition": KEY})],
            log=launcher_log, env=env, cwd=tmp_path / "launcher")
        deadline = time.monotonic() + 300
        while victim is None:  # the first step a worker starts: kill that worker at once
            assert launcher.poll() is None, tail(launcher_log)
            assert time.monotonic() < deadline, tail(launcher_log)
            records = instance.get_run_records()
            placed = step_workers(instance, records[0].dagster_run.run_id) if records else {}
            if placed:
                step, worker = next(iter(placed.items()))
                victim = worker.split("@")[0]
                os.kill(workers[victim][0].pid, signal.SIGKILL)
            else:
                time.sleep(0.05)
        rc = launcher.wait(180)
    finally:
        if launcher is not None:
            stop_process(launcher)
        for proc, _ in workers.values():
            stop_process(proc)
    logs = "\n".join(tail(log) for _, log in workers.values())
    assert rc == 0, f"{tail(launcher_log)}\n{logs}"
    print(f"\nkilled {victim} in step {step}; run done after {time.monotonic() - t0:.1f} s")

    (rec,) = instance.get_run_records()
    run_id = rec.dagster_run.run_id
    assert rec.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    # the killed step ran again, on the other worker
    again = [e.dagster_event.event_specific_data.metadata["Celery worker"].value
             for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
             if e.step_key == step and "Celery worker" in
             (e.dagster_event.event_specific_data.metadata or {})]
    assert len(again) == 2 and again[1].split("@")[0] != victim, again
    checks = [e.dagster_event.event_specific_data for e in instance.all_logs(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert len(checks) == 4 and all(c.passed for c in checks), checks
    # the killed attempt left no half-written output: what it wrote reads whole, and the
    # other outputs are proven bit-exact by the checks (temporaries are dot-names beside them)
    import fsspec

    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    manifest = json.loads(fs.cat(s3_server.url("storage", "sources", f"{KEY}.json")))
    assert manifest["key"] == KEY
    instance.dispose()
