"""Shared fixtures: where the real third-party corpus is, and skips per optional extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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
