"""The `dg` CLI (dagster-dg-cli) reads [tool.dg] in pyproject.toml and lists our definitions;
workspace.yaml names the same code location `biosigio_pipeline`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCATION = "biosigio_pipeline"


def test_workspace_yaml_names_the_location() -> None:
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    (origin,) = location_origins_from_yaml_paths([str(REPO / "workspace.yaml")])
    assert origin.location_name == LOCATION
    assert origin.loadable_target_origin.module_name == "biosigio_pipeline.definitions"


def test_dg_config_matches_the_workspace() -> None:
    dg_cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]
    assert dg_cfg["directory_type"] == "project"
    project = dg_cfg["project"]
    assert project["root_module"] == "biosigio_pipeline"
    assert project["code_location_target_module"] == "biosigio_pipeline.definitions"
    assert project["code_location_name"] == LOCATION


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_dg_list_defs_lists_our_assets(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("dg")
    if not exe.exists():
        pytest.skip("dagster-dg-cli is not installed (uv sync installs it)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "BIOSIGIO_HOME": str(tmp_path),
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(exe), "list", "defs", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    defs = json.loads(proc.stdout)
    assets = {a["asset_key"] for a in defs["assets"]}
    assert {"recording", "parquet_archive", "feather_archive", "zarr_store"} <= assets
    assert {j["name"] for j in defs["jobs"]} >= {"convert_recording", "rebuild_stores"}
    assert sorted(s["name"] for s in defs["sensors"]) == [
        "recordings_sensor", "split_failed_batches", "stale_store_automation"]
    assert "SupersessionWarning" not in proc.stderr
