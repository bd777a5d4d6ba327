"""File-backed EDF/BDF signals: a window of samples reads only the records that hold it.

Reads use the same functions as the whole-file reader (``read_records``, ``digital_group``,
``scale_group``), so a window is bit-identical to the same slice of a whole read.
"""

from __future__ import annotations

import numpy as np

from ..lazy import LazySamples
from ._edf_header import EdfHeader
from ._edf_records import digital_group, digital_samples, read_records, scale_group

__all__ = ["EdfSamples", "annotation_blocks"]

#: Bytes of records one read covers at most (a window's working memory).
_READ_BYTES = 32 << 20
_MODES = ("digital", "physical", "trigger")


class EdfSamples(LazySamples):
    """Signals ``idx`` (one samples-per-record group) of a local, uncompressed EDF/BDF.

    ``mode``: ``'digital'`` the stored integers (int16 EDF, int32 BDF), ``'physical'``
    EDFlib-scaled float64, ``'trigger'`` the low 16 bits of a BDF status word.
    """

    def __init__(self, h: EdfHeader, path: str, idx: list[int], mode: str = "digital"):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.h, self.path, self.idx, self.mode = h, path, list(idx), mode
        self.spr = int(h.samples_per_record[idx[0]])
        dtype = np.float64 if mode == "physical" else (np.int32 if h.is_bdf else np.int16)
        super().__init__(len(idx), h.n_records * self.spr, dtype)

    def _decode(self, first: int, count: int, idx: list[int]) -> np.ndarray:
        dig = digital_samples(read_records(None, self.path, self.h, first, count), self.h)
        if self.mode == "physical":
            return scale_group(dig, self.h, idx)
        out = digital_group(dig, self.h, idx)
        if self.mode == "trigger":
            out &= 0xFFFF
        return out

    def read(self, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
        idx = self.idx if rows is None else [self.idx[int(r)] for r in rows]
        out = np.empty((len(idx), max(0, stop - start)), dtype=self.dtype)
        if stop <= start:
            return out
        per = max(1, _READ_BYTES // max(self.h.record_bytes, 1))
        first, last = start // self.spr, -(-stop // self.spr)
        pos = 0
        for r0 in range(first, last, per):  # a whole channel is read in bounded steps
            r1 = min(last, r0 + per)
            lo = max(start, r0 * self.spr) - r0 * self.spr
            hi = min(stop, r1 * self.spr) - r0 * self.spr
            part = self._decode(r0, r1 - r0, idx)
            out[:, pos: pos + hi - lo] = part[:, lo:hi]
            pos += hi - lo
        return out

    def read_strided(self, rows: np.ndarray | None, start: int, stop: int,
                     step: int) -> np.ndarray:
        if step < self.spr:
            return super().read_strided(rows, start, stop, step)
        idx = self.idx if rows is None else [self.idx[int(r)] for r in rows]
        want = np.arange(start, stop, step)
        out = np.empty((len(idx), want.size), dtype=self.dtype)
        for j, k in enumerate(want.tolist()):  # one record per sample: far apart
            rec = k // self.spr
            out[:, j] = self._decode(rec, 1, idx)[:, k - rec * self.spr]
        return out


def annotation_blocks(h: EdfHeader, path: str, ann_idx: list[int]) -> list[np.ndarray]:
    """The bytes of each annotation signal in every record, ``(n_records, nbytes)`` each.

    Read through a memory map a slice of records at a time, so only the pages holding
    annotation bytes are touched (a few KB a record, not the whole file).
    """
    rb = h.record_bytes
    starts = h.sample_offsets * h.bytes_per_sample
    spans = [(int(starts[i]), int(starts[i]) + int(h.samples_per_record[i]) * h.bytes_per_sample)
             for i in ann_idx]
    out = [np.empty((h.n_records, b - a), dtype=np.uint8) for a, b in spans]
    if h.n_records == 0 or not spans:
        return out
    per = max(1, (256 << 20) // max(rb, 1))
    for r0 in range(0, h.n_records, per):
        r1 = min(h.n_records, r0 + per)
        mm = np.memmap(path, dtype=np.uint8, mode="r", offset=h.header_bytes + r0 * rb,
                       shape=(r1 - r0, rb))
        try:
            for dst, (a, b) in zip(out, spans):
                dst[r0:r1] = mm[:, a:b]
        finally:
            del mm
    return out
