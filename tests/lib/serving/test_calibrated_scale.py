"""int16 scales of calibrated <= 16-bit sources come from the calibration, not a pass.

The filtered output of a source within ``[lo, hi]`` lies within ``[P lo + N hi, P hi + N lo]``
(``P``/``N``: the positive/negative tap sums of a unit-DC branch), so the quantum is the
filter's L1 norm times the source's own quantum and no value can clip. Wider or float
sources keep the measuring pass (their calibration would waste the int16 range).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from biosigio_lib import Calibration, Recording
from biosigio_lib.serving import ServingParams, verify_level0
from biosigio_lib.serving.level0 import _calibrated_range, plan_groups

GAIN = 0.05


def _rec(data: np.ndarray, fs: float = 1000.0, cal: Calibration | None = None) -> Recording:
    rec = Recording({"subject": "s"})
    n_ch = data.shape[0]
    rec.add_channels([f"C{i}" for i in range(n_ch)], data, fs, "uV", "EEG",
                     calibration=[cal or Calibration(GAIN, baseline=3.0)] * n_ch)
    return rec


def _full_scale_steps(n: int = 20_000) -> np.ndarray:
    """Square waves between the int16 extremes: the filter's worst overshoot."""
    t = np.arange(n)
    a = np.where((t // 37) % 2 == 0, np.int16(-32768), np.int16(32767)).astype(np.int16)
    b = np.where((t // 101) % 2 == 0, np.int16(32767), np.int16(-32768)).astype(np.int16)
    return np.stack([a, b, (a // 7).astype(np.int16)])


def test_bound_is_the_calibrated_range_through_the_filter() -> None:
    rec = _rec(_full_scale_steps())
    gp = plan_groups(rec, ServingParams())[0]
    lo, hi = _calibrated_range(gp.rowsets[0].src, gp.plan)
    taps = np.concatenate([t for _, t in gp.plan.branches])
    p, n = taps[taps > 0].sum(), taps[taps < 0].sum()
    phys_lo, phys_hi = (-32768 - 3.0) * GAIN, (32767 - 3.0) * GAIN
    np.testing.assert_allclose(lo, p * phys_lo + n * phys_hi, rtol=1e-12)
    np.testing.assert_allclose(hi, p * phys_hi + n * phys_lo, rtol=1e-12)
    assert (hi - lo > phys_hi - phys_lo).all()  # the overshoot is covered


def test_full_scale_steps_are_stored_within_the_stated_bound(tmp_path: Path) -> None:
    rec = _rec(_full_scale_steps())
    rec.to_zarr(tmp_path / "s.zarr")
    report = verify_level0(rec, tmp_path / "s.zarr")
    assert report["ok"], report["failures"]
    grp = zarr.open_group(tmp_path / "s.zarr", mode="r")["eeg_250hz"]
    ch = grp.attrs["channels"]
    gp = plan_groups(rec, ServingParams())[0]
    l1 = max(float(np.abs(t).sum()) for _, t in gp.plan.branches)
    assert 1.0 < l1 < 2.0  # this Kaiser low-pass: 1.76
    quantum = (32767 + 32768) * GAIN / (2 * 32767)
    for entry in ch:  # the quantum is the filter's L1 norm x the source's, the error half
        assert entry["scale"] == pytest.approx(l1 * quantum, rel=1e-9)
        assert entry["max_abs_error"] <= 0.52 * entry["scale"]  # half a step + float32 slack
    codes = np.asarray(grp["0"][:])
    assert codes.min() > -32768  # nothing clipped to the NaN code


def test_wide_or_missing_code_sources_keep_the_measuring_pass() -> None:
    i32 = _rec(np.arange(3000, dtype=np.int32).reshape(1, -1))
    gp = plan_groups(i32, ServingParams())[0]
    assert _calibrated_range(gp.rowsets[0].src, gp.plan) is None
    missing = _rec(np.arange(3000, dtype=np.int16).reshape(1, -1),
                   cal=Calibration(1.0, missing=-32768))
    gp = plan_groups(missing, ServingParams())[0]
    assert _calibrated_range(gp.rowsets[0].src, gp.plan) is None


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_small_signal_keeps_the_source_resolution(tmp_path: Path, dtype: str) -> None:
    """A signal using a small part of the digital range is stored to ~1 source quantum."""
    rng = np.random.default_rng(3)
    d = np.cumsum(rng.integers(-3, 4, size=(2, 30_000)), axis=1).astype(np.int16)
    rec = _rec(d)
    rec.to_zarr(tmp_path / "s.zarr", dtype=dtype)
    assert verify_level0(rec, tmp_path / "s.zarr")["ok"]


def test_filtering_in_digital_units_equals_filtering_physical_values() -> None:
    """The filter is linear with unit DC gain per branch, so filtering the stored integers
    and scaling once equals filtering the physical values (float64 rounding apart)."""
    from biosigio_lib.serving.resample import reference_values, resample_block

    rng = np.random.default_rng(7)
    d = np.cumsum(rng.integers(-40, 41, size=(4, 9_000)), axis=1).astype(np.int16)
    rec = Recording({"subject": "s"})
    rec.add_channels(["A", "B"], d[:2], 1000.0, "uV", "EEG",
                     calibration=[Calibration(0.37, baseline=-12.5)] * 2)
    rec.add_channels(["C", "D"], d[2:], 1000.0, "mV", "EEG",
                     calibration=[Calibration(200.0, baseline=1024.0, divide=True)] * 2)
    gp = plan_groups(rec, ServingParams(rate_caps={"EEG": 300.0}))[0]  # up/down = 3/10
    src = gp.rowsets[0].src
    assert src.affine is not None and gp.ratio.up > 1
    ref = reference_values(src)
    n_q = -(-gp.n_out // gp.ratio.up)
    digital, _ = resample_block(src, gp.plan, ref, 0, n_q, dtype=np.float64)
    src.affine = None  # the physical path
    physical, _ = resample_block(src, gp.plan, ref, 0, n_q, dtype=np.float64)
    span = np.abs(physical).max(axis=1, keepdims=True)
    assert (np.abs(digital - physical) <= 1e-12 * span).all()  # float64 rounding only
