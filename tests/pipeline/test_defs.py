"""The code location loads (from workspace.yaml too) with the expected names and versions."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from biosigio_pipeline import settings
from biosigio_pipeline.definitions import build_defs

REPO = Path(__file__).resolve().parents[2]
ASSETS = {"source_recording", "recording", "parquet_archive", "feather_archive", "zarr_store"}
CHECKS = {("parquet_archive", "parquet_round_trip"), ("feather_archive", "feather_round_trip"),
          ("zarr_store", "store_level0_within_bound"), ("zarr_store", "store_complete")}


def _serving_params():  # the params class lives in biosigio_lib.serving
    return settings.load_serving_params()


def test_names_of_everything(tmp_path: Path) -> None:
    defs = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(tmp_path)])
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == CHECKS
    from biosigio_pipeline.defs.checks import CHECK_NAMES

    assert sorted(CHECK_NAMES) == sorted(name for _, name in CHECKS)
    assert {s.name for s in defs.sensors} == {"recordings_sensor", "split_failed_batches",
                                             "stale_store_automation"}
    assert {s.name for s in defs.schedules} == {"nightly_conversion"}
    assert defs.resolve_job_def("convert_recording").partitions_def.name == "recordings"
    assert defs.resolve_job_def("rebuild_stores") is not None
    # lineage: the graph edges
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
               for k in graph.get_all_asset_keys()}
    assert parents["recording"] == {"source_recording"}
    assert parents["zarr_store"] == parents["parquet_archive"] == {"recording"}


def test_store_code_version_is_the_params_hash(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BIOSIGIO_HOME", str(tmp_path))
    monkeypatch.delenv("BIOSIGIO_SERVING_PARAMS", raising=False)
    base = _serving_params()
    graph = build_defs(storage_root=str(tmp_path)).resolve_asset_graph()
    assert graph.get(dg.AssetKey("zarr_store")).code_version == base.version()
    # a config file under the project changes it; the other assets keep theirs
    (tmp_path / settings.PARAMS_FILE).write_text(json.dumps({"chunk_seconds": 2.0}))
    other = build_defs(storage_root=str(tmp_path)).resolve_asset_graph()
    assert other.get(dg.AssetKey("zarr_store")).code_version != base.version()
    assert (other.get(dg.AssetKey("parquet_archive")).code_version
            == graph.get(dg.AssetKey("parquet_archive")).code_version)
    # the environment variable wins, as JSON text or as a file path
    monkeypatch.setenv("BIOSIGIO_SERVING_PARAMS", json.dumps({"dtype": "float32"}))
    assert _serving_params().dtype == "float32"
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"dtype": "float32", "chunk_seconds": 2.0}))
    monkeypatch.setenv("BIOSIGIO_SERVING_PARAMS", str(p))
    assert _serving_params().chunk_seconds == 2.0


def test_workspace_yaml_loads_the_code_location(monkeypatch, tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "workspace.yaml").read_text())
    (target,) = spec["load_from"]
    module = importlib.import_module(target["python_module"]["module_name"])
    monkeypatch.setenv("BIOSIGIO_HOME", str(tmp_path))
    defs = module.defs()  # the lazy @dg.definitions entry point Dagster's loader calls
    assert isinstance(defs, dg.Definitions)
    resources = defs.resources
    assert resources["storage"].root == str(tmp_path / ".biosigio" / "storage")
    assert resources["sources"].roots == [str(tmp_path / ".biosigio" / "sources")]


def test_settings_are_read_late(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOSIGIO_STORAGE_ROOT", "memory://bucket/out")
    monkeypatch.setenv("BIOSIGIO_SOURCE_ROOTS", f"{tmp_path};memory://bucket/in")
    defs = build_defs()
    assert defs.resources["storage"].root == "memory://bucket/out"
    assert defs.resources["sources"].roots == [str(tmp_path), "memory://bucket/in"]


@pytest.mark.parametrize("bad", ['{"dtype": "int8"}'])
def test_bad_params_fail_loudly(monkeypatch, bad: str) -> None:
    monkeypatch.setenv("BIOSIGIO_SERVING_PARAMS", bad)
    with pytest.raises(ValueError, match="dtype"):
        build_defs()


def test_deploy_settings_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    """Storage options, sensor interval, heavy threshold and executor come from BIOSIGIO_*."""
    opts = {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}}
    monkeypatch.setenv("BIOSIGIO_STORAGE_OPTIONS", json.dumps(opts))
    monkeypatch.setenv("BIOSIGIO_SOURCE_OPTIONS", json.dumps({"anon": True}))
    monkeypatch.setenv("BIOSIGIO_SENSOR_INTERVAL", "5")
    monkeypatch.setenv("BIOSIGIO_EXECUTOR", "celery")
    defs = build_defs(storage_root="s3://bucket/out", source_roots=["s3://bucket/src"])
    assert defs.resources["storage"].storage_options == opts
    assert defs.resources["recording_io"].storage_options == opts
    assert defs.resources["sources"].storage_options == {"anon": True}
    sensor = defs.resolve_sensor_def("recordings_sensor")
    assert sensor.minimum_interval_seconds == 5
    assert defs.resolve_job_def("convert_recording").executor_def.name == "celery"
    monkeypatch.setenv("BIOSIGIO_EXECUTOR", "spark")
    with pytest.raises(ValueError, match="BIOSIGIO_EXECUTOR"):
        build_defs(storage_root=str(tmp_path))
    monkeypatch.setenv("BIOSIGIO_EXECUTOR", "in_process")
    monkeypatch.setenv("BIOSIGIO_STORAGE_OPTIONS", "[1]")
    with pytest.raises(ValueError, match="JSON object"):
        build_defs(storage_root=str(tmp_path))
