"""EDF/BDF data records -> physical samples, vectorised over channels and records.

Scaling follows EDFlib (hence pyedflib) operation for operation so values are bit-identical:
``bitvalue = (pmax - pmin) / (dmax - dmin)``, ``offset = pmax / bitvalue - dmax`` and
``physical = bitvalue * (offset + digital)``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import TruncatedFileError
from ._edf_header import EdfHeader

__all__ = ["BinaryReader", "digital_group", "digital_samples", "raw_channel", "read_records",
           "scale_group", "scaling"]


class BinaryReader(Protocol):
    """What is read from: a binary file (fsspec's, or a ``gzip.GzipFile`` over one)."""

    def read(self, size: int = ..., /) -> bytes: ...
    def seek(self, offset: int, whence: int = ..., /) -> int: ...
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def read_records(fh: BinaryReader | None, local_path: str | None, h: EdfHeader, first: int,
                 count: int) -> np.ndarray:
    """Bytes of ``count`` records from ``first`` as a ``(count, record_bytes)`` uint8 array.

    A local uncompressed file is read with one ``np.fromfile`` call; anything else (fsspec,
    gzip) with ``readinto`` on the open file object.
    """
    rb = h.record_bytes
    nbytes = count * rb
    start = h.header_bytes + first * rb
    if local_path is not None:
        buf = np.fromfile(local_path, dtype=np.uint8, count=nbytes, offset=start)
    elif fh is None:
        raise TypeError("read_records needs an open file or a local path")
    else:
        fh.seek(start)
        buf = np.empty(nbytes, dtype=np.uint8)
        view = buf.data  # a writable memoryview of buf
        got = 0
        while got < nbytes:
            n = fh.readinto(view[got:])
            if not n:
                break
            got += n
        buf = buf[:got]
    if buf.size != nbytes:
        raise TruncatedFileError(f"file ends inside data record {first + buf.size // rb} "
                                 f"(expected {nbytes} bytes from offset {start}, got "
                                 f"{buf.size})", path=h.path)
    return buf.reshape(count, rb)


def digital_samples(records: np.ndarray, h: EdfHeader) -> np.ndarray:
    """The records as signed integers, ``(n_records, samples_per_record_total)``.

    EDF: an int16 view (no copy). BDF: 24-bit little-endian words sign-extended to int32.
    """
    if not h.is_bdf:
        return records.view("<i2")
    n = records.shape[0]
    triples = records.reshape(n, -1, 3)
    wide = np.zeros((n, triples.shape[1], 4), dtype=np.uint8)
    wide[:, :, 1:] = triples
    return wide.view("<i4").reshape(n, -1) >> 8  # arithmetic shift keeps the sign


def scaling(h: EdfHeader, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(bitvalue, offset)`` per signal, computed exactly as EDFlib does.

    Quirks the header validation let through (with a warning): a swapped digital range
    (``digital_min > digital_max``) is scaled through the same two (digital, physical)
    points with both pairs swapped back, so it equals pyedflib's value for the equivalent
    legal file; a flat signal (``physical_min == physical_max``) gets ``(0, 0)`` and
    :func:`scale_group` fills it with ``physical_min``.
    """
    pmin, pmax = h.physical_min[idx], h.physical_max[idx]
    dmin = h.digital_min[idx].astype(np.float64)
    dmax = h.digital_max[idx].astype(np.float64)
    swap = dmin > dmax
    if swap.any():
        pmin, pmax = np.where(swap, pmax, pmin), np.where(swap, pmin, pmax)
        dmin, dmax = np.where(swap, dmax, dmin), np.where(swap, dmin, dmax)
    flat = pmin == pmax
    if flat.any():
        with np.errstate(all="ignore"):
            bitvalue = np.where(flat, 0.0, (pmax - pmin) / (dmax - dmin))
            offset = np.where(flat, 0.0, pmax / bitvalue - dmax)
        return bitvalue, offset
    bitvalue = (pmax - pmin) / (dmax - dmin)
    offset = pmax / bitvalue - dmax
    return bitvalue, offset


def _runs(idx: list[int]) -> list[tuple[int, int]]:
    """Split sorted signal indices into ``(position, length)`` runs of consecutive indices."""
    runs: list[tuple[int, int]] = []
    start = 0
    for k in range(1, len(idx) + 1):
        if k == len(idx) or idx[k] != idx[k - 1] + 1:
            runs.append((start, k - start))
            start = k
    return runs


def scale_group(dig: np.ndarray, h: EdfHeader, idx: list[int]) -> np.ndarray:
    """Physical samples of signals ``idx`` (same samples per record): ``(k, n_rec * spr)``.

    Signals adjacent in the record are converted in one strided ufunc call (int -> float64
    add, then in-place multiply): two passes over the output, no per-sample Python.
    """
    n = dig.shape[0]
    s = int(h.samples_per_record[idx[0]])
    offsets = h.sample_offsets
    bitvalue, offset = scaling(h, idx)
    out = np.empty((len(idx), n * s), dtype=np.float64)
    for pos, m in _runs(idx):
        o = int(offsets[idx[pos]])
        src = dig[:, o: o + m * s].reshape(n, m, s).transpose(1, 0, 2)
        dst = out[pos: pos + m].reshape(m, n, s)
        np.add(src, offset[pos: pos + m, None, None], out=dst)
        np.multiply(dst, bitvalue[pos: pos + m, None, None], out=dst)
    flat = np.flatnonzero(h.physical_min[idx] == h.physical_max[idx])
    if flat.size:  # gain 0: every sample is physical_min (warned in the header)
        out[flat] = h.physical_min[idx][flat, None]
    return out


def digital_group(dig: np.ndarray, h: EdfHeader, idx: list[int]) -> np.ndarray:
    """Digital samples of signals ``idx`` (same samples per record): ``(k, n_rec * spr)``,
    int16 for EDF and int32 for BDF, gathered from the records in one strided copy a run."""
    n = dig.shape[0]
    s = int(h.samples_per_record[idx[0]])
    offsets = h.sample_offsets
    out = np.empty((len(idx), n * s), dtype=dig.dtype)
    for pos, m in _runs(idx):
        o = int(offsets[idx[pos]])
        src = dig[:, o: o + m * s].reshape(n, m, s).transpose(1, 0, 2)
        out[pos: pos + m].reshape(m, n, s)[...] = src
    return out


def raw_channel(dig: np.ndarray, h: EdfHeader, i: int) -> np.ndarray:
    """The digital samples of one signal as a contiguous int32 array."""
    o, s = int(h.sample_offsets[i]), int(h.samples_per_record[i])
    return np.ascontiguousarray(dig[:, o: o + s], dtype=np.int32).reshape(-1)
