"""File-backed sample arrays: a Recording of any length without holding its samples.

A :class:`LazySamples` looks like a read-only ``(n_channels, n_samples)`` array to the code
that slices it (the archive and store writers read a window at a time; ``Recording.select``
reads what it keeps), and reads only the part of the source file that a slice needs. A
whole channel or the whole array is read only when asked for explicitly (``stored(label)``,
``np.asarray``), so converting a 24 h recording needs memory for a window, not for the file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["WINDOW_SAMPLES", "LazySamples"]

#: Samples a strided read covers at a time: bounds its working memory.
WINDOW_SAMPLES = 1 << 16


def _rows(key: Any, n: int) -> np.ndarray | None:
    """Row selection as an index array (None for all rows)."""
    if isinstance(key, slice):
        if key == slice(None):
            return None
        return np.arange(n)[key]
    idx = np.asarray(key)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"row index out of range for {n} rows")
    return np.where(idx < 0, idx + n, idx)


class LazySamples(ABC):
    """A read-only ``(n_channels, n_samples)`` array whose slices are read from a file."""

    ndim = 2

    def __init__(self, n_channels: int, n_samples: int, dtype: Any):
        self.shape = (int(n_channels), int(n_samples))
        self.dtype: np.dtype[Any] = np.dtype(dtype)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    @abstractmethod
    def read(self, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of ``rows`` (None: all), a new C-contiguous array."""

    def read_strided(self, rows: np.ndarray | None, start: int, stop: int,
                     step: int) -> np.ndarray:
        """Every ``step``-th sample of ``[start, stop)``: window by window (bounded memory);
        sources override it to skip what lies between far-apart samples."""
        idx = np.arange(start, stop, step)
        n_rows = self.shape[0] if rows is None else len(rows)
        out = np.empty((n_rows, idx.size), dtype=self.dtype)
        span = max(step, WINDOW_SAMPLES - WINDOW_SAMPLES % step)
        pos = 0
        for lo in range(start, stop, span):
            hi = min(stop, lo + span)
            part = self.read(rows, lo, hi)[:, ::step]
            out[:, pos: pos + part.shape[1]] = part
            pos += part.shape[1]
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2:
            raise IndexError("a LazySamples takes [rows, samples]")
        rkey, ckey = key
        single = isinstance(rkey, int | np.integer)
        rows = _rows([int(rkey)] if single else rkey, self.shape[0])
        if isinstance(ckey, int | np.integer):
            c = int(ckey) + (self.shape[1] if ckey < 0 else 0)
            out = self.read(rows, c, c + 1)[:, 0]
        elif isinstance(ckey, slice):
            start, stop, step = ckey.indices(self.shape[1])
            if step < 0:
                raise IndexError("a LazySamples does not read backwards")
            stop = max(start, stop)
            out = (self.read(rows, start, stop) if step == 1
                   else self.read_strided(rows, start, stop, step))
        else:
            raise IndexError(f"unsupported sample index {ckey!r}")
        return out[0] if single else out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.read(None, 0, self.shape[1])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.shape[0]}x{self.shape[1]} {self.dtype}>"
