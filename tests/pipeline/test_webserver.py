"""End to end: the real webserver loads workspace.yaml; its GraphQL API lists the assets, the
checks and the registered partitions, and a run launched through it (what the UI's Materialize
button does) converts one partition. Bounded waits; the server is always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } }
} }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
REPO_Q = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name
              location { name } } } } }"""
QUERY = """{ assetNodes { assetKey { path } partitionKeys
             assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, query: str, timeout: float = 10.0, variables: dict | None = None) -> dict:
    body = {"query": query, "variables": variables or {}}
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_webserver_serves_graph_and_materializes(tmp_path: Path) -> None:
    import dagster as dg

    from biosigio_lib.discovery import discover
    from biosigio_lib.samples import make_sample_dataset

    sources = tmp_path / ".biosigio" / "sources"  # the default source root under BIOSIGIO_HOME
    make_sample_dataset(sources, seconds_scale=0.1)
    keys = sorted(s.key for s in discover(sources).sources)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # runs start at once (no daemon needed here; `dagster dev` runs the queued coordinator)
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_coordinator:\n"
        "  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")
    instance = dg.DagsterInstance.from_config(str(home))
    instance.add_dynamic_partitions("recordings", keys)
    instance.dispose()

    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "BIOSIGIO_HOME": str(tmp_path),
           "PYTHONWARNINGS": "ignore"}
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(exe), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline, data, last = time.monotonic() + 60, None, None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                data = _post(url, QUERY)
                if data.get("data", {}).get("assetNodes"):
                    break
            except OSError as exc:  # not listening yet
                last = exc
            time.sleep(0.5)
        if not data or not data.get("data", {}).get("assetNodes"):
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=10)[0].decode(errors="replace")[-3000:]
            pytest.fail(f"webserver did not answer in time ({last}; {data}):\n{out}")
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        assert set(nodes) == {"source_recording", "recording", "parquet_archive",
                              "feather_archive", "zarr_store"}
        for node in nodes.values():
            assert sorted(node["partitionKeys"]) == keys
        checks = {c["name"] for c in nodes["zarr_store"]["assetChecksOrError"]["checks"]}
        assert checks == {"store_level0_within_bound", "store_complete"}

        # Materialize one partition through the webserver, as the UI does.
        repo = _post(url, REPO_Q)["data"]["repositoriesOrError"]["nodes"][0]
        key = next(k for k in keys if k.startswith("wfdb"))
        params = {"selector": {"repositoryLocationName": repo["location"]["name"],
                               "repositoryName": repo["name"], "jobName": "convert_recording"},
                  "runConfigData": {},
                  "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]}}
        launched = _post(url, LAUNCH, variables={"p": params})["data"]["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        status, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline:
            status = _post(url, RUN, variables={"id": run_id})["data"]["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(1.0)
        assert status == "SUCCESS", status
        store = tmp_path / ".biosigio" / "storage" / "serving" / f"{key}.zarr"
        assert (store / "zarr.json").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
