"""The load test of issue 10: many small recordings through the whole deployment, for real.

PostgreSQL, Redis, the moto S3 server, a live ``dagster-daemon`` (sensor, run queue) and 2
Celery workers are started on loopback. ``$BIOSIGIO_LOAD_RECORDINGS`` (200 by default) tiny
EDF files (2 channels x 10 s) are uploaded to ``s3://<bucket>/sources``; the sensor discovers
them all and requests runs over batches of up to ``$BIOSIGIO_BACKFILL_BATCH`` (25) of them,
the queue launches them, every step runs on a worker, and every run must succeed with all 4
checks of every recording passing. The test prints (``-s``) and writes
``load_summary.json`` / ``load_summary.md`` in its temporary folder: recordings per minute and
where a run's time goes (run worker start, step time, the rest = per-run overhead). Every
process is stopped by its PID. Marker ``load`` (left out of the default run; docs/deploy.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import (
    BIN,
    WORKSPACE,
    Postgres,
    start_celery_worker,
    start_process,
    start_sensor,
    stop_process,
    tail,
    wait_celery_ready,
    write_dagster_yaml,
)
from .test_celery import s3_env

pytestmark = [pytest.mark.deploy, pytest.mark.load]
N = int(os.environ.get("BIOSIGIO_LOAD_RECORDINGS") or 200)
#: Runs at once (as deploy/dagster.yaml ships): keeps the 2 workers fed while runs start.
MAX_RUNS = int(os.environ.get("BIOSIGIO_LOAD_MAX_RUNS") or 4)
#: Recordings per run (the sensor's batches): the default of the deployment.
BATCH = int(os.environ.get("BIOSIGIO_BACKFILL_BATCH") or 25)
CHECKS = ["feather_round_trip", "parquet_round_trip", "store_complete",
          "store_level0_within_bound"]


def write_tiny_edfs(folder: Path, n: int, seconds: int = 10, rate: int = 128) -> list[Path]:
    """``n`` distinct EDF+ files of 2 channels x ``seconds`` s (pyedflib's writer)."""
    pyedflib = pytest.importorskip("pyedflib")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(10)
    t = np.arange(rate * seconds) / rate
    paths = []
    for i in range(n):
        path = folder / f"rec{i:04d}.edf"
        data = [50.0 * np.sin(2 * np.pi * (5 + i % 7) * t) + rng.standard_normal(t.size),
                rng.standard_normal(t.size).cumsum()]
        w = pyedflib.EdfWriter(str(path), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
        try:
            w.setSignalHeaders([
                {"label": lab, "dimension": "uV", "sample_frequency": rate,
                 "physical_max": float(np.ceil(np.abs(d).max() + 1)),
                 "physical_min": -float(np.ceil(np.abs(d).max() + 1)),
                 "digital_max": 32767, "digital_min": -32768, "transducer": "",
                 "prefilter": ""} for lab, d in zip(("C3", "C4"), data, strict=True)])
            w.writeSamples([np.ascontiguousarray(d) for d in data])
            w.writeAnnotation(1.0, 0.5, f"marker {i}")
        finally:
            w.close()
        paths.append(path)
    return paths


def _union(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``spans``."""
    total, end = 0.0, -np.inf
    for s, e in sorted(spans):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def run_figures(instance, record) -> dict[str, Any]:
    """One run's timings and check results: ``launch`` (RUN_STARTING: the launcher starts the
    run worker), ``start`` and ``end`` (the run record: the run worker has loaded the code /
    the run ended), and the steps' spans (STEP_START to STEP_SUCCESS, in the workers)."""
    import dagster as dg

    T = dg.DagsterEventType
    run_id = record.dagster_run.run_id
    launch = record.create_timestamp.timestamp()
    starts: dict[str, float] = {}
    spans = []
    checks = {}
    for e in instance.all_logs(run_id):
        ev = e.dagster_event
        if ev is None:
            continue
        if ev.event_type == T.RUN_STARTING:
            launch = e.timestamp
        elif ev.event_type == T.STEP_START:
            starts[e.step_key] = e.timestamp
        elif ev.event_type == T.STEP_SUCCESS:
            spans.append((starts[e.step_key], e.timestamp))
        elif ev.event_type == T.ASSET_CHECK_EVALUATION:
            data = ev.event_specific_data
            checks[(data.check_name, data.partition)] = data.passed
    start = record.start_time or launch
    end = record.end_time or start
    busy = _union(spans)
    return {"launch": launch, "start": start, "end": end, "steps": len(spans),
            "worker_start_s": start - launch, "run_s": end - launch,
            "first_step_after_start_s": min(s for s, _ in spans) - start if spans else 0.0,
            "step_busy_s": busy, "step_sum_s": sum(e - s for s, e in spans),
            "overhead_s": (end - launch) - busy, "checks": checks}


def run_partitions(instance, run) -> list[str]:
    """The recordings a run converts: its partition, or its range's (the instance's order)."""
    if "dagster/partition" in run.tags:
        return [run.tags["dagster/partition"]]
    order = instance.get_dynamic_partitions("recordings")
    start = order.index(run.tags["dagster/asset_partition_range_start"])
    return order[start:order.index(run.tags["dagster/asset_partition_range_end"]) + 1]


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


@pytest.mark.timeout(300 + 60 * N)  # generous: 2 loaded cores can be several times slower
def test_load_recordings_through_sensor_queue_and_workers(tmp_path: Path,
                                                          postgres_server: Postgres,
                                                          redis_server: str, s3_server) -> None:
    import dagster as dg
    import fsspec

    pytest.importorskip("dagster_celery", reason="dagster-celery is not installed (uv sync)")
    t0 = time.monotonic()
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home, postgres_server, postgres_server.create_database(),
                       max_runs=MAX_RUNS)
    local = tmp_path / "local_sources" / "load"
    write_tiny_edfs(local, N)
    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    fs.put(str(local.parent) + "/", s3_server.url("sources") + "/", recursive=True)
    env = s3_env(s3_server, redis_server, home, tmp_path)
    env["BIOSIGIO_SENSOR_INTERVAL"] = "1"
    t_upload = time.monotonic() - t0

    work = tmp_path / "daemon_cwd"
    work.mkdir()
    workers = [start_celery_worker(f"w{i}", env["BIOSIGIO_CELERY_BROKER"],
                                   env["BIOSIGIO_CELERY_BACKEND"], env=env,
                                   folder=tmp_path / f"worker{i}") for i in (1, 2)]
    log = tmp_path / "daemon.log"
    daemon = None
    instance = dg.DagsterInstance.from_config(str(home))
    S = dg.DagsterRunStatus
    finished = {S.SUCCESS, S.FAILURE, S.CANCELED}
    try:
        start_sensor(env, work, timeout=120)
        wait_celery_ready(workers)
        t_go, wall_go = time.monotonic(), time.time()
        daemon = start_process([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                               log=log, env=env, cwd=work)
        t_discovered = None
        deadline = time.monotonic() + 240 + 50 * N
        while True:
            assert daemon.poll() is None, f"daemon exited:\n{tail(log)}"
            if t_discovered is None and len(instance.get_dynamic_partitions("recordings")) >= N:
                t_discovered = time.monotonic() - t_go
            records = instance.get_run_records()
            done = [r for r in records if r.dagster_run.status in finished]
            covered = {k for r in done for k in run_partitions(instance, r.dagster_run)}
            if len(covered) >= N and len(done) == len(records):
                break
            assert time.monotonic() < deadline, (
                f"{len(covered)}/{N} recordings in {len(done)} finished runs, "
                f"{len(records)} requested\n{tail(log)}")
            time.sleep(2)
        t_all = time.monotonic() - t_go
    finally:
        if daemon is not None:
            stop_process(daemon)
        for proc, _ in workers:
            stop_process(proc)
    for proc in [daemon] + [p for p, _ in workers]:
        assert proc is not None and proc.poll() is not None  # every process we started is gone

    partitions = instance.get_dynamic_partitions("recordings")
    assert sorted(partitions) == sorted(f"load__rec{i:04d}_edf" for i in range(N))
    records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
    runs = {rid: r.dagster_run for rid, r in records.items()}
    covered = [k for run in runs.values() for k in run_partitions(instance, run)]
    assert sorted(covered) == sorted(partitions)  # each recording in one run: none doubled
    assert len(runs) <= 2 * -(-N // BATCH)  # batched: about N / batch runs
    figures = {rid: run_figures(instance, rec) for rid, rec in records.items()}
    failed = {rid: runs[rid].status.value for rid in runs if runs[rid].status != S.SUCCESS}
    assert not failed, failed
    for rid, f in figures.items():
        keys = run_partitions(instance, runs[rid])
        assert sorted(f["checks"]) == sorted((c, k) for c in CHECKS for k in keys), rid
        assert all(f["checks"].values()), (rid, f["checks"])
        assert f["steps"] == 8, (rid, f)  # 5 assets + 3 check steps, each on a worker
    for key in partitions[:: max(1, N // 10)]:  # a sample of the outputs is in the bucket
        for part in (f"serving/{key}.zarr/zarr.json", f"archive/feather/{key}.arrow"):
            assert fs.exists(s3_server.url("storage", part)), part

    f = list(figures.values())
    first = min(x["launch"] for x in f)
    last = max(x["end"] for x in f)
    summary = {
        "recordings": N, "runs": len(runs), "max_concurrent_runs": MAX_RUNS,
        "celery_workers": 2,
        "load_average": list(os.getloadavg()),
        "upload_s": round(t_upload, 1),
        "sensor_discovered_all_s": round(t_discovered or float("nan"), 1),
        "all_runs_done_s": round(t_all, 1),
        "recordings_per_min": round(60 * N / t_all, 2),
        "recordings_per_min_first_launch_to_last_end": round(60 * N / (last - first), 2),
        "first_launch_after_daemon_start_s": round(first - wall_go, 1),
        "median_run_s": round(_median([x["run_s"] for x in f]), 2),
        "median_worker_start_s": round(_median([x["worker_start_s"] for x in f]), 2),
        "median_first_step_after_start_s": round(
            _median([x["first_step_after_start_s"] for x in f]), 2),
        "median_step_busy_s": round(_median([x["step_busy_s"] for x in f]), 2),
        "median_step_sum_s": round(_median([x["step_sum_s"] for x in f]), 2),
        "median_overhead_s": round(_median([x["overhead_s"] for x in f]), 2),
        "overhead_per_recording_s": round(sum(x["overhead_s"] for x in f) / N, 2),
        "total_test_s": round(time.monotonic() - t0, 1),
    }
    (tmp_path / "load_summary.json").write_text(json.dumps(summary, indent=2))
    table = "\n".join(f"| {k} | {v} |" for k, v in summary.items())
    (tmp_path / "load_summary.md").write_text(f"| figure | value |\n|---|---|\n{table}\n")
    print(f"\nload test summary ({tmp_path / 'load_summary.json'}):\n"
          + json.dumps(summary, indent=2))
    instance.dispose()
