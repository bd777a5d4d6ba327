"""End to end: the real webserver loads workspace.yaml; its GraphQL API lists the assets, the
checks and the registered partitions. Bounded waits; the server is always stopped."""

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
KEYS = ["bids_demo__sub-01_task-rest_eeg", "wfdb_demo__ecg01"]
QUERY = """{ assetNodes { assetKey { path } partitionKeys
             assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, query: str, timeout: float = 10.0) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_webserver_serves_graph_and_partitions(tmp_path: Path) -> None:
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = dg.DagsterInstance.from_config(str(home))
    instance.add_dynamic_partitions("recordings", KEYS)
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
            assert node["partitionKeys"] == KEYS
        checks = {c["name"] for c in nodes["zarr_store"]["assetChecksOrError"]["checks"]}
        assert checks == {"store_level0_within_bound", "store_complete"}
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
