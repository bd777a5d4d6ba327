"""Extreme magnitudes: the stated error bound holds or the writer refuses with a typed error.

float32 cannot hold |x| > 3.4e38 (it would store inf under a finite bound) and rounds values
below 1.2e-38 to float32 subnormals or 0 (finer than half an ulp of the channel's maximum);
an int16 store must scale +-float64 max without overflowing (it came back all NaN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording, serving
from biosigio_lib.errors import BiosigIOError, UnrepresentableValueError
from biosigio_lib.serving.quantize import NAN_CODE, dequantize, float32_error, int16_scale

F64_MAX = float(np.finfo(np.float64).max)


def _huge() -> np.ndarray:
    x = np.sin(np.arange(2000) / 10.0)
    x[::7], x[3::7], x[5] = F64_MAX, -F64_MAX, np.nan
    return x


def test_int16_scale_of_float64_extremes_is_finite_and_bounded() -> None:
    x = _huge()[None, :]
    vmin, vmax = np.fmin.reduce(x, axis=1), np.fmax.reduce(x, axis=1)
    sc = int16_scale(vmin, vmax, np.array([False]))
    assert np.isfinite(sc.scale).all() and np.isfinite(sc.offset).all()
    assert np.isfinite(sc.max_abs_error).all() and sc.max_abs_error[0] < F64_MAX
    from biosigio_lib.serving.quantize import quantize_into

    d = np.empty(x.shape, np.int16)
    quantize_into(x, sc, slice(None), d)
    back = dequantize(d, sc.scale, sc.offset, NAN_CODE)
    assert np.flatnonzero(np.isnan(back)).tolist() == [5]
    assert (np.abs(back - x)[:, np.isfinite(x[0])] <= sc.max_abs_error[0]).all()
    assert back[0, 0] == pytest.approx(F64_MAX, rel=1e-4)


def test_float32_bound_covers_values_below_the_normal_range() -> None:
    tiny = np.array([1e-40, -3e-44, 1e-46, 5e-39, 0.0])
    err = np.abs(tiny.astype(np.float32).astype(np.float64) - tiny).max()
    assert err > np.abs(tiny).max() * 2.0**-24  # the old "half an ulp" bound was a lie
    assert err <= float32_error(np.abs(tiny).max())


def test_int16_store_of_float64_extremes_meets_its_bound(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("A", _huge(), 100.0, "uV", "ECG")  # native rate: not filtered
    out = rec.to_zarr(tmp_path / "i.zarr", dtype="int16")
    back = Recording.from_file(out)
    got, want = back.channel_data("A"), rec.channel_data("A")
    assert np.flatnonzero(np.isnan(got)).tolist() == [5]
    bound = back.channels["A"]["max_abs_error"]
    assert np.isfinite(bound)
    fin = np.isfinite(want)
    assert (np.abs(got[fin] - want[fin]) <= bound).all()
    assert serving.verify_level0(rec, out)["ok"]


def test_float32_store_of_tiny_values_meets_its_bound(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("T", np.sin(np.arange(2000) / 10.0) * 1e-41, 100.0, "uV", "ECG")
    out = rec.to_zarr(tmp_path / "t.zarr", dtype="float32")
    back = Recording.from_file(out)
    err = np.abs(back.channel_data("T") - rec.channel_data("T")).max()
    assert err <= back.channels["T"]["max_abs_error"]
    assert serving.verify_level0(rec, out)["ok"]


def test_float32_store_refuses_values_beyond_float32(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("ok", np.ones(2000), 100.0, "uV", "ECG")
    rec.add_channel("A", _huge(), 100.0, "uV", "ECG")
    with pytest.raises(UnrepresentableValueError, match=r"'A'.*float32.*int16") as info:
        rec.to_zarr(tmp_path / "f.zarr", dtype="float32")
    assert isinstance(info.value, BiosigIOError) and isinstance(info.value, ValueError)
    assert info.value.code == "unrepresentable_value"


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_filtered_group_refuses_values_too_large_to_filter(tmp_path: Path, dtype: str) -> None:
    """Resampling 1000 Hz EEG to 250 Hz overflows on such values: refused, not all NaN."""
    rec = Recording()
    rec.add_channel("E", _huge(), 1000.0, "uV", "EEG")
    with pytest.raises(UnrepresentableValueError, match="'E'"):
        rec.to_zarr(tmp_path / f"e_{dtype}.zarr", dtype=dtype)
