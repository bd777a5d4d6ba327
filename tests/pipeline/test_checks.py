"""The checks fail on tampered outputs and say what is wrong (the evidence in metadata)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_pipeline.definitions import build_defs
from biosigio_pipeline.defs import checks
from biosigio_pipeline.steps import read_canonical

from .conftest import requires_serving

pytestmark = requires_serving
KEY = "xdf_demo__session01_xdf"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@pytest.fixture
def done(sample_root: Path, tmp_path: Path) -> SimpleNamespace:
    defs = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(sample_root)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recordings", [KEY])
    res = defs.resolve_job_def("convert_recording").execute_in_process(
        partition_key=KEY, instance=instance, run_config=QUIET)
    assert res.success and all(e.passed for e in res.get_asset_check_evaluations())
    mats = [e.event_specific_data.materialization for e in res.get_asset_materialization_events()]
    uris = {m.asset_key.to_user_string(): m.metadata["uri"].value
            for m in mats if "uri" in m.metadata}
    uris["recording"] = str(tmp_path / "out" / "canonical" / f"{KEY}.json")
    return SimpleNamespace(defs=defs, instance=instance, uris=uris)


def _run_check(d: SimpleNamespace, asset: str, name: str) -> dg.AssetCheckResult:
    """The check's evidence function on the current outputs (a checks-only partitioned run is
    not something Dagster's in-process executor can plan)."""
    rec = read_canonical(d.uris["recording"])
    fn = {"parquet_round_trip": checks.round_trip_result,
          "store_level0_within_bound": checks.level0_result,
          "store_complete": checks.complete_result}[name]
    return fn(d.uris[asset], rec)


def test_round_trip_check_reports_the_changed_sample(done: SimpleNamespace) -> None:
    uri = done.uris["parquet_archive"]
    rec = Recording.from_file(uri)
    label = rec.labels[1]
    rec.channel_data(label)[3] += 1.0
    rec.to_parquet(uri, overwrite=True)
    ev = _run_check(done, "parquet_archive", "parquet_round_trip")
    assert not ev.passed
    problems = ev.metadata["problems"].value
    assert any(p.startswith(f"{label}: 1 of ") and "first at index 3" in p for p in problems)


def test_level0_check_reports_the_failing_channel(done: SimpleNamespace) -> None:
    import zarr

    root = zarr.open_group(done.uris["zarr_store"], mode="r+")
    group = next(n for n in root.group_keys() if n != "events")
    a0 = root[f"{group}/0"]
    vals = a0[0, :20]
    a0[0, :20] = vals + (np.int16(500) if vals.dtype.kind == "i" else 500.0)
    ev = _run_check(done, "zarr_store", "store_level0_within_bound")
    assert not ev.passed
    failing = ev.metadata["failing"].value
    bad = next(r for r in failing if r["group"] == group)
    assert bad["failing_channels"] and bad["worst_abs_diff"] > bad["worst_bound"]


def test_completeness_check_reports_missing_events(done: SimpleNamespace) -> None:
    shutil.rmtree(Path(done.uris["zarr_store"]) / "events")
    ev = _run_check(done, "zarr_store", "store_complete")
    assert not ev.passed
    assert ev.metadata["missing_events"].value > 0
    assert ev.metadata["missing_channels"].value == []


def test_unreadable_store_fails_the_check_not_the_run(done: SimpleNamespace) -> None:
    shutil.rmtree(done.uris["zarr_store"])
    ev = _run_check(done, "zarr_store", "store_complete")
    assert not ev.passed and "error" in ev.metadata
