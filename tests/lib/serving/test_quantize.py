"""int16 quantisation: the stated bound holds, integers are exact, NaN has its own code."""

from __future__ import annotations

import numpy as np

from biosigio_lib.serving.quantize import (
    DMAX,
    NAN_CODE,
    dequantize,
    float32_error,
    int16_scale,
    quantize_into,
)


def _roundtrip(x: np.ndarray, integer: bool = False, ref: np.ndarray | None = None):
    rel = x - (0.0 if ref is None else ref[:, None])
    sc = int16_scale(np.fmin.reduce(rel, axis=1), np.fmax.reduce(rel, axis=1),
                     np.full(x.shape[0], integer), ref)
    d = np.empty(x.shape, np.int16)
    quantize_into(rel, sc, slice(None), d)
    return d, sc, dequantize(d, sc.scale, sc.offset, NAN_CODE)


def test_error_bound_holds_with_large_offsets() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 20000)) * np.array([[1e-6], [1.0], [300.0], [5.0]])
    x += np.array([[0.0], [1e4], [-2e5], [1e9]])
    ref = x[:, 0].copy()
    for r in (None, ref):
        d, sc, back = _roundtrip(x, ref=r)
        assert d.min() >= -DMAX and d.max() <= DMAX
        err = np.abs(back - x).max(axis=1)
        assert (err <= sc.max_abs_error).all(), (err, sc.max_abs_error)
        assert (sc.max_abs_error < 0.51 * sc.scale + 1e-6 * np.abs(x).max(axis=1)).all()


def test_integer_channels_are_exact() -> None:
    x = np.array([[0, 1, 2, 255, 3], [-40000, -20000, 0, 20000, 25000],
                  [70000, 70001, 70002, 70010, 70000]], float)
    _, sc, back = _roundtrip(x, integer=True)
    np.testing.assert_array_equal(back, x)
    assert sc.exact.all() and (sc.max_abs_error == 0).all() and (sc.scale == 1.0).all()


def test_too_wide_integers_fall_back_to_scaling_with_a_bound() -> None:
    x = np.array([[0.0, 100000.0, 3.0]])
    _, sc, back = _roundtrip(x, integer=True)
    assert not sc.exact[0] and (np.abs(back - x) <= sc.max_abs_error[0]).all()


def test_nan_gets_the_reserved_code_and_constant_channels_are_exact() -> None:
    x = np.array([[1.5, np.nan, 2.5, 3.0], [7.25, 7.25, np.nan, 7.25], [np.nan] * 4])
    d, sc, back = _roundtrip(x)
    assert d[0, 1] == NAN_CODE and d[1, 2] == NAN_CODE and (d[2] == NAN_CODE).all()
    np.testing.assert_array_equal(np.isnan(back), np.isnan(x))
    assert back[1, 0] == 7.25 and sc.exact[1]


def test_float32_error_is_half_an_ulp() -> None:
    x = np.random.default_rng(1).standard_normal(10000) * 1e3
    err = np.abs(x.astype(np.float32).astype(np.float64) - x).max()
    assert err <= float32_error(np.abs(x).max())
