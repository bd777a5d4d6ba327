"""EDF / EDF+ (C and D) / BDF / BDF+ importer: a hand-written numpy reader.

Why not pyedflib: reading the records with one ``np.fromfile`` and scaling all channels in
vectorised passes runs at the speed of ``np.fromfile`` + scaling and many times faster than
``readSignal`` per channel (``bench/results_edf.md``), with the same float64 values bit for
bit (the tests compare with pyedflib on every real file), and it can read a time window of
records at a time. pyedflib stays the reference in the tests.

What a Recording from an EDF holds (details in ``docs/importers_edf_bids.md``):

- physical float64 samples; signals with the same samples-per-record share a grid (one grid
  per rate, never resampled); labels made unique (``original_label`` kept);
- channel extras: transducer, physical/digital min/max, samples_per_record;
- ``start_time``: header date-time plus the first record's TAL onset (the EDF+ sub-second
  start); event onsets and ``edf_record_onsets`` are seconds from that instant;
- every annotation signal's TALs as events (duration NaN when the TAL gives none);
- EDF+D (or EDF+C whose record onsets jump): records are concatenated (no NaN filling), so
  sample times are *recorded* time; a warning is given, ``edf_gaps`` lists each gap as
  ``[onset, duration]`` (true seconds from ``start_time`` where the gap starts) and
  ``edf_record_onsets`` each record's true onset. Events keep their true onsets.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import math
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._fs import Location
from ..calibration import Calibration
from ..errors import CorruptFileError, TruncatedFileError
from ..recording import Recording, make_unique_labels
from ._edf_header import (
    EdfHeader,
    parse_edf_plus_patient,
    parse_edf_plus_recording,
    parse_header,
    signal_count,
    start_datetime,
)
from ._edf_lazy import EdfSamples, annotation_blocks
from ._edf_records import (
    BinaryReader,
    digital_group,
    digital_samples,
    read_records,
    scale_group,
    scaling,
)
from ._edf_tal import parse_tal_records
from ._registry import Importer, register

__all__ = ["EdfImporter", "read_edf_header"]

#: Label prefixes (EDF+ "type label" convention, e.g. ``EEG Fpz-Cz``) -> channel type.
_PREFIX_TYPES = {
    "EEG": "EEG", "ECG": "ECG", "EKG": "ECG", "EMG": "EMG", "EOG": "EOG", "MEG": "MEG",
    "SEEG": "SEEG", "ECOG": "ECOG", "DBS": "DBS", "ACC": "ACC", "GYRO": "GYRO",
    "RESP": "RESP", "TEMP": "TEMP", "SAO2": "SAO2", "SPO2": "SPO2", "MISC": "MISC",
    "EVENT": "TRIG", "STIM": "TRIG", "TRIG": "TRIG",
}
_TRIGGER_LABELS = {"STATUS", "TRIGGER", "TRIG", "STI 014", "EVENT"}
_STATUS_MODES = ("physical", "digital", "trigger")
_GAP_TOLERANCE = 1e-6  # s; TAL onsets carry 100 ns resolution in practice
_MAX_START_OFFSET = 1e9  # s (~32 years): a larger first TAL onset is corrupt, not late


def channel_type(label: str, default_type: str) -> str:
    """Type from the label: trigger names, then the EDF+ type prefix, else ``default_type``."""
    up = label.strip().upper()
    if up in _TRIGGER_LABELS:
        return "TRIG"
    head, sep, _ = up.partition(" ")
    if sep and head in _PREFIX_TYPES:
        return _PREFIX_TYPES[head]
    return _PREFIX_TYPES.get(up, default_type)


class _Source:
    """An open EDF/BDF: the parsed header and a way to read records (local or fsspec)."""

    def __init__(self, loc: Location, on_truncated: str = "raise"):
        if on_truncated not in ("raise", "warn"):
            raise ValueError(f"on_truncated must be 'raise' or 'warn', got {on_truncated!r}")
        self.loc = loc
        self._stack = contextlib.ExitStack()
        try:
            raw: BinaryReader = self._stack.enter_context(loc.fs.open(loc.path, "rb"))
            self.compressed = raw.read(2) == b"\x1f\x8b"  # gzip by content, not by name
            raw.seek(0)
            self.fh: BinaryReader = (self._stack.enter_context(gzip.GzipFile(fileobj=raw))
                                  if self.compressed else raw)
            head = self._read(256)
            if not head:
                raise TruncatedFileError("the file is empty (0 bytes)", path=loc.url)
            ns = signal_count(head)
            if ns is not None:
                head += self._read(256 * ns)
            size = None if self.compressed else int(loc.fs.size(loc.path))
            data_bytes = None if size is None else size - len(head)
            self.header = parse_header(head, loc.url, data_bytes, on_truncated)
        except BaseException:
            self._stack.close()
            raise
        self.local_path = loc.path if loc.is_local and not self.compressed else None

    def _read(self, n: int) -> bytes:
        with _gzip_errors(self.loc.url):
            return self.fh.read(n)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, first: int, count: int) -> np.ndarray:
        with _gzip_errors(self.loc.url):
            return read_records(self.fh, self.local_path, self.header, first, count)


@contextlib.contextmanager
def _gzip_errors(url: str) -> Iterator[None]:
    """Decompression failures of a ``.gz`` file as typed errors naming it."""
    try:
        yield
    except EOFError as exc:
        raise TruncatedFileError(f"the gzip stream ends early ({exc})", path=url) from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise CorruptFileError(f"the gzip stream is corrupt ({exc})", path=url) from exc


def read_edf_header(loc: Location) -> EdfHeader:
    """Only the parsed header (for listing a dataset without reading samples)."""
    with _Source(loc) as src:
        return src.header


def _base_metadata(h: EdfHeader, url: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"source_file": url, "source_format": "edf",
                            "start_time": start_datetime(h)}
    if h.is_plus:
        patient = parse_edf_plus_patient(h.patient)
        meta["subject"] = patient["code"]
        meta["edf_patient"] = patient
        meta["edf_recording"] = parse_edf_plus_recording(h.recording)
    else:
        meta["subject"] = None
    meta.update({
        "edf_file_type": h.file_type, "edf_patient_field": h.patient,
        "edf_recording_field": h.recording, "edf_reserved": h.reserved,
        "edf_record_duration": h.record_duration, "edf_n_records": h.n_records,
    })
    if h.raw_fields:
        meta["edf_header_raw"] = dict(h.raw_fields)
    return meta


class _Decoder:
    """Turns runs of records into Recordings; keeps state across blocks (start offset, gaps)."""

    def __init__(self, src: _Source, default_type: str, status: str, digital: bool = True):
        if status not in _STATUS_MODES:
            raise ValueError(f"status must be one of {_STATUS_MODES}, got {status!r}")
        self.src, self.h = src, src.header
        self.default_type, self.status, self.digital = default_type, status, digital
        h = self.h
        self.data_idx = h.signal_indices
        self.ann_idx = h.annotation_indices
        raw_labels = [h.labels[i] or f"ch{i + 1}" for i in self.data_idx]
        self.labels, renamed = make_unique_labels(raw_labels)
        self.infos: list[dict[str, Any]] = []
        for lab, i in zip(self.labels, self.data_idx):
            info: dict[str, Any] = {
                "transducer": h.transducers[i],
                "physical_min": float(h.physical_min[i]),
                "physical_max": float(h.physical_max[i]),
                "digital_min": int(h.digital_min[i]), "digital_max": int(h.digital_max[i]),
                "samples_per_record": int(h.samples_per_record[i]),
            }
            if lab in renamed or not h.labels[i]:
                info["original_label"] = h.labels[i]
            self.infos.append(info)
        self.types = [channel_type(lab, default_type) for lab in raw_labels]
        self.groups: dict[int, list[int]] = {}  # samples per record -> positions in data_idx
        for pos, i in enumerate(self.data_idx):
            self.groups.setdefault(int(h.samples_per_record[i]), []).append(pos)
        self.meta = _base_metadata(h, src.loc.url)
        # EDF+ start offset: from the first record's timekeeping TAL, when there are TALs
        self.start_offset: float | None = None if self.ann_idx else 0.0
        self.warned: set[str] = set()  # TAL quirks already warned about (one per file)
        self.prev_end: float | None = None

    def _is_status(self, pos: int) -> bool:
        return self.h.is_bdf and self.types[pos] == "TRIG" and self.status != "physical"

    def _timing(self, first: int, onsets: np.ndarray) -> tuple[list[float], list[list[float]]]:
        """Record onsets (s from start_time) and the gaps before each record of this run."""
        if self.start_offset is None:
            self.start_offset = float(onsets[0]) if onsets.size else 0.0
            if self.start_offset < 0:
                raise CorruptFileError(f"first data record starts at {self.start_offset} s, "
                                       "before the header start time", path=self.h.path)
            if self.start_offset > _MAX_START_OFFSET:
                raise CorruptFileError(
                    f"data record 0 starts at {self.start_offset:g} s after the header start "
                    f"time (over {_MAX_START_OFFSET:g} s, {_MAX_START_OFFSET / 3.15576e7:.0f}"
                    " years): its timekeeping TAL is corrupt", path=self.h.path)
        rel = onsets - self.start_offset
        dur = self.h.record_duration
        prev = np.concatenate([[self.prev_end if self.prev_end is not None else 0.0],
                               rel[:-1] + dur])
        jump = rel - prev
        gaps = [[float(prev[k]), float(jump[k])] for k in np.flatnonzero(jump > _GAP_TOLERANCE)]
        if (jump < -_GAP_TOLERANCE).any():
            k = int(np.argmax(jump < -_GAP_TOLERANCE))
            warnings.warn(f"{self.h.path}: data record {first + k} starts {-jump[k]:.6g} s "
                          "before the previous one ends (overlapping records)", stacklevel=4)
        if rel.size:
            self.prev_end = float(rel[-1] + dur)
        return rel.tolist(), gaps

    def decode(self, first: int, count: int) -> Recording:
        """A Recording of records ``[first, first + count)``."""
        h = self.h
        records = self.src.records(first, count)
        starts = h.sample_offsets * h.bytes_per_sample
        blocks = [records[:, int(starts[i]): int(starts[i]) + int(h.samples_per_record[i])
                          * h.bytes_per_sample] for i in self.ann_idx]
        dig = digital_samples(records, h)

        def take(idx: list[int], mode: str) -> np.ndarray:
            if mode == "physical":
                return scale_group(dig, h, idx)
            out = digital_group(dig, h, idx)
            if mode == "trigger":
                out &= 0xFFFF
            return out

        return self._assemble(first, blocks, take)

    def lazy(self) -> Recording:
        """The whole file as a Recording whose samples stay in the file until read: only the
        annotation bytes are read now (:mod:`._edf_lazy`)."""
        if self.src.local_path is None:
            raise ValueError("lazy reading needs a local, uncompressed file")
        path = self.src.local_path
        blocks = annotation_blocks(self.h, path, self.ann_idx)
        return self._assemble(0, blocks,
                              lambda idx, mode: EdfSamples(self.h, path, idx, mode))

    def _assemble(self, first: int, blocks: list[np.ndarray],
                  take: Callable[[list[int], str], Any]) -> Recording:
        """Events, timing and metadata from the annotation bytes ``blocks`` of the records
        from ``first``; signals from ``take(signal indices, mode)``."""
        h = self.h
        meta = dict(self.meta)
        events: tuple[list[float], list[float], list[str]] = ([], [], [])
        if self.ann_idx:
            tal = parse_tal_records(blocks, [h.labels[i] for i in self.ann_idx], first, h.path)
            onsets, gaps = self._timing(first, tal.record_onsets)
            events = (tal.onsets, tal.durations, tal.texts)
            for key, note in tal.notes.items():
                if key not in self.warned:
                    self.warned.add(key)
                    warnings.warn(f"{h.path}: {note}", stacklevel=3)
            meta["edf_gaps"] = gaps
            if gaps:
                meta["edf_record_onsets"] = onsets
                warnings.warn(f"{h.path}: {len(gaps)} gap(s) between data records ({h.file_type})"
                              "; samples are concatenated records, gaps listed in "
                              "metadata['edf_gaps']", stacklevel=3)
        start_offset = self.start_offset or 0.0  # set by _timing whenever there are TALs
        start = meta["start_time"]
        if isinstance(start, dt.datetime) and start_offset:
            try:
                meta["start_time"] = start + dt.timedelta(seconds=start_offset)
            except OverflowError:
                raise CorruptFileError(f"start {start} plus the first record's onset "
                                       f"{start_offset:g} s is past year 9999",
                                       path=h.path) from None
        if self.ann_idx:
            meta["edf_start_offset"] = start_offset
        rec = Recording(meta)
        t0 = first * h.record_duration
        if self.data_idx:
            self._add_signals(rec, take, t0)
        if events[0]:
            onset = np.asarray(events[0], dtype=np.float64) - start_offset
            rec.add_events(onset, np.asarray(events[1], dtype=np.float64),
                           np.asarray(events[2], dtype=object))
        return rec

    def _add_signals(self, rec: Recording, take: Callable[[list[int], str], Any],
                     t0: float) -> None:
        h = self.h
        for positions in self.groups.values():
            rate = h.rate(self.data_idx[positions[0]])
            plain = [p for p in positions if not self._is_status(p)]
            # A flat signal (physical_min == physical_max) has no calibration that gives its
            # constant value: it is stored physical, like everything with digital=False.
            flat = {p for p in plain
                    if h.physical_min[self.data_idx[p]] == h.physical_max[self.data_idx[p]]}
            keep = [p for p in plain if p not in flat] if self.digital else []
            phys = [p for p in plain if p not in keep]
            if keep:
                idx = [self.data_idx[p] for p in keep]
                bitvalue, offset = scaling(h, idx)
                cals = [Calibration(gain=g, baseline=-o) for g, o in zip(bitvalue, offset)]
                self._add(rec, keep, take(idx, "digital"), rate, t0, calibration=cals)
            if phys:
                self._add(rec, phys, take([self.data_idx[p] for p in phys], "physical"),
                          rate, t0)
            for p in positions:
                if self._is_status(p):
                    word = take([self.data_idx[p]], "trigger" if self.status == "trigger"
                                else "digital")
                    self._add(rec, [p], word, rate, t0,
                              unit="", extra={"status_encoding": self.status})
        rec.channels = {lab: rec.channels[lab] for lab in self.labels}

    def _add(self, rec: Recording, positions: list[int], data: np.ndarray, rate: float,
             t0: float, unit: str | None = None, extra: dict[str, Any] | None = None,
             calibration: list[Calibration] | None = None) -> None:
        h = self.h
        idx = [self.data_idx[p] for p in positions]
        infos = [{**self.infos[p], **(extra or {})} for p in positions]
        rec.add_channels(
            [self.labels[p] for p in positions], data, rate,
            [h.units[i] if unit is None else unit for i in idx],
            [self.types[p] for p in positions], prefilters=[h.prefilters[i] for i in idx],
            infos=infos, t0=t0, calibration=calibration)


@register
class EdfImporter(Importer):
    """EDF, EDF+ (C/D), BDF, BDF+ (also gzip-compressed ``.edf.gz``/``.bdf.gz``)."""

    name = "edf"
    extensions = (".edf", ".bdf", ".rec", ".edf.gz", ".bdf.gz")
    magic = ((0, b"0       "), (0, b"\xffBIOSEMI"))
    extra = None
    requires = ()
    description = "EDF/EDF+/BDF/BDF+ (numpy reader, bit-identical to pyedflib)"
    supports_lazy = True

    def read(self, loc: Location, *, on_truncated: str = "raise", default_type: str = "EEG",
             status: str = "physical", digital: bool = True, lazy: bool = False,
             **kwargs: Any) -> Recording:
        """Read the whole file (``lazy=True``: only its header and annotations; the samples
        stay in the file and are read a window at a time when used).

        ``on_truncated='warn'`` reads the complete records of a short file instead of raising;
        ``default_type`` is the type of signals whose label has no type prefix (EEG, as MNE);
        ``status`` is how a BDF trigger channel (``Status``) is given: ``'physical'`` (scaled,
        as pyedflib), ``'digital'`` (the exact 24-bit word, int32) or ``'trigger'`` (its low
        16 bits, the BioSemi trigger code, int32). ``digital=True`` (the default) keeps each
        signal's stored integers with its calibration (physical values computed on request,
        bit-identical to pyedflib); ``digital=False`` stores the physical float64 values.
        ``lazy`` needs a local uncompressed file; a gzip or remote file is read whole.
        """
        _no_extra(kwargs, loc)
        with _Source(loc, on_truncated) as src:
            dec = _Decoder(src, default_type, status, digital)
            if lazy and src.local_path is not None:
                return dec.lazy()
            return dec.decode(0, src.header.n_records)

    def iter_blocks(self, loc: Location, block_seconds: float = 60.0, *,
                    on_truncated: str = "raise", default_type: str = "EEG",
                    status: str = "physical", digital: bool = True,
                    **kwargs: Any) -> Iterator[Recording]:
        """Yield whole data records, about ``block_seconds`` at a time, reading only those.

        Each block's grids start at ``t0`` = first record index x record duration (recorded
        time, as in :meth:`read`); its events are the TALs stored in its records.
        """
        _no_extra(kwargs, loc)
        if not (block_seconds > 0 and math.isfinite(block_seconds)):
            raise ValueError(f"block_seconds must be a positive number, got {block_seconds!r}")
        with _Source(loc, on_truncated) as src:
            h = src.header
            dec = _Decoder(src, default_type, status, digital)
            per = (max(1, int(block_seconds / h.record_duration + 1e-9))
                   if h.record_duration > 0 else max(h.n_records, 1))
            if h.n_records == 0:
                yield dec.decode(0, 0)
                return
            for first in range(0, h.n_records, per):
                yield dec.decode(first, min(per, h.n_records - first))


def _no_extra(kwargs: dict[str, Any], loc: Location) -> None:
    if kwargs:
        raise TypeError(f"{loc.url}: the edf importer does not take {sorted(kwargs)}")
