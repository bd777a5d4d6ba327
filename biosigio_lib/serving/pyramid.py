"""The min/max view pyramid, built from the stored level 0 (NaN-aware, partial tail kept).

Level ``L`` holds, per channel, the min and max of each block of ``factor`` samples of level
``L-1`` (so each envelope is exact at every zoom), in level 0's dtype and scale. NaN (or the
int16 NaN code) is ignored unless a whole block is NaN. Unlike biosigio 1.2, the last
partial block is kept, so the envelope covers the whole recording.
"""

from __future__ import annotations

import numpy as np

from .quantize import DMAX, NAN_CODE

__all__ = ["Level1Builder", "ViewPyramid", "level_lengths", "next_level", "reduce_minmax"]


def level_lengths(n: int, factor: int, max_samples: int, max_levels: int) -> list[int]:
    """Lengths of levels 1.. : divide by ``factor`` (ceil) until a level has <= max_samples."""
    out: list[int] = []
    while n > max_samples and len(out) < max_levels:
        n = -(-n // factor)
        out.append(n)
    return out


def reduce_minmax(lo: np.ndarray, hi: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Min of ``lo`` and max of ``hi`` over blocks of ``factor`` samples (last may be short)."""
    if lo.dtype == np.int16:
        if np.any(lo == NAN_CODE):
            lo = np.where(lo == NAN_CODE, np.int16(DMAX), lo)
        mn = _reduce(lo, factor, np.minimum)
        mx = _reduce(hi, factor, np.maximum)
        mn[mx == NAN_CODE] = NAN_CODE  # NaN code is the lowest: max is NaN only if all are
        return mn, mx
    return _reduce(lo, factor, np.fmin), _reduce(hi, factor, np.fmax)


def _reduce(a: np.ndarray, factor: int, op: np.ufunc) -> np.ndarray:
    """``op`` over consecutive blocks of ``factor`` columns, as ``factor - 1`` strided ops."""
    n = a.shape[1]
    n_out = -(-n // factor)
    out = a[:, 0::factor].copy()
    for j in range(1, factor):
        col = a[:, j::factor]
        m = col.shape[1]
        if m:
            op(out[:, :m], col, out=out[:, :m])
    assert out.shape[1] == n_out
    return out


def next_level(level: np.ndarray, factor: int) -> np.ndarray:
    """Level ``L+1`` as a ``(2, n_ch, n)`` array from level ``L`` (also ``(2, n_ch, m)``)."""
    mn, mx = reduce_minmax(level[0], level[1], factor)
    return np.stack([mn, mx])


class Level1Builder:
    """Builds level 1 from level-0 blocks fed in time order, carrying partial blocks over."""

    def __init__(self, n_ch: int, n_total: int, factor: int, dtype: np.dtype):
        self.factor = factor
        self.out = np.empty((2, n_ch, -(-n_total // factor)), dtype=dtype)
        self._carry: np.ndarray | None = None
        self._pos = 0

    @property
    def filled(self) -> int:
        """Level-1 columns complete so far."""
        return self._pos

    def feed(self, block: np.ndarray, last: bool = False) -> None:
        """Add the next level-0 columns; ``last`` flushes a trailing partial block."""
        if self._carry is not None:
            block = np.concatenate([self._carry, block], axis=1)
            self._carry = None
        w = block.shape[1]
        keep = w if last else (w // self.factor) * self.factor
        if keep < w:
            self._carry = block[:, keep:].copy()
        if keep == 0:
            return
        mn, mx = reduce_minmax(block[:, :keep], block[:, :keep], self.factor)
        n = mn.shape[1]
        self.out[0, :, self._pos: self._pos + n] = mn
        self.out[1, :, self._pos: self._pos + n] = mx
        self._pos += n


class _Reducer:
    """One level of the cascade: min/max over blocks of ``factor`` columns of the level below,
    fed in time order, a partial block carried to the next feed."""

    def __init__(self, factor: int):
        self.factor = factor
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None

    def feed(self, lo: np.ndarray, hi: np.ndarray,
             last: bool) -> tuple[np.ndarray, np.ndarray] | None:
        if self.lo is not None and self.hi is not None:
            lo = np.concatenate([self.lo, lo], axis=1)
            hi = np.concatenate([self.hi, hi], axis=1)
            self.lo = self.hi = None
        w = lo.shape[1]
        keep = w if last else (w // self.factor) * self.factor
        if keep < w:
            self.lo, self.hi = lo[:, keep:].copy(), hi[:, keep:].copy()
        if keep == 0:
            return None
        return reduce_minmax(lo[:, :keep], hi[:, :keep], self.factor)


class ViewPyramid:
    """Every view level built while level 0 streams by, in bounded memory.

    Level ``L+1`` is reduced from the columns level ``L`` completes, so each level holds only
    a partial block (< ``factor`` columns) and the columns of its unwritten chunk: memory does
    not grow with the recording's length. :meth:`feed` returns the whole chunks now ready to
    write, ``(level index from 0, first column, (2, n_ch, k) array)``; the values equal
    :func:`next_level` applied to whole levels (min and max are exact).
    """

    def __init__(self, lengths: list[int], factor: int, chunk_columns: list[int]):
        self.lengths = list(lengths)
        self.chunks = list(chunk_columns)
        self._reducers = [_Reducer(factor) for _ in lengths]
        self._pending: list[np.ndarray | None] = [None] * len(lengths)
        self._written = [0] * len(lengths)

    def feed(self, block: np.ndarray, last: bool = False) -> list[tuple[int, int, np.ndarray]]:
        """Add the next level-0 columns (``last``: the final ones, flush everything)."""
        ready: list[tuple[int, int, np.ndarray]] = []
        lo, hi = block, block
        for li, red in enumerate(self._reducers):
            got = red.feed(lo, hi, last)
            if got is None:
                break
            lo, hi = got
            new = np.stack([lo, hi])
            held = self._pending[li]
            buf = new if held is None else np.concatenate([held, new], axis=2)
            n = buf.shape[2] if last else buf.shape[2] // self.chunks[li] * self.chunks[li]
            if n:
                ready.append((li, self._written[li], buf[:, :, :n]))
                self._written[li] += n
            self._pending[li] = buf[:, :, n:] if n < buf.shape[2] else None
        return ready
