"""Batched backfill runs: one run over a range of partitions builds every store with its own
metadata, lineage and check evaluations; a failing partition does not lose the others."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.events import DagsterEventType

from biosigio_lib.serving import ServingParams
from biosigio_pipeline.backfill import backfill_stores, partition_batches
from biosigio_pipeline.definitions import build_defs
from biosigio_pipeline.status import CODE_VERSION_TAG, DATA_VERSION_TAG, stale_stores

from .conftest import requires_serving

pytestmark = requires_serving
KEYS = ["bids_demo__sub-01_task-rest_eeg", "wfdb_demo__ecg01", "xdf_demo__session01_xdf"]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
STORE = dg.AssetKey("zarr_store")
CHECKS = ("store_level0_within_bound", "store_complete")


def test_partition_batches_are_ranges_of_consecutive_selected_keys() -> None:
    keys = list("abcdefg")
    assert partition_batches(keys, list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"],
                                                           ["g"]]
    assert partition_batches(keys, list("abdefg"), 2) == [["a", "b"], ["d", "e"], ["f", "g"]]
    assert partition_batches(keys, ["g", "a"], 5) == [["a"], ["g"]]
    assert partition_batches(keys, [], 5) == []
    assert partition_batches(keys, list("abc"), 1) == [["a"], ["b"], ["c"]]


def _latest(instance: dg.DagsterInstance, key: str) -> dg.EventLogRecord:
    (rec,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=STORE, asset_partitions=[key]), limit=1).records
    return rec


@pytest.fixture
def stale(sample_root: Path, source_copy: Path, tmp_path: Path, instance: dg.DagsterInstance):
    """The three recordings built once (single-partition runs), then new serving params."""
    params_a = ServingParams()
    out = tmp_path / "out"
    defs_a = build_defs(storage_root=str(out), source_roots=[str(source_copy)],
                        serving_params=params_a)
    instance.add_dynamic_partitions("recordings", KEYS)
    job = defs_a.resolve_job_def("convert_recording")
    for key in KEYS:  # the sensor's and the UI's single-partition runs, as before
        res = job.execute_in_process(partition_key=key, instance=instance, run_config=QUIET)
        assert res.success
        (mat,) = res.asset_materializations_for_node("zarr_store")
        assert mat.partition == key and str(mat.metadata["uri"].value).endswith(f"{key}.zarr")
    params_b = ServingParams.from_dict({**params_a.to_dict(), "chunk_seconds": 2.0})
    defs_b = build_defs(storage_root=str(out), source_roots=[str(source_copy)],
                        serving_params=params_b, backfill_batch=3)
    assert stale_stores(instance, params_b.version(), KEYS) == KEYS
    return defs_b, params_b, out, source_copy


def test_one_run_builds_three_stores_with_their_own_metadata(
        stale, instance: dg.DagsterInstance) -> None:
    defs, params, out, _ = stale
    runs_before = len(instance.get_runs())
    done = backfill_stores(defs, instance, params.version(), batch_size=3)
    assert done == dict.fromkeys(KEYS, True)
    assert len(instance.get_runs()) == runs_before + 1  # one run, not one per partition
    (run,) = instance.get_runs(limit=1)
    assert run.tags["dagster/asset_partition_range_start"] == KEYS[0]
    assert run.tags["dagster/asset_partition_range_end"] == KEYS[-1]
    expected_source = {KEYS[0]: "sub-01_task-rest_eeg.edf", KEYS[1]: "ecg01.hea",
                       KEYS[2]: "session01.xdf"}
    for key in KEYS:
        rec = _latest(instance, key)
        assert rec.event_log_entry.run_id == run.run_id
        mat = rec.asset_materialization
        assert mat is not None and mat.partition == key
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["uri"] == str(out / "serving" / f"{key}.zarr")
        assert Path(str(meta["source_file"])).name == expected_source[key]
        assert meta["params_version"] == params.version()
        assert meta["preview_uri"] == str(out / "previews" / f"{key}.png")
        assert (mat.tags or {})[CODE_VERSION_TAG] == params.version()
        # each partition's check evaluations name it and point at its own materialization
        for name in CHECKS:
            (ev,) = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(STORE, name), limit=1,
                partition_filter=PartitionKeyFilter(key=key))
            evaluation = ev.event.dagster_event.event_specific_data
            assert ev.run_id == run.run_id and evaluation.partition == key
            assert evaluation.passed, evaluation.metadata
            assert evaluation.target_materialization_data.storage_id == rec.storage_id
    evaluations = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    assert sorted((e.dagster_event.event_specific_data.check_name,
                   e.dagster_event.event_specific_data.partition) for e in evaluations) == sorted(
        (name, key) for name in CHECKS for key in KEYS)  # none without a partition
    assert stale_stores(instance, params.version(), KEYS) == []


def test_a_failing_partition_keeps_the_others(stale, instance: dg.DagsterInstance) -> None:
    defs, params, _, sources = stale
    broken = KEYS[1]
    with open(sources / "wfdb_demo" / "ecg01.hea", "a") as fh:  # changed after `recording` read
        fh.write("# edited\n")
    st = os.stat(sources / "wfdb_demo" / "ecg01.hea")
    os.utime(sources / "wfdb_demo" / "ecg01.hea", (st.st_atime, st.st_mtime + 10))
    done = backfill_stores(defs, instance, params.version(), batch_size=3)
    assert done == {KEYS[0]: True, broken: False, KEYS[2]: True}
    (run,) = instance.get_runs(limit=1)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = [e for e in instance.all_logs(run.run_id)
               if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"]
    assert failure and broken in str(failure[0].dagster_event.event_specific_data.error)
    for key in (KEYS[0], KEYS[2]):  # recorded, with the versions Dagster would give them
        rec = _latest(instance, key)
        assert rec.event_log_entry.run_id == run.run_id
        tags = rec.asset_materialization.tags or {}
        assert tags[CODE_VERSION_TAG] == params.version() and tags[DATA_VERSION_TAG]
    assert _latest(instance, broken).event_log_entry.run_id != run.run_id
    assert stale_stores(instance, params.version(), KEYS) == [broken]


def test_batch_size_settings(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from biosigio_pipeline import settings
    from biosigio_pipeline.cli import main

    monkeypatch.delenv("BIOSIGIO_BACKFILL_BATCH", raising=False)
    assert settings.backfill_batch() == settings.DEFAULT_BACKFILL_BATCH == 25
    monkeypatch.setenv("BIOSIGIO_BACKFILL_BATCH", "40")
    assert settings.backfill_batch() == 40
    for bad in ("0", "many"):
        monkeypatch.setenv("BIOSIGIO_BACKFILL_BATCH", bad)
        with pytest.raises(ValueError, match="BIOSIGIO_BACKFILL_BATCH"):
            settings.backfill_batch()
    with pytest.raises(SystemExit) as exc:
        main(["backfill-stores", "--batch-size", "0"])
    assert exc.value.code == 2 and "at least 1" in capsys.readouterr().err
    defs = build_defs(storage_root="memory://x", source_roots=["memory://y"],
                      backfill_batch=7)
    for asset in ("source_recording", "recording", "parquet_archive", "feather_archive",
                  "zarr_store"):  # one policy for the whole chain: the job batches as a whole
        policy = defs.resolve_assets_def(asset).backfill_policy
        assert policy is not None and policy.max_partitions_per_run == 7, asset


# ------------------------------------------- the sensor's batches: the whole chain in one run
ALL = ["bids_demo__sub-01_task-motor_eeg", "bids_demo__sub-01_task-rest_eeg",
       "bids_demo__sub-02_task-rest_eeg", "wfdb_demo__ecg01", "xdf_demo__session01_xdf"]
ASSETS = ("source_recording", "recording", "parquet_archive", "feather_archive", "zarr_store")
ALL_CHECKS = {"parquet_round_trip", "feather_round_trip", "store_level0_within_bound",
              "store_complete"}


def _sensor_tick(defs: dg.Definitions, instance: dg.DagsterInstance,
                 cursor: str | None = None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("recordings_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources={"sources": defs.resources["sources"]}) as ctx:
        result = sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    for req in result.dynamic_partitions_requests or []:  # what the daemon does first
        instance.add_dynamic_partitions("recordings", list(req.partition_keys or []))
    return result


def _run(defs: dg.Definitions, instance: dg.DagsterInstance,
         req: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("convert_recording").execute_in_process(
        partition_key=req.partition_key, instance=instance, tags=dict(req.tags),
        run_config=QUIET, raise_on_error=False)


def test_a_sensor_batch_converts_every_recording_in_one_run(
        source_copy: Path, tmp_path: Path, instance: dg.DagsterInstance) -> None:
    from biosigio_lib.discovery import find_source

    out = tmp_path / "out"
    defs = build_defs(storage_root=str(out), source_roots=[str(source_copy)], backfill_batch=5)
    first = _sensor_tick(defs, instance)
    (req,) = first.run_requests
    res = _run(defs, instance, req)
    assert res.success
    (run,) = instance.get_runs()
    for asset in ASSETS:  # every partition, with its own metadata and lineage
        mats = {m.partition: m for m in res.asset_materializations_for_node(asset)}
        assert sorted(mats) == ALL, asset
        for key, mat in mats.items():
            checksum = find_source([str(source_copy)], key).checksum
            assert mat.metadata["source_checksum"].value == checksum, (asset, key)
    canon = {m.partition: m.metadata["canonical_uri"].value
             for m in res.asset_materializations_for_node("recording")}
    assert canon == {k: str(out / "canonical" / f"{k}.json") for k in ALL}
    evaluations = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    got = [(e.dagster_event.event_specific_data.check_name,
            e.dagster_event.event_specific_data.partition,
            e.dagster_event.event_specific_data.passed) for e in evaluations]
    assert sorted(got) == sorted((c, k, True) for c in ALL_CHECKS for k in ALL)
    # converted: a sensor starting over (no cursor) asks for nothing again
    assert _sensor_tick(defs, instance).run_requests == []


def _failure_event(res: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    (event,) = [e for e in res.all_events if e.event_type_value == "PIPELINE_FAILURE"]
    return event


def test_a_failed_batch_is_split_into_one_run_per_recording(
        source_copy: Path, tmp_path: Path, instance: dg.DagsterInstance) -> None:
    from biosigio_pipeline.defs.sensors import unbuilt_partitions

    bad = "xdf_demo__session01_xdf"
    xdf = source_copy / "xdf_demo" / "session01.xdf"
    xdf.write_bytes(xdf.read_bytes()[:200])  # truncated: its import fails
    defs = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(source_copy)],
                      backfill_batch=5)
    (req,) = _sensor_tick(defs, instance).run_requests
    res = _run(defs, instance, req)
    assert not res.success
    failure = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failure] == ["recording"] and bad in str(
        failure[0].event_specific_data.error)
    # the others' recording is recorded; nothing downstream ran, so all 5 are unbuilt
    assert sorted(m.partition for m in res.asset_materializations_for_node("recording")) == [
        k for k in ALL if k != bad]
    assert unbuilt_partitions(instance, res.run_id, ALL) == ALL

    split = defs.resolve_sensor_def("split_failed_batches")
    ctx = dg.build_run_status_sensor_context(
        sensor_name="split_failed_batches", dagster_event=_failure_event(res),
        dagster_instance=instance, dagster_run=res.dagster_run).for_run_failure()
    reqs = split(ctx)
    assert [r.partition_key for r in reqs] == ALL
    assert len({r.run_key for r in reqs}) == 5
    assert all(r.tags["biosigio/failed_batch_run"] == res.run_id for r in reqs)
    results = {r.partition_key: _run(defs, instance, r).success for r in reqs}
    assert results == {k: k != bad for k in ALL}  # the bad one fails alone
    for asset in ASSETS[1:]:  # the others are converted (every source was checksummed)
        got = instance.get_materialized_partitions(dg.AssetKey(asset))
        assert got == set(ALL) - {bad}, asset

    # no split for a batch that will be retried, nor for a run that is not a sensor batch
    retried = res.dagster_run.with_tags({**res.dagster_run.tags, "dagster/will_retry": "true"})
    for run in (retried, instance.get_runs(limit=1)[0]):
        ctx = dg.build_run_status_sensor_context(
            sensor_name="split_failed_batches", dagster_event=_failure_event(res),
            dagster_instance=instance, dagster_run=run).for_run_failure()
        assert split(ctx) is None  # (None: the daemon goes on to the next failed run)
    # a step failure does not retry the batch whole: it is split at once
    assert req.tags["dagster/retry_on_asset_or_op_failure"] == "false"


def test_a_batch_that_failed_at_an_archive_is_split_for_its_checks(
        source_copy: Path, tmp_path: Path, instance: dg.DagsterInstance, monkeypatch) -> None:
    """A batch whose Parquet step failed for one recording: the others' Parquet check never
    ran, so they are unbuilt too (each gets its own run), not only the failed one."""
    from biosigio_pipeline import steps
    from biosigio_pipeline.defs.sensors import unbuilt_partitions

    bad = "wfdb_demo__ecg01"
    real = steps.write_archive

    def archive(rec, url, container, *a, **k):  # type: ignore[no-untyped-def]
        if container == "parquet" and bad in url:
            raise OSError("disk full on purpose")
        return real(rec, url, container, *a, **k)

    monkeypatch.setattr(steps, "write_archive", archive)
    defs = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(source_copy)],
                      backfill_batch=5)
    (req,) = _sensor_tick(defs, instance).run_requests
    res = _run(defs, instance, req)
    assert not res.success
    assert sorted(m.partition for m in res.asset_materializations_for_node("zarr_store")) == ALL
    assert unbuilt_partitions(instance, res.run_id, ALL) == ALL  # parquet check: skipped


@pytest.mark.parametrize("ranged", [False, True])
def test_one_store_check_runs_alone(stale, instance: dg.DagsterInstance, ranged: bool) -> None:
    """The store's two checks share a step, but either can be selected without the other (an
    asset selection, a run request naming one check key)."""
    defs, _, _, _ = stale
    job = dg.define_asset_job("one_check", selection=(
        dg.AssetSelection.assets(STORE).without_checks()
        | dg.AssetSelection.checks(dg.AssetCheckKey(STORE, "store_complete"))))
    one = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job],
                         resources=defs.resources, executor=defs.executor)
    kw: dict = ({"tags": {"dagster/asset_partition_range_start": KEYS[0],
                          "dagster/asset_partition_range_end": KEYS[-1]}} if ranged
                else {"partition_key": KEYS[0]})
    res = one.resolve_job_def("one_check").execute_in_process(
        instance=instance, run_config=QUIET, **kw)
    assert res.success
    evaluations = instance.all_logs(res.run_id,
                                    of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    got = sorted((e.dagster_event.event_specific_data.check_name,
                  e.dagster_event.event_specific_data.partition,
                  e.dagster_event.event_specific_data.passed) for e in evaluations)
    assert got == [("store_complete", k, True) for k in (KEYS if ranged else KEYS[:1])]


def test_event_batch_size_is_set_unless_the_environment_sets_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from biosigio_pipeline import settings

    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    assert settings.batch_event_writes() == settings.EVENT_BATCH_SIZE
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == str(settings.EVENT_BATCH_SIZE)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", " ")  # blank: Dagster would fail on it
    assert settings.batch_event_writes() == settings.EVENT_BATCH_SIZE
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")  # the operator turned it off
    assert settings.batch_event_writes() == 0
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0"
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "many")
    with pytest.raises(ValueError, match="DAGSTER_EVENT_BATCH_SIZE"):
        settings.batch_event_writes()
