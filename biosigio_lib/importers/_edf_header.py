"""EDF/EDF+/BDF/BDF+ header parsing: the fixed 256-byte header and the per-signal fields.

Kept apart from the reader so the (strict) validation is testable on its own: every field
that does not parse or holds an impossible value raises :class:`CorruptFileError` naming
the field (and signal), never a silent guess.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import CorruptFileError, TruncatedFileError

__all__ = ["ANNOTATION_LABELS", "EdfHeader", "parse_edf_plus_patient",
           "parse_edf_plus_recording", "parse_header"]

EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"
ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
#: (name, width) of each per-signal field, in file order.
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("unit", 8), ("physical_min", 8),
                  ("physical_max", 8), ("digital_min", 8), ("digital_max", 8),
                  ("prefilter", 80), ("samples_per_record", 8), ("reserved", 32))


@dataclass(frozen=True)
class EdfHeader:
    """Everything the header says, parsed and validated (arrays are per signal, file order)."""

    path: str
    is_bdf: bool
    version: bytes
    patient: str
    recording: str
    startdate: str
    starttime: str
    header_bytes: int
    reserved: str
    n_records: int  # as resolved (-1 in the file becomes the count from the file size)
    n_records_declared: int
    record_duration_text: str
    record_duration: float
    labels: tuple[str, ...]
    transducers: tuple[str, ...]
    units: tuple[str, ...]
    prefilters: tuple[str, ...]
    signal_reserved: tuple[str, ...]
    physical_min: np.ndarray
    physical_max: np.ndarray
    digital_min: np.ndarray
    digital_max: np.ndarray
    samples_per_record: np.ndarray

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.is_bdf else 2

    @property
    def n_signals(self) -> int:
        return len(self.labels)

    @property
    def is_plus(self) -> bool:
        """EDF+ / BDF+ (reserved field starts with ``EDF+`` or ``BDF+``)."""
        return self.reserved[:4] in ("EDF+", "BDF+")

    @property
    def is_discontinuous(self) -> bool:
        return self.is_plus and self.reserved[4:5] == "D"

    @property
    def file_type(self) -> str:
        base = "BDF" if self.is_bdf else "EDF"
        return f"{base}+{self.reserved[4:5] or 'C'}" if self.is_plus else base

    @property
    def record_bytes(self) -> int:
        return int(self.samples_per_record.sum()) * self.bytes_per_sample

    @property
    def sample_offsets(self) -> np.ndarray:
        """Offset of each signal inside a record, in samples."""
        return np.concatenate([[0], np.cumsum(self.samples_per_record)[:-1]]).astype(np.int64)

    @property
    def annotation_indices(self) -> list[int]:
        """Signals holding TALs (only meaningful, hence only used, in EDF+/BDF+)."""
        if not self.is_plus:
            return []
        return [i for i, lab in enumerate(self.labels) if lab in ANNOTATION_LABELS]

    @property
    def signal_indices(self) -> list[int]:
        ann = set(self.annotation_indices)
        return [i for i in range(self.n_signals) if i not in ann]

    def rate(self, i: int) -> float:
        """Sampling rate of signal ``i``: samples per record / record duration, exactly."""
        spr = int(self.samples_per_record[i])
        try:
            return float(Fraction(spr) / Fraction(self.record_duration_text))
        except (ValueError, ZeroDivisionError):
            return spr / self.record_duration


def _text(raw: bytes) -> str:
    """Header text: ASCII by the spec; tolerate UTF-8, then Latin-1, never fail."""
    try:
        return raw.decode("utf-8").strip(" \x00")
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip(" \x00")


def _int(text: str, field: str, path: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not value.is_integer():
        raise CorruptFileError(f"header field {field} is {text!r}, not an integer", path=path)
    return int(value)


def _float(text: str, field: str, path: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CorruptFileError(f"header field {field} is {text!r}, not a number",
                               path=path) from None
    if not math.isfinite(value):
        raise CorruptFileError(f"header field {field} is {text!r}", path=path)
    return value


def parse_header(head: bytes, path: str, data_bytes: int | None,
                 on_truncated: str = "raise") -> EdfHeader:
    """Parse and validate a header; ``data_bytes`` (file size minus header) resolves -1 records.

    ``data_bytes`` is None when the size is unknown (compressed input): then a record count
    of -1 cannot be resolved and is an error. ``on_truncated='warn'`` reads the complete
    records of a file shorter than its header promises (with a warning) instead of raising.
    """
    if len(head) < 256:
        raise TruncatedFileError(f"only {len(head)} bytes: shorter than the 256-byte EDF/BDF "
                                 "header", path=path)
    version = head[:8]
    if version not in (EDF_MAGIC, BDF_MAGIC):
        raise CorruptFileError(f"version field {version!r} is neither EDF ('0       ') nor "
                               "BDF ('\\xffBIOSEMI')", path=path)
    is_bdf = version == BDF_MAGIC
    fixed = {name: _text(head[a:b]) for name, a, b in (
        ("patient", 8, 88), ("recording", 88, 168), ("startdate", 168, 176),
        ("starttime", 176, 184), ("header_bytes", 184, 192), ("reserved", 192, 236),
        ("n_records", 236, 244), ("record_duration", 244, 252), ("n_signals", 252, 256))}
    ns = _int(fixed["n_signals"], "number of signals", path)
    if ns <= 0:
        raise CorruptFileError(f"number of signals is {ns}; it must be at least 1", path=path)
    header_bytes = _int(fixed["header_bytes"], "header size", path)
    if header_bytes != 256 * (ns + 1):
        raise CorruptFileError(f"header size field says {header_bytes} bytes but {ns} signals "
                               f"need 256 * ({ns} + 1) = {256 * (ns + 1)}", path=path)
    if len(head) < header_bytes:
        raise TruncatedFileError(f"file ends inside the header ({len(head)} of {header_bytes} "
                                 "bytes)", path=path)
    fields: dict[str, list[str]] = {}
    pos = 256
    for name, width in _SIGNAL_FIELDS:
        fields[name] = [_text(head[pos + i * width: pos + (i + 1) * width]) for i in range(ns)]
        pos += ns * width
    ints = {k: np.array([_int(v, f"{k} of signal {i + 1} ({fields['label'][i]!r})", path)
                         for i, v in enumerate(fields[k])], dtype=np.int64)
            for k in ("digital_min", "digital_max", "samples_per_record")}
    floats = {k: np.array([_float(v, f"{k} of signal {i + 1} ({fields['label'][i]!r})", path)
                           for i, v in enumerate(fields[k])], dtype=np.float64)
              for k in ("physical_min", "physical_max")}
    dur_text = fixed["record_duration"]
    duration = _float(dur_text, "data record duration", path)
    header = EdfHeader(
        path=path, is_bdf=is_bdf, version=version, patient=fixed["patient"],
        recording=fixed["recording"], startdate=fixed["startdate"],
        starttime=fixed["starttime"], header_bytes=header_bytes, reserved=fixed["reserved"],
        n_records=0, n_records_declared=_int(fixed["n_records"], "number of records", path),
        record_duration_text=dur_text, record_duration=duration,
        labels=tuple(fields["label"]), transducers=tuple(fields["transducer"]),
        units=tuple(fields["unit"]), prefilters=tuple(fields["prefilter"]),
        signal_reserved=tuple(fields["reserved"]),
        physical_min=floats["physical_min"], physical_max=floats["physical_max"],
        digital_min=ints["digital_min"], digital_max=ints["digital_max"],
        samples_per_record=ints["samples_per_record"])
    _validate(header)
    return _resolve_records(header, data_bytes, on_truncated)


def _validate(h: EdfHeader) -> None:
    """Reject impossible values: they would give wrong samples, not just odd metadata."""
    path = h.path
    if h.record_duration < 0:
        raise CorruptFileError(f"data record duration is {h.record_duration_text!r} (< 0)",
                               path=path)
    bad = np.flatnonzero(h.samples_per_record <= 0)
    if bad.size:
        i = int(bad[0])
        raise CorruptFileError(f"signal {i + 1} ({h.labels[i]!r}) has "
                               f"{int(h.samples_per_record[i])} samples per record", path=path)
    lo, hi = (-(2**23), 2**23 - 1) if h.is_bdf else (-(2**15), 2**15 - 1)
    data = h.signal_indices
    for i in data:
        dmin, dmax = int(h.digital_min[i]), int(h.digital_max[i])
        if not (lo <= dmin < dmax <= hi):
            raise CorruptFileError(
                f"signal {i + 1} ({h.labels[i]!r}): digital range [{dmin}, {dmax}] is empty or "
                f"outside the {'24' if h.is_bdf else '16'}-bit range [{lo}, {hi}]", path=path)
        if h.physical_min[i] == h.physical_max[i]:
            raise CorruptFileError(f"signal {i + 1} ({h.labels[i]!r}): physical minimum equals "
                                   f"maximum ({h.physical_min[i]}); no scaling possible",
                                   path=path)
    if data and h.record_duration == 0:
        raise CorruptFileError("data record duration is 0 but the file has "
                               f"{len(data)} ordinary signal(s): their rate is undefined",
                               path=path)


def _resolve_records(h: EdfHeader, data_bytes: int | None, on_truncated: str) -> EdfHeader:
    """Fix ``n_records``: -1 (unknown) is computed from the size; a short file is truncated."""
    declared = h.n_records_declared
    rb = h.record_bytes
    if declared < -1:
        raise CorruptFileError(f"number of data records is {declared}", path=h.path)
    if data_bytes is None:
        if declared == -1:
            raise CorruptFileError("number of data records is -1 (unknown) and the data size "
                                   "cannot be known for compressed input; decompress first",
                                   path=h.path)
        return replace(h, n_records=declared)
    available, extra = divmod(data_bytes, rb)
    if declared == -1:
        if extra:
            warnings.warn(f"{h.path}: header gives -1 records; using the {available} complete "
                          f"records in the file and ignoring {extra} trailing bytes",
                          stacklevel=4)
        return replace(h, n_records=available)
    if available < declared and on_truncated == "warn":
        warnings.warn(f"{h.path}: header promises {declared} data records but the file holds "
                      f"only {available} complete ones; reading those ({extra} trailing bytes "
                      "of a partial record dropped)", stacklevel=4)
        return replace(h, n_records=available)
    if available < declared:
        raise TruncatedFileError(
            f"header promises {declared} data records ({declared * rb} bytes) but the file "
            f"holds {data_bytes} bytes after the header ({available} complete records); pass "
            "on_truncated='warn' to read the complete records", path=h.path,
            declared=declared, available=available)
    if data_bytes > declared * rb:
        warnings.warn(f"{h.path}: {data_bytes - declared * rb} bytes after the {declared} "
                      "declared data records are ignored", stacklevel=4)
    return replace(h, n_records=declared)


def _subfield(text: str) -> str | None:
    """EDF+ subfield: ``X`` means unknown; underscores stand for spaces."""
    return None if text in ("", "X") else text.replace("_", " ")


def _edf_date(text: str) -> dt.date | None:
    m = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", text)
    if not m or m.group(2).upper() not in _MONTHS:
        return None
    try:
        return dt.date(int(m.group(3)), _MONTHS[m.group(2).upper()], int(m.group(1)))
    except ValueError:
        return None


def parse_edf_plus_patient(field: str) -> dict[str, Any]:
    """EDF+ patient field: ``code sex birthdate name [additional...]``."""
    parts = field.split(" ")
    parts += [""] * (4 - len(parts))
    birth = _subfield(parts[2])
    return {
        "code": _subfield(parts[0]),
        "sex": {"M": "male", "F": "female"}.get(parts[1].upper()) if parts[1] != "X" else None,
        "birthdate": _edf_date(birth) or birth if birth else None,
        "name": _subfield(parts[3]),
        "additional": " ".join(parts[4:]).strip() or None,
    }


def parse_edf_plus_recording(field: str) -> dict[str, Any]:
    """EDF+ recording field: ``Startdate dd-MMM-yyyy admincode technician equipment [add.]``."""
    parts = field.split(" ")
    if parts[0] != "Startdate":
        return {"additional": field or None}
    parts += [""] * (5 - len(parts))
    return {
        "startdate": _edf_date(parts[1]),
        "admincode": _subfield(parts[2]),
        "technician": _subfield(parts[3]),
        "equipment": _subfield(parts[4]),
        "additional": " ".join(parts[5:]).strip() or None,
    }


def start_datetime(h: EdfHeader) -> dt.datetime | None:
    """Header start (whole seconds); EDF+ 4-digit year preferred; None (warned) if invalid."""
    d = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d)", h.startdate)
    t = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d)", h.starttime)
    if not d or not t:
        warnings.warn(f"{h.path}: start date/time {h.startdate!r} {h.starttime!r} is not "
                      "dd.mm.yy hh.mm.ss; start_time left unset", stacklevel=3)
        return None
    day, month, yy = (int(x) for x in d.groups())
    year = 1900 + yy if yy >= 85 else 2000 + yy  # the EDF clipping-date rule
    if h.is_plus:
        plus = parse_edf_plus_recording(h.recording).get("startdate")
        if isinstance(plus, dt.date) and plus.year % 100 == yy:
            year = plus.year
    try:
        return dt.datetime(year, month, day, *(int(x) for x in t.groups()))
    except ValueError:
        warnings.warn(f"{h.path}: start date/time {h.startdate!r} {h.starttime!r} is not a "
                      "valid date; start_time left unset", stacklevel=3)
        return None
