"""``biosigio-pipeline backfill-stores`` submits a real Dagster asset backfill: it is in the
instance's backfill list (PostgreSQL), the live daemon launches its store-only runs through the
queue, batched by the store's BackfillPolicy (fewer runs than partitions: one partition range
per run), and afterwards exactly the stores are rebuilt with the new serving parameters, each
with its own metadata and check evaluations. Then declarative automation: the daemon restarted
with other parameters submits the store backfill by itself (the store's code version changed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from .conftest import BIN, WORKSPACE, base_env, start_process, stop_process, tail

pytestmark = [pytest.mark.deploy]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
ASSETS = ("source_recording", "recording", "parquet_archive", "feather_archive", "zarr_store")


def _counts(instance) -> dict[str, int]:
    import dagster as dg

    return {a: len(instance.fetch_materializations(dg.AssetKey(a), limit=1000).records)
            for a in ASSETS}


@pytest.mark.timeout(600)  # generous: 2 loaded cores can be several times slower
def test_backfill_stores_submits_a_dagster_backfill(tmp_path: Path, dagster_home: Path) -> None:
    import dagster as dg
    from dagster._core.events import DagsterEventType
    from dagster._core.execution.backfill import BulkActionStatus

    from biosigio_lib.samples import make_sample_dataset
    from biosigio_pipeline.definitions import build_defs
    from biosigio_pipeline.settings import load_serving_params
    from biosigio_pipeline.status import stale_stores

    t0 = time.monotonic()
    sources, storage = tmp_path / "sources", tmp_path / "storage"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_sample_dataset(sources, seconds_scale=0.1)
    shutil.rmtree(sources / "bids_demo")  # two recordings are enough: WFDB and XDF
    keys = ["wfdb_demo__ecg01", "xdf_demo__session01_xdf"]
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    instance.add_dynamic_partitions("recordings", keys)
    params_a = load_serving_params({})
    defs_a = build_defs(storage_root=str(storage), source_roots=[str(sources)],
                        serving_params=params_a)
    for key in keys:  # the first build, in process, with the default parameters
        assert defs_a.resolve_job_def("convert_recording").execute_in_process(
            partition_key=key, instance=instance, run_config=QUIET).success
    before = _counts(instance)

    new = {**params_a.to_dict(), "chunk_seconds": 2.0}
    params_b = load_serving_params(new)
    env = base_env(dagster_home, tmp_path, BIOSIGIO_SOURCE_ROOTS=str(sources),
                   BIOSIGIO_STORAGE_ROOT=str(storage), BIOSIGIO_SERVING_PARAMS=json.dumps(new),
                   BIOSIGIO_AUTOMATION_INTERVAL="2")
    cli = subprocess.run([str(BIN / "biosigio-pipeline"), "backfill-stores"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    (backfill,) = instance.get_backfills()
    assert f"backfill {backfill.backfill_id} submitted" in cli.stdout
    assert "up to 25 per run" in cli.stdout
    assert backfill.asset_selection == [dg.AssetKey("zarr_store")]
    assert _counts(instance) == before  # nothing ran yet: the daemon does it

    t_submitted = time.monotonic() - t0
    log = tmp_path / "daemon.log"
    daemon = start_process([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                           log=log, env=env, cwd=tmp_path)
    try:
        backfill = _wait_backfill(instance, backfill.backfill_id, daemon, log)
        _wait_automation_tick(instance, daemon, log)  # it notes the code version it saw
    finally:
        stop_process(daemon)
    print(f"\nbackfill submitted after {t_submitted:.1f} s, done after "
          f"{time.monotonic() - t0:.1f} s")
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, (backfill.status, tail(log))
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    (run,) = runs  # one batched run for both partitions (BackfillPolicy.multi_run)
    assert len(runs) < len(keys)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert (run.tags["dagster/asset_partition_range_start"],
            run.tags["dagster/asset_partition_range_end"]) == (keys[0], keys[-1])
    assert "dagster/partition" not in run.tags
    for key in keys:  # each partition: its own store, metadata and check evaluations
        (rec,) = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("zarr_store"), asset_partitions=[key]), limit=1).records
        assert rec.event_log_entry.run_id == run.run_id
        meta = rec.asset_materialization.metadata
        assert str(meta["uri"].value) == str(storage / "serving" / f"{key}.zarr")
        assert meta["params_version"].value == params_b.version()
    evals = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    assert sorted((e.dagster_event.event_specific_data.check_name,
                   e.dagster_event.event_specific_data.partition,
                   e.dagster_event.event_specific_data.passed) for e in evals) == sorted(
        (c, k, True) for c in ("store_complete", "store_level0_within_bound") for k in keys)
    after = _counts(instance)
    assert after["zarr_store"] == before["zarr_store"] + len(keys)
    assert {a: after[a] for a in ASSETS[:-1]} == {a: before[a] for a in ASSETS[:-1]}
    assert stale_stores(instance, params_b.version(), keys) == []

    # declarative automation: the deployment gets other params; the daemon's automation
    # sensor sees the store's code version change and submits the backfill by itself
    newer = {**new, "chunk_seconds": 4.0}
    params_c = load_serving_params(newer)
    env["BIOSIGIO_SERVING_PARAMS"] = json.dumps(newer)
    t_restart = time.monotonic()
    daemon = start_process([str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                           log=log, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while len(instance.get_backfills()) < 2:
            assert daemon.poll() is None, tail(log)
            assert time.monotonic() < deadline, f"no automation backfill\n{tail(log)}"
            time.sleep(1)
        auto = next(b for b in instance.get_backfills() if b.backfill_id != backfill.backfill_id)
        auto = _wait_backfill(instance, auto.backfill_id, daemon, log)
    finally:
        stop_process(daemon)
    print(f"automation backfill done {time.monotonic() - t_restart:.1f} s after the restart")
    assert auto.status == BulkActionStatus.COMPLETED_SUCCESS, (auto.status, tail(log))
    assert auto.asset_selection == [dg.AssetKey("zarr_store")]
    (run,) = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": auto.backfill_id}))
    assert run.status == dg.DagsterRunStatus.SUCCESS and "dagster/partition" not in run.tags
    assert stale_stores(instance, params_c.version(), keys) == []
    final = _counts(instance)
    assert final["zarr_store"] == after["zarr_store"] + len(keys)
    assert {a: final[a] for a in ASSETS[:-1]} == {a: before[a] for a in ASSETS[:-1]}
    instance.dispose()


def _wait_backfill(instance, backfill_id: str, daemon, log: Path, timeout: float = 400):
    """The backfill once it is no longer requested (the daemon must stay up)."""
    from dagster._core.execution.backfill import BulkActionStatus

    deadline = time.monotonic() + timeout
    while True:
        backfill = instance.get_backfill(backfill_id)
        if backfill.status not in (BulkActionStatus.REQUESTED,):
            return backfill
        assert daemon.poll() is None, tail(log)
        assert time.monotonic() < deadline, f"backfill {backfill.status}\n{tail(log)}"
        time.sleep(1)


def _wait_automation_tick(instance, daemon, log: Path, timeout: float = 120) -> None:
    """Until the store's automation sensor has finished a tick."""
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    from biosigio_pipeline.defs.automation import AUTOMATION_SENSOR

    deadline = time.monotonic() + timeout
    while True:
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name != AUTOMATION_SENSOR:
                continue
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5)
            if any(t.status in (TickStatus.SUCCESS, TickStatus.SKIPPED) for t in ticks):
                return
        assert daemon.poll() is None, tail(log)
        assert time.monotonic() < deadline, f"no automation tick\n{tail(log)}"
        time.sleep(1)
