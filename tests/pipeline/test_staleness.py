"""New serving parameters change the store's code_version: every store (and only the stores)
turns stale, the nightly schedule asks for store-only runs, and the backfill rebuilds exactly
the stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from biosigio_lib.serving import ServingParams
from biosigio_pipeline.backfill import backfill_stores
from biosigio_pipeline.definitions import build_defs
from biosigio_pipeline.status import latest_tags, stale_stores

from .conftest import requires_serving

pytestmark = requires_serving
KEYS = ["wfdb_demo__ecg01", "xdf_demo__session01_xdf"]
ASSETS = ["source_recording", "recording", "parquet_archive", "feather_archive", "zarr_store"]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _counts(instance: dg.DagsterInstance) -> dict[str, int]:
    return {a: len(instance.fetch_materializations(dg.AssetKey(a), limit=100).records)
            for a in ASSETS}


def _schedule_requests(defs: dg.Definitions, instance: dg.DagsterInstance) -> list:
    (sched,) = defs.schedules
    ctx = dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                    scheduled_execution_time=dt.datetime(2026, 1, 2, 2, 0))
    return list(sched.evaluate_tick(ctx).run_requests or [])


@pytest.fixture
def first_build(sample_root: Path, tmp_path: Path, instance: dg.DagsterInstance):
    params = ServingParams()
    defs = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(sample_root)],
                      serving_params=params)
    instance.add_dynamic_partitions("recordings", [*KEYS, "bids_demo__sub-02_task-rest_eeg"])
    job = defs.resolve_job_def("convert_recording")
    for key in KEYS:
        assert job.execute_in_process(partition_key=key, instance=instance,
                                      run_config=QUIET).success
    return defs, params


def test_schedule_requests_what_is_missing(first_build, instance: dg.DagsterInstance) -> None:
    defs, params = first_build
    reqs = _schedule_requests(defs, instance)
    assert [(r.partition_key, r.asset_selection) for r in reqs] == [
        ("bids_demo__sub-02_task-rest_eeg", None)]
    assert stale_stores(instance, params.version(), KEYS) == []


def test_new_params_make_only_stores_stale_and_backfill_rebuilds_them(
        first_build, instance: dg.DagsterInstance, sample_root: Path, tmp_path: Path) -> None:
    _, params_a = first_build
    params_b = ServingParams.from_dict({**params_a.to_dict(), "chunk_seconds": 2.0})
    assert params_b.version() != params_a.version()
    defs_b = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(sample_root)],
                        serving_params=params_b)

    # Dagster's own staleness view agrees: stores stale (code version), archives fresh
    resolver = get_stale_status_resolver(instance, list(defs_b.assets))
    for key in KEYS:
        assert resolver.get_status(dg.AssetKey("zarr_store"), key) == StaleStatus.STALE
        causes = resolver.get_stale_causes(dg.AssetKey("zarr_store"), key)
        assert any("code version" in c.reason for c in causes)
        for a in ("parquet_archive", "feather_archive", "recording"):
            assert resolver.get_status(dg.AssetKey(a), key) == StaleStatus.FRESH
    assert stale_stores(instance, params_b.version(), KEYS) == KEYS

    # the nightly schedule asks for store-only runs for them
    reqs = {r.partition_key: r for r in _schedule_requests(defs_b, instance)}
    for key in KEYS:
        assert reqs[key].asset_selection == [dg.AssetKey("zarr_store")]

    # the backfill rebuilds exactly the stores
    before = _counts(instance)
    assert backfill_stores(defs_b, instance, params_b.version(), dry_run=True) == dict.fromkeys(
        KEYS, True)
    assert _counts(instance) == before
    done = backfill_stores(defs_b, instance, params_b.version())
    assert done == dict.fromkeys(KEYS, True)
    after = _counts(instance)
    assert after["zarr_store"] == before["zarr_store"] + len(KEYS)
    assert {a: after[a] for a in ASSETS[:-1]} == {a: before[a] for a in ASSETS[:-1]}
    tags = latest_tags(instance, "zarr_store", KEYS)
    assert {tags[k]["dagster/code_version"] for k in KEYS} == {params_b.version()}
    assert stale_stores(instance, params_b.version(), KEYS) == []
    resolver = get_stale_status_resolver(instance, list(defs_b.assets))
    assert resolver.get_status(dg.AssetKey("zarr_store"), KEYS[0]) == StaleStatus.FRESH
    # the store checks ran with the rebuild
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("zarr_store"), "store_complete"), limit=10)
    assert len(checks) == 2 * len(KEYS)
    # and the stores were written with the new parameters
    import zarr

    rec = instance.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey("zarr_store"), asset_partitions=[KEYS[0]]), limit=1)
    url = rec.records[0].asset_materialization.metadata["uri"].value
    assert zarr.open_group(url, mode="r").attrs["serving_params"]["chunk_seconds"] == 2.0


def test_latest_records_finds_old_partitions_past_small_pages() -> None:
    """The first page is as long as the partitions asked for; older materializations are
    still found (pages double), and each partition gets its latest one."""
    from biosigio_pipeline.status import latest_records

    with dg.DagsterInstance.ephemeral() as inst:
        def mat(key: str, n: int) -> None:
            inst.report_runless_asset_event(dg.AssetMaterialization(
                "zarr_store", partition=key, metadata={"n": n}))

        mat("old", 0)
        for i in range(40):  # newer materializations of other partitions
            mat(f"p{i % 5}", i)
        mat("p0", 99)
        got = latest_records(inst, "zarr_store", ["old", "p0", "p3"])
        assert set(got) == {"old", "p0", "p3"}
        meta = {k: r.asset_materialization.metadata["n"].value for k, r in got.items()}
        assert meta == {"old": 0, "p0": 99, "p3": 38}
        assert set(latest_records(inst, "zarr_store")) == {"old", *(f"p{i}" for i in range(5))}
