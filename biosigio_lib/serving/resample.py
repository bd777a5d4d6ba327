"""Anti-aliased polyphase resampling of channel blocks, by exact rational ratios.

The ratio ``up/down`` is the exact :class:`fractions.Fraction` of the two float rates (limited
to a maximum denominator only when it is huge); the level-0 rate stored is the exact result
``native * up / down``, so sample count and rate never drift apart. The FIR is
``scipy.signal.firwin`` (as in ``resample_poly``), split into ``up`` polyphase branches, each
normalised to unit DC gain (a DC offset passes without ripple). Edges are padded with the edge
value (no ringing on offsets); values are referenced to a per-channel constant before the
float arithmetic. Non-finite inputs are filled (hold last value) before filtering, and only
the output samples whose bin holds a non-finite input are marked NaN (no smearing). The
branch filters run as stacked BLAS mat-vec products over all channels of a time block.
Calibrated integer sources are filtered in digital units (relative to the reference in them)
and the output is scaled once: the filter is linear with unit DC gain, and so the physical
input is never materialised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..calibration import Calibration, to_physical
from ..lazy import LazySamples

__all__ = [
    "FilterPlan",
    "Ratio",
    "Source",
    "block_ranges",
    "block_target",
    "design_filter",
    "pick_block",
    "rational_ratio",
    "reference_values",
    "resample_block",
]


#: A block of a grid (an array, or a file-backed :class:`~biosigio_lib.lazy.LazySamples`), its
#: rows to take or None for all, their positions in the group, their calibrations or None.
SourcePart = tuple[np.ndarray | LazySamples, np.ndarray | None, np.ndarray,
                   list[Calibration] | None]


class Source:
    """The rows of one channel group, taken from a grid's per-dtype blocks without copying.

    ``get(start, stop)`` returns ``(n_ch, stop - start)`` samples (a view when the group is
    one whole uncalibrated dtype block of the grid; otherwise only that time slice is
    gathered). Calibrated blocks hold integers and are turned into physical float64 values
    one slice at a time, so no full-length physical copy is ever made.
    """

    def __init__(self, parts: list[SourcePart], n_ch: int, n_in: int):
        #: (2-D block array, its rows to take or None for all, positions in the group,
        #: the rows' calibrations or None)
        self.parts = parts
        self.n_ch = n_ch
        self.n_in = n_in
        self.affine = self._affine()

    def _affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Per row ``(gain, baseline, divide)`` when every row is a calibrated integer
        without a missing code (filtering may then run on the digital values), else None."""
        if not self.parts:
            return None
        gain, base, divide = np.ones(self.n_ch), np.zeros(self.n_ch), np.zeros(self.n_ch, bool)
        for arr, _, pos, cals in self.parts:
            if cals is None or arr.dtype.kind not in "iu" or any(
                    c.missing is not None or not (np.isfinite(c.gain) and c.gain != 0
                                                  and np.isfinite(c.baseline)) for c in cals):
                return None
            gain[pos] = [c.gain for c in cals]
            base[pos] = [c.baseline for c in cals]
            divide[pos] = [c.divide for c in cals]
        return gain, base, divide

    @property
    def dtype(self) -> np.dtype[Any]:
        if not self.parts:
            return np.dtype(np.float64)
        return np.result_type(*[np.float64 if p[3] is not None else p[0].dtype
                                for p in self.parts])

    def calibrated_range(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per row, the physical values of its integer type's two ends (low, high) when all
        rows are calibrated integers, else None: no sample can lie outside them."""
        lo, hi = np.zeros(self.n_ch), np.zeros(self.n_ch)
        for arr, _, pos, cals in self.parts:
            if cals is None or arr.dtype.kind not in "iu":
                return None
            info = np.iinfo(arr.dtype)
            ends = np.array([[info.min, info.max]] * len(cals), dtype=np.int64)
            with np.errstate(all="ignore"):
                phys = to_physical(ends, cals)
            lo[pos], hi[pos] = np.fmin(phys[:, 0], phys[:, 1]), np.fmax(phys[:, 0], phys[:, 1])
        return lo, hi

    def calibrated_absmax_bound(self) -> np.ndarray | None:
        """An upper bound of every row's |physical value| when all rows are calibrated
        integers (from their dtype's range and calibration), else None."""
        ends = self.calibrated_range()
        if ends is None:
            return None
        bound: np.ndarray = np.nan_to_num(np.fmax(np.abs(ends[0]), np.abs(ends[1])),
                                          nan=0.0, posinf=np.inf)
        return bound

    @staticmethod
    def _take(arr: np.ndarray | LazySamples, rows: np.ndarray | None,
              cals: list[Calibration] | None,
              cols: slice) -> np.ndarray:
        raw = arr[:, cols] if rows is None else arr[rows, cols]
        return raw if cals is None else to_physical(raw, cals)

    def get_digital(self, start: int, stop: int) -> np.ndarray:
        """Stored integers ``[start, stop)`` of every row (only when :attr:`affine`)."""
        if len(self.parts) == 1 and self.parts[0][1] is None:
            return np.asarray(self.parts[0][0][:, start:stop])
        dtype = np.result_type(*[p[0].dtype for p in self.parts])
        out = np.empty((self.n_ch, stop - start), dtype=dtype)
        for arr, rows, pos, _ in self.parts:
            out[pos] = arr[:, start:stop] if rows is None else arr[rows, start:stop]
        return out

    def get(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of every row of the group."""
        if len(self.parts) == 1 and self.parts[0][1] is None:
            arr, _, _, cals = self.parts[0]
            return self._take(arr, None, cals, slice(start, stop))
        out = np.empty((self.n_ch, stop - start), dtype=self.dtype)
        for arr, rows, pos, cals in self.parts:
            out[pos] = self._take(arr, rows, cals, slice(start, stop))
        return out

    def subsample(self, step: int) -> np.ndarray:
        """Every ``step``-th sample of every row (a small copy)."""
        out = np.empty((self.n_ch, -(-self.n_in // step)), dtype=self.dtype)
        for arr, rows, pos, cals in self.parts:
            out[pos] = self._take(arr, rows, cals, slice(None, None, step))
        return out


@dataclass(frozen=True)
class Ratio:
    """Level-0 rate = native rate * up / down (up <= down: never upsample)."""

    up: int
    down: int

    @property
    def identity(self) -> bool:
        return self.up == self.down

    def out_rate(self, native: float) -> float:
        """The exact output rate (one float rounding of the exact rational product)."""
        if self.identity:
            return float(native)
        return float(Fraction(native) * self.up / self.down)

    def n_out(self, n_in: int) -> int:
        """Output samples: ceil(n_in * up / down); at least 1 when there is any input."""
        if n_in <= 0:
            return 0
        return max(1, -(-n_in * self.up // self.down))


def _best_at_most(x: Fraction, max_denominator: int) -> Fraction:
    """The largest fraction <= ``x`` with denominator <= ``max_denominator``.

    The continued-fraction walk of ``Fraction.limit_denominator`` ends on two Farey neighbours
    that bracket ``x``; no fraction of allowed denominator lies between them, so the lower one
    is the best approximation from below (so a level-0 rate never exceeds its cap).
    """
    if x.denominator <= max_denominator:
        return x
    p0, q0, p1, q1 = 0, 1, 1, 0
    n, d = x.numerator, x.denominator
    while True:
        a = n // d
        q2 = q0 + a * q1
        if q2 > max_denominator:
            break
        p0, q0, p1, q1 = p1, q1, p0 + a * p1, q2
        n, d = d, n - a * d
    k = (max_denominator - q0) // q1
    return min(Fraction(p0 + k * p1, q0 + k * q1), Fraction(p1, q1))


def rational_ratio(native: float, cap: float | None, max_denominator: int) -> Ratio:
    """``up/down`` taking ``native`` to ``min(native, cap)`` from the exact float values.

    When the exact ratio needs a larger denominator than allowed, the closest ratio *below*
    it is used, so the output rate never exceeds the cap (unless the cap is below
    ``native / max_denominator``, where ``1/max_denominator`` is the smallest ratio allowed).
    """
    if cap is None or cap >= native:
        return Ratio(1, 1)
    frac = _best_at_most(Fraction(float(cap)) / Fraction(float(native)), max_denominator)
    if frac <= 0:
        frac = Fraction(1, max_denominator)
    return Ratio(frac.numerator, frac.denominator)


@dataclass(frozen=True)
class FilterPlan:
    """The polyphase branches of one ratio: per phase, first input offset and the taps."""

    ratio: Ratio
    half_len: int
    n_taps: int
    window: Any
    cutoff: float
    #: per output phase p (k % up == p): (m_lo, taps) with y[p + q*up] =
    #: sum_t taps[t] * x[q*down + m_lo + t]
    branches: tuple[tuple[int, np.ndarray], ...]

    @property
    def m_lo(self) -> int:
        return min(m for m, _ in self.branches)

    @property
    def m_hi(self) -> int:
        return max(m + len(t) - 1 for m, t in self.branches)

    def attrs(self) -> dict[str, Any]:
        """Filter parameters for the store's attrs (enough to rebuild the filter)."""
        win = list(self.window) if isinstance(self.window, tuple) else self.window
        return {"method": ("polyphase FIR (windowed sinc as scipy.signal.firwin), "
                           "unit DC gain per branch"),
                "up": self.ratio.up, "down": self.ratio.down, "n_taps": self.n_taps,
                "half_len": self.half_len, "cutoff": self.cutoff, "window": win,
                "edge_padding": "edge", "reference": "per-channel mean subtracted",
                "non_finite": "held before filtering; output bins holding them are NaN"}


_WINDOW_FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "kaiser": np.kaiser, "hamming": np.hamming, "hann": np.hanning, "blackman": np.blackman}


def _firwin(n_taps: int, cutoff: float, window: str, beta: float) -> np.ndarray:
    """Low-pass windowed sinc at unit DC gain: ``scipy.signal.firwin(n, cutoff, window)``."""
    m = np.arange(n_taps) - (n_taps - 1) / 2.0
    h: np.ndarray = cutoff * np.sinc(cutoff * m)
    win = np.kaiser(n_taps, beta) if window == "kaiser" else _WINDOW_FUNCS[window](n_taps)
    h = h * win
    return h / float(h.sum())


def design_filter(ratio: Ratio, *, window: str = "kaiser", beta: float = 5.0,
                  half_width: int = 10) -> FilterPlan:
    """The anti-aliasing FIR for ``ratio`` (cut-off at the lower Nyquist), in branches."""
    up, down = ratio.up, ratio.down
    max_rate = max(up, down)
    half_len = half_width * max_rate
    n_taps = 2 * half_len + 1
    win: Any = (window, float(beta)) if window == "kaiser" else window
    cutoff = 1.0 / max_rate
    h = _firwin(n_taps, cutoff, window, float(beta)) * up
    branches = []
    for p in range(up):
        base = p * down + half_len
        m_lo = -((2 * half_len - base) // up)  # ceil((base - 2*half_len) / up)
        m_hi = base // up
        taps = h[base - np.arange(m_lo, m_hi + 1) * up]
        taps = taps / taps.sum()  # unit DC gain per branch
        branches.append((int(m_lo), np.ascontiguousarray(taps)))
    return FilterPlan(ratio, half_len, n_taps, win, cutoff, tuple(branches))


def reference_values(src: Source) -> np.ndarray:
    """Per-channel reference (mean of finite values of a sparse subsample), float64."""
    if src.n_in == 0:
        return np.zeros(src.n_ch)
    sub = np.asarray(src.subsample(max(1, src.n_in // 4096)), dtype=np.float64)
    finite = np.isfinite(sub)
    count = finite.sum(axis=1)
    total = np.where(finite, sub, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _fill_nonfinite(seg: np.ndarray, mask: np.ndarray) -> None:
    """Replace masked samples in place: hold the last finite value (first one for a lead)."""
    w = seg.shape[1]
    idx = np.where(mask, 0, np.arange(w, dtype=np.int64)[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(seg, idx, axis=1)
    good = ~mask
    first = np.argmax(good, axis=1)
    has_any = good[np.arange(seg.shape[0]), first]
    lead_value = np.where(has_any, seg[np.arange(seg.shape[0]), first], 0.0)
    lead = np.arange(w)[None, :] < first[:, None]
    lead |= ~has_any[:, None]
    filled = np.where(lead, lead_value[:, None].astype(seg.dtype), filled)
    seg[...] = filled


def _segment(src: Source, a: int, b: int, ref: np.ndarray, dtype: np.dtype[Any],
             fill: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Source samples ``[a, b)`` minus ``ref``, edge-padded outside ``[0, n_in)``.

    With ``fill``, non-finite samples are held (and their mask over ``[max(a, 0), ...)``
    returned); without it they are left in place (a cheap first pass: NaN propagates).
    """
    lo, hi = max(a, 0), min(b, src.n_in)
    seg = np.empty((ref.shape[0], b - a), dtype=dtype)
    mid = seg[:, lo - a: hi - a]
    if src.affine is not None and not fill:  # digital units, relative to ref in them
        gain, base, divide = src.affine
        ref_d = base + np.where(divide, ref * gain, ref / gain)
        np.subtract(src.get_digital(lo, hi), ref_d[:, None], out=mid, casting="unsafe")
    else:
        np.subtract(src.get(lo, hi), ref[:, None], out=mid, casting="unsafe")
    mask = None
    if fill:
        mask = ~np.isfinite(mid)
        _fill_nonfinite(mid, mask)
    if lo > a:
        seg[:, : lo - a] = mid[:, :1]
    if hi < b:
        seg[:, hi - a:] = mid[:, -1:]
    return seg, mask


def _apply(seg: np.ndarray, plan: FilterPlan, q0: int, nq: int, a: int) -> np.ndarray:
    """The branch filters as stacked mat-vec products: ``(n_ch, nq * up)`` outputs."""
    up, down = plan.ratio.up, plan.ratio.down
    n_ch, isz = seg.shape[0], seg.dtype.itemsize
    out = np.empty((n_ch, nq * up), dtype=seg.dtype)
    for p, (m_lo, taps) in enumerate(plan.branches):
        start = q0 * down + m_lo - a
        view = as_strided(seg[:, start:], shape=(nq, n_ch, len(taps)),
                          strides=(down * isz, seg.strides[0], isz), writeable=False)
        res = view @ taps.astype(seg.dtype, copy=False)
        if up == 1:
            out[:] = res.T
        else:
            out[:, p::up] = res.T
    return out


def resample_block(src: Source, plan: FilterPlan, ref: np.ndarray, q0: int, q1: int, *,
                   dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``[q0*up, min(q1*up, n_out))`` of all channels, relative to ``ref``.

    Returns ``(block, nonfinite_in)``: the ``(n_ch, k)`` filtered samples in ``dtype`` (NaN
    where the output bin holds a non-finite input) and the per-channel count of non-finite
    inputs in this block's share ``[q0*down, q1*down)`` of the source.
    """
    up, down = plan.ratio.up, plan.ratio.down
    n_in = src.n_in
    n_out = plan.ratio.n_out(n_in)
    k0, k1 = q0 * up, min(q1 * up, n_out)
    nq = q1 - q0
    a = q0 * down + plan.m_lo
    b = (q1 - 1) * down + plan.m_hi + 1
    dt = np.dtype(dtype)
    seg, _ = _segment(src, a, b, ref, dt, fill=False)
    with np.errstate(invalid="ignore", over="ignore"):
        out = _apply(seg, plan, q0, nq, a)[:, : k1 - k0]
    if src.affine is not None:  # filtered digital values -> physical (the filter is linear)
        gain, _, divide = src.affine
        if divide.any():
            out[divide] /= gain[divide, None].astype(dt)
        if not divide.all():
            out[~divide] *= gain[~divide, None].astype(dt)
    n_ch = out.shape[0]
    mask = None
    if src.dtype.kind == "f" and not np.isfinite(out).all():
        # every source sample lies in some output's window, so a finite output block proves
        # finite inputs; otherwise fill them, filter again, and mark only their own bins
        seg, mask = _segment(src, a, b, ref, dt, fill=True)
        out = _apply(seg, plan, q0, nq, a)[:, : k1 - k0]
    counts = np.zeros(n_ch, dtype=np.int64)
    if mask is not None:
        lo = max(a, 0)  # the mask covers source samples [lo, min(b, n_in))
        own_lo, own_hi = max(q0 * down, 0) - lo, min(q1 * down, n_in) - lo
        counts = mask[:, own_lo:own_hi].sum(axis=1)
        i_lo = max(0, -((1 - 2 * k0) * down // (2 * up)))  # ceil((2*k0 - 1)*down / (2*up))
        i_hi = min(n_in, -((1 - 2 * k1) * down // (2 * up)))
        rows, cols = np.nonzero(mask[:, i_lo - lo: i_hi - lo])
        k = (2 * (cols + i_lo) * up + down) // (2 * down)
        out[rows, k - k0] = np.nan
    return out, counts


def pick_block(src: Source, ratio: Ratio, k0: int, k1: int) -> np.ndarray:
    """Discrete channels: the source sample nearest each output time, never filtered."""
    if ratio.identity:
        return np.asarray(src.get(k0, k1))
    k = np.arange(k0, k1, dtype=np.int64)
    idx = np.minimum((2 * k * ratio.down + ratio.up) // (2 * ratio.up), src.n_in - 1)
    lo = int(idx[0]) if idx.size else 0
    hi = int(idx[-1]) + 1 if idx.size else 0
    return np.asarray(src.get(lo, hi))[:, idx - lo]


def block_ranges(n_out: int, up: int, target: int) -> list[tuple[int, int]]:
    """Split outputs into ``(q0, q1)`` phase-aligned blocks of about ``target`` outputs."""
    nq_total = -(-n_out // up) if n_out else 0
    step = max(1, target // up)
    return [(q, min(q + step, nq_total)) for q in range(0, nq_total, step)]


def block_target(n_ch: int, down: int, up: int, budget_bytes: int = 2 << 20,
                 itemsize: int = 4) -> int:
    """Outputs per block so a block's source segment stays near ``budget_bytes``."""
    per_output = max(1, n_ch) * itemsize * max(1.0, down / up)
    return max(up, math.ceil(budget_bytes / per_output))
