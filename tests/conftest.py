"""Shared fixtures: where the real third-party corpus is, and skips per optional extra."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


def requires(module: str) -> pytest.MarkDecorator:
    """Skip unless ``module`` (an optional extra or test-only tool) is importable."""
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} is not installed")


requires_shared = pytest.mark.skipif(not SHARED_REAL.is_dir(),
                                     reason="../shared/data/real is not present")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real third-party recordings; skips when ../shared is absent."""
    if not SHARED_REAL.is_dir():
        pytest.skip("../shared/data/real is not present")
    return SHARED_REAL


@pytest.fixture(scope="session")
def oracle(real_data: Path) -> dict:
    """Facts per real file as the reference readers give them (oracle.json)."""
    return json.loads((real_data / "oracle.json").read_text())


# --------------------------------------------------------------- a real S3 server on loopback
@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server (moto) and a fresh, empty bucket on it."""

    endpoint: str
    bucket: str
    storage_options: dict[str, Any]

    def url(self, *parts: str) -> str:
        """``s3://<bucket>/<parts...>``."""
        return "/".join([f"s3://{self.bucket}", *parts])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def _moto_endpoint() -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1 once per session; stopped by its PID at the end."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("s3fs") is None:
        pytest.skip("moto[server] / s3fs are not installed (uv sync installs the dev group)")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_server(_moto_endpoint: str) -> S3Server:
    """The loopback S3 server with a fresh bucket; pass ``storage_options`` to the writers."""
    import boto3

    opts: dict[str, Any] = {"key": "testing", "secret": "testing",
                            "client_kwargs": {"endpoint_url": _moto_endpoint,
                                              "region_name": "us-east-1"}}
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=_moto_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=bucket)
    return S3Server(_moto_endpoint, bucket, opts)
