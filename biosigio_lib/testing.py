"""Test helpers: bit-exact recording comparison and small synthetic recordings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from .recording import Recording

__all__ = ["assert_recordings_equal", "synthetic_recording"]


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tobytes() == b.tobytes()


def assert_recordings_equal(
    actual: Recording,
    expected: Recording,
    *,
    check_metadata: bool = True,
    check_events: bool = True,
    ignore_metadata_keys: tuple[str, ...] = (),
    ignore_channel_keys: tuple[str, ...] = (),
) -> None:
    """Assert samples (bit for bit, same dtype), channel info, events and metadata are equal."""
    assert list(actual.channels) == list(expected.channels), (
        f"labels differ: {list(actual.channels)} != {list(expected.channels)}")
    for label in expected.channels:
        ga, ge = actual.grid_of(label), expected.grid_of(label)
        assert ga.rate == ge.rate, f"{label}: rate {ga.rate!r} != {ge.rate!r}"
        assert ga.t0 == ge.t0, f"{label}: t0 {ga.t0!r} != {ge.t0!r}"
        ca, ce = actual.calibration(label), expected.calibration(label)
        assert ca == ce, f"{label}: calibration {ca} != {ce}"
        a, e = ga.stored(label), ge.stored(label)
        assert _bits_equal(a, e), (
            f"{label}: samples differ (dtype {a.dtype}/{e.dtype}, shape {a.shape}/{e.shape})")
        ia = {k: v for k, v in actual.channels[label].items() if k not in ignore_channel_keys}
        ie = {k: v for k, v in expected.channels[label].items() if k not in ignore_channel_keys}
        assert ia == ie, f"{label}: channel info differs: {ia} != {ie}"
    if check_events:
        pd.testing.assert_frame_equal(
            actual.events.reset_index(drop=True), expected.events.reset_index(drop=True),
            check_exact=True)
    if check_metadata:
        ma = {k: v for k, v in actual.metadata.items() if k not in ignore_metadata_keys}
        me = {k: v for k, v in expected.metadata.items() if k not in ignore_metadata_keys}
        assert ma == me, f"metadata differs: {ma} != {me}"


def synthetic_recording(
    n_channels: int = 4,
    seconds: float = 2.0,
    fs: float = 1000.0,
    *,
    channel_type: str = "EEG",
    unit: str = "uV",
    extra_rates: tuple[float, ...] = (),
    n_events: int = 3,
    seed: int = 0,
    dtype: Any = np.float64,
) -> Recording:
    """Band-limited noise plus sinusoids on one grid (plus one channel per extra rate)."""
    rng = np.random.default_rng(seed)
    rec = Recording({"subject": "sub-01", "start_time": dt.datetime(2024, 1, 2, 3, 4, 5, 678900),
                     "source_format": "synthetic"})
    n = round(seconds * fs)
    t = np.arange(n) / fs
    freqs = 5.0 + 3.0 * np.arange(n_channels)[:, None]
    data = 50.0 * np.sin(2 * np.pi * freqs * t) + np.cumsum(rng.standard_normal((n_channels, n)),
                                                            axis=1) * 0.5
    rec.add_channels([f"{channel_type}{i + 1:03d}" for i in range(n_channels)],
                     data.astype(dtype), fs, unit, channel_type)
    for k, rate in enumerate(extra_rates):
        m = round(seconds * rate)
        rec.add_channel(f"AUX{k + 1}", rng.standard_normal(m).astype(dtype), rate, "g", "ACC")
    for i in range(n_events):
        rec.add_event(onset=i * seconds / max(n_events, 1), duration=0.1, description=f"ev{i}")
    return rec
