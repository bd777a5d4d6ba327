"""int16 storage with per-channel ``physical = digital * scale + offset`` and a NaN code.

Finite values use the symmetric digital range ``[-32767, 32767]``; ``-32768`` is reserved
for NaN/Inf. Integer-valued channels whose span fits are stored exactly (scale 1, integer
offset). Each channel's worst-case reconstruction error is returned with its scale so the
store can state it (and :func:`~biosigio_lib.serving.verify_level0` can check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DMAX", "F32_MAX", "NAN_CODE", "Int16Scale", "dequantize", "fits_float32",
           "float32_error", "int16_scale", "quantize_into"]

NAN_CODE = -32768
DMAX = 32767
_SPAN = 2 * DMAX
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Int16Scale:
    """Per-channel scale, offset and bound; ``center`` is the offset in the quantised frame."""

    scale: np.ndarray
    offset: np.ndarray
    center: np.ndarray
    exact: np.ndarray
    max_abs_error: np.ndarray


def int16_scale(vmin: np.ndarray, vmax: np.ndarray, integer_valued: np.ndarray,
                ref: np.ndarray | None = None, slack: np.ndarray | float = 0.0) -> Int16Scale:
    """Scales from per-channel finite min/max (NaN: no finite value) of values ``ref + v``.

    ``vmin``/``vmax`` are in the frame the quantiser sees (relative to ``ref`` when given),
    so quantising happens without adding ``ref`` back; ``offset`` is absolute. ``slack`` is
    added to the stated bound (arithmetic error of the values themselves, if any).
    """
    vmin = np.asarray(vmin, dtype=np.float64)
    vmax = np.asarray(vmax, dtype=np.float64)
    ref = np.zeros_like(vmin) if ref is None else np.asarray(ref, dtype=np.float64)
    empty = ~np.isfinite(vmin) | ~np.isfinite(vmax)
    lo = np.where(empty, 0.0, vmin)
    hi = np.where(empty, 0.0, vmax)
    # hi - lo and lo + hi overflow to inf near +-float64 max (the channel came back all NaN):
    # there, use halves (the same value up to rounding); elsewhere the usual formula.
    with np.errstate(over="ignore"):
        span, total = hi - lo, lo + hi
    wide, far = ~np.isfinite(span), ~np.isfinite(total)
    step = np.where(wide, hi / 2 / DMAX - lo / 2 / DMAX, span / _SPAN)
    # a few ulps smaller there, so ``DMAX * scale + offset`` on read stays finite
    step = np.where(wide | far, step * (1 - 8 * _EPS), step)
    mid = np.where(far, lo / 2 + hi / 2, total / 2)
    integer = (np.asarray(integer_valued, dtype=bool) & ~wide & (span <= _SPAN)
               & (ref == np.round(ref)))
    const = span == 0
    scale = np.where(integer | const, 1.0, step)
    center = np.where(integer, np.floor(mid), np.where(const, lo, mid))
    exact = integer | const | empty
    offset = ref + center
    slack = (8 * _EPS * np.abs(offset) + 8 * _EPS * np.abs(ref)
             + (8 * _EPS * (DMAX + 1)) * scale + slack)
    err = np.where(exact & (integer | empty), 0.0,
                   np.where(const, slack, 0.5 * scale + slack))
    return Int16Scale(scale, offset, center, exact, err)


def quantize_into(values: np.ndarray, sc: Int16Scale, rows: np.ndarray | slice,
                  out: np.ndarray) -> None:
    """Quantise ``values`` (float, in the scale's frame) for ``rows`` into int16 ``out``.

    Works in column blocks so the float64 temporaries stay small.
    """
    center = sc.center[rows][:, None]
    inv = (1.0 / sc.scale[rows])[:, None]
    step = max(1024, (1 << 16) // max(1, values.shape[0]))
    for s in range(0, values.shape[1], step):
        tmp = np.subtract(values[:, s: s + step], center, dtype=np.float64)
        tmp *= inv
        np.rint(tmp, out=tmp)
        nan = ~np.isfinite(tmp)  # NaN and +-Inf both get the NaN code
        np.clip(tmp, -DMAX, DMAX, out=tmp)
        o = out[:, s: s + step]
        with np.errstate(invalid="ignore"):
            o[...] = tmp
        if nan.any():
            o[nan] = NAN_CODE


def dequantize(digital: np.ndarray, scale: np.ndarray, offset: np.ndarray,
               nan_code: int | None, out: np.ndarray | None = None) -> np.ndarray:
    """``digital * scale + offset`` in float64 (NaN where the NaN code is), in column
    blocks that stay in cache."""
    if out is None:
        out = np.empty(digital.shape, dtype=np.float64)
    sc, off = scale[:, None], offset[:, None]
    step = max(1024, (1 << 17) // max(1, digital.shape[0]))
    for s in range(0, digital.shape[1], step):
        o = out[:, s: s + step]
        with np.errstate(over="ignore"):  # only the NaN code can overflow; it becomes NaN
            np.multiply(digital[:, s: s + step], sc, out=o)
            o += off
    if nan_code is not None:
        hit = digital == nan_code
        if hit.any():
            out[hit] = np.nan
    return out


#: Half the spacing of float32 subnormals: the error floor of casting any tiny value.
F32_SUBNORMAL_HALF_STEP = 2.0**-150
#: The largest finite float32; values whose cast would round beyond it become inf.
F32_MAX = float(np.finfo(np.float32).max)


def float32_error(absmax: np.ndarray) -> np.ndarray:
    """Worst-case error of casting finite values up to ``absmax`` to float32: half an ulp of
    ``absmax``, plus half the subnormal step (values below 1.2e-38 lose relative precision,
    below 1.4e-45 they flush to 0). Values beyond float32 are refused by the writer."""
    a = np.nan_to_num(np.asarray(absmax, dtype=np.float64), nan=0.0, posinf=0.0)
    return a * 2.0**-24 + F32_SUBNORMAL_HALF_STEP


def fits_float32(absmax: np.ndarray) -> np.ndarray:
    """Per channel: do finite values up to ``absmax`` cast to a finite float32?"""
    a = np.nan_to_num(np.asarray(absmax, dtype=np.float64), nan=0.0)
    with np.errstate(over="ignore"):
        return np.isfinite(a.astype(np.float32))
