"""Small recordings and a store fixture parametrised over a local path and ``memory://``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.testing import synthetic_recording


def mixed_recording(seconds: float = 12.0) -> Recording:
    """EEG at 1000 Hz (capped to 250), ECG at 500 Hz (native), a trigger at 1000 Hz."""
    rec = synthetic_recording(6, seconds, 1000.0, n_events=4)
    rec.metadata.update({"source_file": "/data/sub-01.edf", "source_checksum": "sha256:abc",
                         "source_format": "edf"})
    n = int(seconds * 1000)
    t = np.arange(n) / 1000.0
    ecg = 800.0 + 200.0 * np.sin(2 * np.pi * 1.2 * t[::2])  # DC offset
    rec.add_channel("ECG", ecg, 500.0, "uV", "ECG", transducer="Ag/AgCl")
    trig = np.zeros(n)
    trig[1000:1500], trig[4000:4010], trig[7000:9000] = 5, 255, 1000
    rec.add_channel("TRIG", trig, 1000.0, "", "TRIG")
    rec.add_event(onset=3.5, duration=0.0, description="stim")
    return rec


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where to write a store: a local path or a fresh ``memory://`` URL."""
    if request.param == "local":
        yield str(tmp_path / "rec.zarr")
        return
    url = f"memory://{uuid.uuid4().hex}/rec.zarr"
    yield url
    import fsspec

    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)
