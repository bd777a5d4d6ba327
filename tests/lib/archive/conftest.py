"""Recordings that exercise every corner of the archive format."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from biosigio_lib import Recording


def _nan_with_payload() -> np.float64:
    return np.frombuffer(np.uint64(0x7FF8_0000_DEAD_BEEF).tobytes(), dtype=np.float64)[0]


def tricky_recording() -> Recording:
    """Mixed dtypes on one grid, odd labels, exact odd rates, t0 != 0, typed events."""
    rng = np.random.default_rng(1)
    rec = Recording({
        "source_file": "/data/sub-01_täsk.edf", "source_format": "edf", "subject": "sub-01",
        "start_time": dt.datetime(2023, 5, 6, 7, 8, 9, 123456),
        "birthdate": dt.date(1990, 1, 2), "raw_header": b"\x00\xffEDF", "gain": np.float32(0.5),
        "nested": {"list": [1, 2.5, None], "inf": float("-inf")},
    })
    n = 3000
    f64 = rng.standard_normal((3, n))
    f64[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    f64[0, 4] = _nan_with_payload()
    rec.add_channels(["Fp1", "Ünïcødé µV", "time"], f64, 1000.5, ["uV", "µV", "s"],
                     ["EEG", "EEG", "MISC"], prefilters=["HP:0.1Hz", "", ""],
                     infos=[{"transducer": "AgAgCl", "physical_min": -3276.8,
                             "digital_min": np.int16(-32768)}, {}, {"original_label": "time"}],
                     t0=1.25)
    rec.add_channel("__index_level_0__", rng.integers(-2**15, 2**15, n, dtype=np.int16),
                    1000.5, "uV", "EEG", t0=1.25)
    rec.add_channel("f32", rng.standard_normal(n).astype(np.float32), 1000.5, "mV", "EMG",
                    t0=1.25)
    rec.add_channel("TRIG", rng.integers(0, 255, n).astype(np.uint8), 1000.5, "", "TRIG",
                    t0=1.25)
    rec.add_channel("acc_x", rng.standard_normal(300).astype(np.float32), 100.0, "g", "ACC",
                    t0=1.25)
    rec.add_channel("i32", rng.integers(-2**31, 2**31 - 1, 7, dtype=np.int32), 0.25, "", "MISC",
                    grid="slow")
    rec.add_events([1.5, 2.0, 2.5], [0.1, np.nan, 0.0], ["start", "Ωmega", "end"],
                   code=np.array([1, 2, 3], dtype=np.int32), score=[0.5, np.nan, 1.5],
                   who=["a", "b", "c"])
    return rec


@pytest.fixture
def tricky() -> Recording:
    return tricky_recording()
