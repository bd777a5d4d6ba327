"""int16 storage with per-channel ``physical = digital * scale + offset`` and a NaN code.

Finite values use the symmetric digital range ``[-32767, 32767]``; ``-32768`` is reserved
for NaN/Inf. Integer-valued channels whose span fits are stored exactly (scale 1, integer
offset). Each channel's worst-case reconstruction error is returned with its scale so the
store can state it (and :func:`~biosigio_lib.serving.verify_level0` can check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DMAX", "NAN_CODE", "Int16Scale", "dequantize", "float32_error", "int16_scale",
           "quantize_into"]

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
    span = hi - lo
    integer = np.asarray(integer_valued, dtype=bool) & (span <= _SPAN) & (ref == np.round(ref))
    const = span == 0
    scale = np.where(integer | const, 1.0, span / _SPAN)
    center = np.where(integer, np.floor((lo + hi) / 2), np.where(const, lo, (lo + hi) / 2))
    exact = integer | const | empty
    offset = ref + center
    slack = 8 * _EPS * (np.abs(offset) + np.abs(ref) + (DMAX + 1) * scale) + slack
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
        np.multiply(digital[:, s: s + step], sc, out=o)
        o += off
    if nan_code is not None:
        hit = digital == nan_code
        if hit.any():
            out[hit] = np.nan
    return out


def float32_error(absmax: np.ndarray) -> np.ndarray:
    """Worst-case error of casting values up to ``absmax`` to float32 (half an ulp)."""
    a = np.nan_to_num(np.asarray(absmax, dtype=np.float64), nan=0.0, posinf=0.0)
    return a * 2.0**-24
