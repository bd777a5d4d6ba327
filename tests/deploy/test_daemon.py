"""The Dagster daemon on a PostgreSQL instance with the queued run coordinator, for real.

The sensor runs under a live ``dagster-daemon``: it finds the recordings dropped into a source
root, registers their partitions and requests their runs; the queue starts at most 2 runs at
once and at most 1 heavy one; every run converts its recording with every check passing. A
recording dropped later is found by a later tick. Every process is stopped by its PID.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .conftest import (
    BIN,
    HEAVY_LIMIT,
    MAX_RUNS,
    WORKSPACE,
    base_env,
    start_process,
    start_sensor,
    stop_process,
    tail,
)

pytestmark = [pytest.mark.deploy]


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    return max((sum(1 for s, e in spans if s <= t < e) for t, _ in spans), default=0)


def _finished() -> frozenset:
    import dagster as dg

    S = dg.DagsterRunStatus
    return frozenset({S.SUCCESS, S.FAILURE, S.CANCELED})


def run_summary(instance, run_ids: list[str] | None = None) -> dict[str, dict]:
    """Run id -> status, partition, tags, start/end, check results, enqueued or not."""
    import dagster as dg

    out = {}
    for rec in instance.get_run_records():
        run = rec.dagster_run
        if run_ids is not None and run.run_id not in run_ids:
            continue
        checks = [e.dagster_event.event_specific_data.passed for e in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
        enqueued = bool(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED))
        out[run.run_id] = {"status": run.status, "partition": run.tags.get("dagster/partition"),
                           "tags": run.tags, "start": rec.start_time, "end": rec.end_time,
                           "checks": checks, "enqueued": enqueued}
    return out


@pytest.mark.timeout(600)  # generous: 2 loaded cores can be several times slower
def test_daemon_sensor_queue_and_runs(tmp_path: Path, dagster_home: Path) -> None:
    import dagster as dg

    from biosigio_lib.discovery import discover
    from biosigio_lib.samples import make_sample_dataset

    FINISHED = _finished()
    t0, t0_wall = time.monotonic(), time.time()
    sources, storage = tmp_path / "sources", tmp_path / "storage"
    make_sample_dataset(sources, seconds_scale=0.1)  # 3 EDF+ (BIDS), 1 WFDB, 1 XDF
    found = discover(sources, checksums=False).sources
    heavy = min(s.size for s in found if s.format == "bids")  # BIDS EEG and XDF are "heavy"
    env = base_env(dagster_home, tmp_path, BIOSIGIO_SOURCE_ROOTS=str(sources),
                   BIOSIGIO_STORAGE_ROOT=str(storage), BIOSIGIO_SENSOR_INTERVAL="2",
                   BIOSIGIO_HEAVY_BYTES=str(heavy))
    work = tmp_path / "daemon_cwd"  # not the repository: the workspace file says where code is
    work.mkdir()
    log = tmp_path / "daemon.log"
    start_sensor(env, work, timeout=90)
    t_sensor = time.monotonic() - t0
    daemon = start_process([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                           log=log, env=env, cwd=work)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        def wait_runs(n: int, timeout: float) -> dict[str, dict]:
            deadline = time.monotonic() + timeout
            while True:
                runs = run_summary(instance)
                if len(runs) >= n and all(r["status"] in FINISHED for r in runs.values()):
                    return runs
                assert daemon.poll() is None, f"daemon exited:\n{tail(log)}"
                states = [(r["partition"], r["status"].value) for r in runs.values()]
                assert time.monotonic() < deadline, f"{len(runs)}/{n} runs: {states}\n{tail(log)}"
                time.sleep(1)

        first = wait_runs(len(found), 400)
        t_first = time.monotonic() - t0
        # a recording dropped while the daemon runs is found by a later tick
        drop = sources / "late" / "extra.edf"
        drop.parent.mkdir()
        shutil.copy(next(s.url for s in found if s.format == "bids"), drop)
        runs = wait_runs(len(found) + 1, 240)
    finally:
        stop_process(daemon)
    print(f"\nsensor started after {t_sensor:.1f} s; first {len(found)} runs done after "
          f"{t_first:.1f} s, all after {time.monotonic() - t0:.1f} s")
    for r in sorted(runs.values(), key=lambda r: r["start"]):
        print(f"  {r['partition']:40s} {r['tags'].get('biosigio/weight')} "
              f"{r['start'] - t0_wall:6.1f} .. {r['end'] - t0_wall:6.1f}")

    assert sorted(r["partition"] for r in first.values()) == sorted(s.key for s in found)
    assert sorted(r["partition"] for r in runs.values()) == sorted(
        [s.key for s in found] + ["late__extra_edf"])
    assert sorted(instance.get_dynamic_partitions("recordings")) == sorted(
        r["partition"] for r in runs.values())
    for r in runs.values():
        assert r["status"] == dg.DagsterRunStatus.SUCCESS, r
        assert r["enqueued"], r  # through the queue, not started directly
        assert r["checks"] == [True] * 4, r
    spans = [(r["start"], r["end"]) for r in runs.values()]
    heavy_spans = [(r["start"], r["end"]) for r in runs.values()
                   if r["tags"].get("biosigio/weight") == "heavy"]
    assert len(heavy_spans) >= 4  # so the limit of 1 has something to hold back
    assert _max_overlap(spans) <= MAX_RUNS
    assert _max_overlap(heavy_spans) <= HEAVY_LIMIT
    for s in found:
        assert (storage / "serving" / f"{s.key}.zarr").is_dir()
        assert (storage / "archive" / "feather" / f"{s.key}.arrow").exists()
    instance.dispose()
