"""Fixtures of the pipeline tests: a small sample dataset, definitions on temporary roots,
and persistent Dagster instances in temporary folders."""

from __future__ import annotations

import importlib
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from biosigio_lib.samples import make_sample_dataset

SCALE = 0.1  # sample recordings of 4-6 s: every test run stays fast


def serving_ready() -> bool:
    """True when the serving package (write_zarr, read_view, verify_level0...) is installed."""
    try:
        serving = importlib.import_module("biosigio_lib.serving")
    except Exception:  # a half-landed package counts as absent
        return False
    return all(hasattr(serving, n) for n in ("ServingParams", "write_zarr", "list_groups",
                                             "read_view", "verify_level0"))


requires_serving = pytest.mark.skipif(not serving_ready(),
                                      reason="biosigio_lib.serving is not complete yet")


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset, written once a session (read-only for tests: copy it to change it)."""
    root = tmp_path_factory.mktemp("sample_sources")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_sample_dataset(root, seconds_scale=SCALE)
    return root


@pytest.fixture
def source_copy(sample_root: Path, tmp_path: Path) -> Path:
    """A private copy of the sample dataset that a test may change."""
    dst = tmp_path / "sources"
    shutil.copytree(sample_root, dst)
    return dst


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[object]:
    """A persistent (SQLite) instance in a temporary folder, as sensors and schedules need."""
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst
