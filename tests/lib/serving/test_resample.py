"""Resampling: exact ratios, no upsampling, no DC ringing, no NaN smearing, scipy agreement."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from biosigio_lib.serving.resample import (
    Ratio,
    Source,
    block_ranges,
    design_filter,
    pick_block,
    rational_ratio,
    reference_values,
    resample_block,
)


def _src(x: np.ndarray) -> Source:
    x = np.ascontiguousarray(np.atleast_2d(x))
    return Source([(x, None, np.arange(x.shape[0]), None)], x.shape[0], x.shape[1])


def _resample(x: np.ndarray, ratio: Ratio, dtype: type = np.float64,
              block: int = 997) -> tuple[np.ndarray, np.ndarray]:
    src = _src(x)
    plan = design_filter(ratio)
    ref = reference_values(src)
    n_out = ratio.n_out(src.n_in)
    out = np.empty((src.n_ch, n_out))
    bad = np.zeros(src.n_ch, np.int64)
    for q0, q1 in block_ranges(n_out, ratio.up, block):
        blk, cnt = resample_block(src, plan, ref, q0, q1, dtype=dtype)
        out[:, q0 * ratio.up: q0 * ratio.up + blk.shape[1]] = blk
        bad += cnt
    return out + ref[:, None], bad


def test_exact_rational_ratio_of_the_float_rates() -> None:
    r = rational_ratio(1000.5, 250.0, 4096)
    assert (r.up, r.down) == (500, 2001)
    assert r.out_rate(1000.5) == 250.0
    assert r.n_out(2001 * 7) == 500 * 7  # no drift: 14007 samples at 1000.5 Hz -> 3500
    assert rational_ratio(2048.0, 1000.0, 4096) == Ratio(125, 256)
    assert rational_ratio(512.0, 1000.0, 4096).identity  # never upsample
    assert rational_ratio(250.0, None, 4096).identity


def test_limited_ratio_never_exceeds_the_cap_and_states_its_rate() -> None:
    native = 1000.0 + 1e-7  # exact ratio has a huge denominator: limited, rate is exact
    r = rational_ratio(native, 250.0, 100)
    assert r.down <= 100 and (r.up, r.down) == (24, 97)  # the closest ratio below 1/4
    assert r.out_rate(native) <= 250.0
    assert r.out_rate(native) == float(Fraction(native) * 24 / 97)


@pytest.mark.parametrize("max_den", [16, 100, 4096])
def test_level0_rate_is_never_above_the_cap(max_den: int) -> None:
    rng = np.random.default_rng(7)
    for native in rng.uniform(250.5, 20_000.0, 300):
        cap = float(rng.choice([250.0, 1000.0, 333.3]))
        if cap >= native:
            continue
        exact = Fraction(cap) / Fraction(float(native))
        if exact < Fraction(1, max_den):  # below the smallest allowed ratio (documented)
            continue
        r = rational_ratio(float(native), cap, max_den)
        assert r.down <= max_den and Fraction(r.up, r.down) <= exact
        assert r.out_rate(float(native)) <= cap
        # nothing with an allowed denominator lies between the chosen ratio and the exact one
        for q in range(1, max_den + 1, max(1, max_den // 64)):
            p = (exact * q).numerator // (exact * q).denominator
            assert Fraction(p, q) <= Fraction(r.up, r.down)


def test_a_channel_never_loses_all_its_samples() -> None:
    assert Ratio(1, 4).n_out(1) == 1 and Ratio(1, 4).n_out(0) == 0
    y, _ = _resample(np.array([[3.0]]), Ratio(1, 4))
    assert y.shape == (1, 1) and y[0, 0] == pytest.approx(3.0)


def test_matches_scipy_resample_poly_with_edge_padding() -> None:
    from scipy.signal import resample_poly

    rng = np.random.default_rng(1)
    x = np.cumsum(rng.standard_normal((3, 4000)), axis=1)
    y, _ = _resample(x, Ratio(1, 4))
    ref = resample_poly(x, 1, 4, axis=1, padtype="edge")
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-9 * np.abs(x).max())
    y32, _ = _resample(x, Ratio(1, 4), dtype=np.float32, block=333)
    np.testing.assert_allclose(y32, ref, atol=1e-5 * np.abs(x).max())


def test_rational_ratio_agrees_with_scipy_in_the_interior() -> None:
    from scipy.signal import resample_poly

    rng = np.random.default_rng(2)
    x = np.sin(np.arange(6000) * 0.01)[None, :] + 0.01 * rng.standard_normal((1, 6000))
    y, _ = _resample(x, Ratio(125, 256), block=1000)
    ref = resample_poly(x, 125, 256, axis=1, padtype="edge")[:, : y.shape[1]]
    np.testing.assert_allclose(y[:, 50:-50], ref[:, 50:-50], atol=5e-3)


@pytest.mark.parametrize("ratio", [Ratio(1, 4), Ratio(125, 256), Ratio(500, 2001)])
def test_dc_offset_does_not_ring(ratio: Ratio) -> None:
    x = np.full((2, 5000), 1.0e4)
    x[1] = -3.25e6
    y, _ = _resample(x, ratio, dtype=np.float32)
    # exact on any CPU/BLAS: the filter sees x - reference == 0 everywhere, and a sum of
    # zero products is exactly 0, so the output is the reference value copied back
    np.testing.assert_array_equal(y, np.broadcast_to(x[:, :1], y.shape))


def test_nan_and_inf_mark_only_their_own_bins() -> None:
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((2, 4000)), axis=1)
    x[0, 1001] = np.nan
    x[1, 2000:2010] = np.inf
    y, bad = _resample(x, Ratio(1, 4), block=300)
    assert list(bad) == [1, 10]
    assert np.flatnonzero(np.isnan(y[0])).tolist() == [250]
    assert np.flatnonzero(np.isnan(y[1])).tolist() == [500, 501, 502]
    assert np.isfinite(y[:, :250]).all() and np.isfinite(y[0, 251:]).all()
    clean = x.copy()
    clean[0, 1001] = clean[0, 1000]  # the hold fill: neighbours match that signal exactly
    clean[1, 2000:2010] = clean[1, 1999]
    yc, _ = _resample(clean, Ratio(1, 4), block=300)
    np.testing.assert_allclose(y[0, 260:], yc[0, 260:], rtol=0, atol=1e-9)


def test_all_nan_channel_and_leading_nans() -> None:
    x = np.zeros((2, 800))
    x[0] = np.nan
    x[1, :100] = np.nan
    x[1, 100:] = 5.0
    y, bad = _resample(x, Ratio(1, 4))
    assert np.isnan(y[0]).all() and bad[0] == 800
    assert np.isnan(y[1, :25]).all() and np.allclose(y[1, 26:], 5.0)


def test_discrete_channels_pick_samples_never_filter() -> None:
    codes = np.repeat(np.array([0, 7, 3, 255], float), 100)[None, :]
    out = pick_block(_src(codes), Ratio(1, 4), 0, 100)
    assert set(np.unique(out)) <= {0.0, 7.0, 3.0, 255.0}
    np.testing.assert_array_equal(out[0], codes[0, ::4])
