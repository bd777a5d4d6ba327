"""The ``zarr`` importer: content detection, dispatch by suffix and URL, and the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from biosigio_lib import Recording
from biosigio_lib.importers import guess_importer, list_importers
from biosigio_lib.serving import PROVENANCE_KEYS

from ..importers.contract import ImporterContract
from .conftest import mixed_recording


class TestZarrImporter(ImporterContract):
    source_format = "zarr"

    @pytest.fixture(params=["eeg_250hz", "ecg_500hz", "discrete_1000hz"])
    def recording(self, request: pytest.FixtureRequest, tmp_path: Path) -> Recording:
        out = mixed_recording(2.0).to_zarr(tmp_path / "c.zarr")
        return Recording.from_file(out, group=request.param)


def test_registered_and_detected_by_content(tmp_path: Path) -> None:
    assert "zarr" in list_importers()
    out = mixed_recording(1.0).select(["ECG"]).to_zarr(tmp_path / "no_suffix")
    assert guess_importer(out).name == "zarr"
    rec = Recording.from_file(out)
    assert rec.labels == ["ECG"] and rec.metadata["zarr_group"] == "ecg_500hz"


def test_reads_memory_urls_and_selections() -> None:
    import uuid

    url = f"memory://{uuid.uuid4().hex}/x.zarr"
    src = mixed_recording(3.0)
    src.select(["ECG", "EEG001"]).to_zarr(url)
    rec = Recording.from_file(url, group="ecg_500hz", tmin=1.0, tmax=2.0)
    assert rec.grid(500.0).n_samples == 500 and rec.grid(500.0).t0 == 1.0
    assert set(PROVENANCE_KEYS) <= set(rec.channels["ECG"])
    assert rec.events["onset"].between(0.0, 2.0).all()


def test_iter_blocks_reads_windows(tmp_path: Path) -> None:
    import numpy as np

    from biosigio_lib.importers import iter_blocks

    src = mixed_recording(5.0)
    out = src.select(["ECG"]).to_zarr(tmp_path / "w.zarr")
    whole = Recording.from_file(out).channel_data("ECG")
    parts = list(iter_blocks(out, block_seconds=2.0))
    assert [p.grid(500.0).t0 for p in parts] == [0.0, 2.0, 4.0]
    np.testing.assert_array_equal(np.concatenate([p.channel_data("ECG") for p in parts]),
                                  whole)


def test_iter_blocks_within_a_time_window(tmp_path: Path) -> None:
    import numpy as np

    from biosigio_lib.importers import iter_blocks

    src = mixed_recording(5.0)
    out = src.select(["ECG"]).to_zarr(tmp_path / "w.zarr")
    window = Recording.from_file(out, tmin=1.0, tmax=4.5).channel_data("ECG")
    parts = list(iter_blocks(out, block_seconds=2.0, tmin=1.0, tmax=4.5))
    assert [p.grid(500.0).t0 for p in parts] == [1.0, 3.0]
    np.testing.assert_array_equal(np.concatenate([p.channel_data("ECG") for p in parts]),
                                  window)
