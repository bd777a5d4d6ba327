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
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import CorruptFileError, TruncatedFileError

__all__ = ["ANNOTATION_LABELS", "EdfHeader", "parse_edf_plus_patient",
           "parse_edf_plus_recording", "parse_header", "signal_count"]

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
    #: raw bytes of every field that was not printable ASCII (``"label of signal 2"``...)
    raw_fields: dict[str, bytes] = field(default_factory=dict)

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
        """Signals holding TALs (by label; also under a plain EDF header, a known quirk)."""
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
            return spr / self.record_duration if self.record_duration else math.inf
        except OverflowError:
            return math.inf


_PRINTABLE = bytes(range(32, 127))
#: The largest count an 8-character field can state without an exponent.
_FIELD_MAX = 99_999_999
_MAX_SIGNALS = 9999  # a 4-character field
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_FIX_HINT = "fix the header (e.g. with EDFbrowser's header editor) and read it again"


def _text(raw: bytes) -> tuple[str, bool]:
    """Header text and whether it was irregular (bytes outside printable ASCII).

    The spec says printable ASCII padded with spaces. Writers also pad with NUL, stop a
    C string with NUL and leave junk behind it, or write Latin-1/UTF-8: the text is taken
    up to the first NUL, decoded as UTF-8 if valid else Latin-1 (never fails), stripped.
    """
    irregular = bool(raw.translate(None, _PRINTABLE))
    cut = raw.split(b"\x00", 1)[0] if irregular else raw
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError:
        text = cut.decode("latin-1")
    return text.strip(" "), irregular


def _number(text: str, what: str, path: str, *, integer: bool,
            lo: float = -math.inf, hi: float = math.inf,
            commas: list[str] | None = None) -> Any:
    """A decimal number from a header field, range-checked: an int if ``integer``.

    A real (not integer) field written with one decimal comma (``-3276,8``, a writer using
    its locale) is read as a decimal point when ``commas`` is given; ``what`` is appended
    to it so the caller can warn.
    """
    if (commas is not None and not integer and text.count(",") == 1 and "." not in text
            and _NUMBER.fullmatch(text.replace(",", "."))):
        commas.append(what)
        text = text.replace(",", ".")
    if not _NUMBER.fullmatch(text):
        raise CorruptFileError(f"header field {what} is {text!r}, not a number; {_FIX_HINT}",
                               path=path)
    if integer and _INTEGER.fullmatch(text):
        value: Any = int(text)
    else:
        value = float(text)
        if not math.isfinite(value):
            raise CorruptFileError(f"header field {what} is {text!r}, out of range; "
                                   f"{_FIX_HINT}", path=path)
        if integer:
            if not value.is_integer():
                raise CorruptFileError(f"header field {what} is {text!r}, not an integer; "
                                       f"{_FIX_HINT}", path=path)
            value = int(value)
    if not lo <= value <= hi:
        raise CorruptFileError(f"header field {what} is {text!r}, outside [{_fmt(lo)}, "
                               f"{_fmt(hi)}]; {_FIX_HINT}", path=path)
    return value


def _fmt(bound: float) -> str:
    return str(int(bound)) if math.isfinite(bound) else str(bound)


def signal_count(head: bytes) -> int | None:
    """The number of signals in a 256-byte header, or None if it is not a sane count."""
    try:
        ns = _number(_text(head[252:256])[0], "number of signals", "", integer=True,
                     lo=1, hi=_MAX_SIGNALS)
    except CorruptFileError:
        return None
    return int(ns)


def _signal(i: int, labels: list[str]) -> str:
    return f"signal {i + 1} ({labels[i]!r})"


def parse_header(head: bytes, path: str, data_bytes: int | None,
                 on_truncated: str = "raise") -> EdfHeader:
    """Parse and validate a header; ``data_bytes`` (file size minus header) resolves -1 records.

    ``data_bytes`` is None when the size is unknown (compressed input): then a record count
    of -1 cannot be resolved and is an error. ``on_truncated='warn'`` reads the complete
    records of a file shorter than its header promises (with a warning) instead of raising.
    Any bytes either parse or raise a :class:`CorruptFileError`/:class:`TruncatedFileError`;
    tolerated quirks give one warning each.
    """
    if len(head) < 256:
        raise TruncatedFileError(f"only {len(head)} bytes: shorter than the 256-byte EDF/BDF "
                                 "header", path=path)
    version = head[:8]
    if version not in (EDF_MAGIC, BDF_MAGIC):
        raise CorruptFileError(f"version field {version!r} is neither EDF ('0       ') nor "
                               "BDF ('\\xffBIOSEMI')", path=path)
    is_bdf = version == BDF_MAGIC
    raw_fields: dict[str, bytes] = {}
    fixed: dict[str, str] = {}
    for name, a, b in (("patient", 8, 88), ("recording", 88, 168), ("startdate", 168, 176),
                       ("starttime", 176, 184), ("header_bytes", 184, 192),
                       ("reserved", 192, 236), ("n_records", 236, 244),
                       ("record_duration", 244, 252), ("n_signals", 252, 256)):
        fixed[name], irregular = _text(head[a:b])
        if irregular:
            raw_fields[name] = head[a:b]
    ns = _number(fixed["n_signals"], "number of signals", path, integer=True)
    if not 0 < ns <= _MAX_SIGNALS:
        raise CorruptFileError(f"number of signals is {ns}; it must be 1 to {_MAX_SIGNALS}",
                               path=path)
    header_bytes = _number(fixed["header_bytes"], "header size", path, integer=True)
    if header_bytes != 256 * (ns + 1):
        raise CorruptFileError(f"header size field says {header_bytes} bytes but {ns} signals "
                               f"need 256 * ({ns} + 1) = {256 * (ns + 1)}", path=path)
    if len(head) < header_bytes:
        raise TruncatedFileError(f"file ends inside the header ({len(head)} of {header_bytes} "
                                 "bytes)", path=path)
    fields: dict[str, list[str]] = {}
    pos = 256
    for name, width in _SIGNAL_FIELDS:
        fields[name] = []
        for i in range(ns):
            raw = head[pos + i * width: pos + (i + 1) * width]
            text, irregular = _text(raw)
            fields[name].append(text)
            if irregular:
                raw_fields[f"{name} of signal {i + 1}"] = raw
        pos += ns * width
    labels = fields["label"]
    ints = {k: np.array([_number(v, f"{k} of {_signal(i, labels)}", path, integer=True,
                                 lo=-_FIELD_MAX, hi=_FIELD_MAX)
                         for i, v in enumerate(fields[k])], dtype=np.int64)
            for k in ("digital_min", "digital_max", "samples_per_record")}
    commas: list[str] = []
    floats = {k: np.array([_number(v, f"{k} of {_signal(i, labels)}", path, integer=False,
                                   commas=commas)
                           for i, v in enumerate(fields[k])], dtype=np.float64)
              for k in ("physical_min", "physical_max")}
    dur_text = fixed["record_duration"]
    duration = _number(dur_text, "data record duration", path, integer=False, commas=commas)
    if commas:
        dur_text = dur_text.replace(",", ".")
    n_records = _number(fixed["n_records"], "number of records", path, integer=True,
                        lo=-_FIELD_MAX, hi=_FIELD_MAX)
    header = EdfHeader(
        path=path, is_bdf=is_bdf, version=version, patient=fixed["patient"],
        recording=fixed["recording"], startdate=fixed["startdate"],
        starttime=fixed["starttime"], header_bytes=header_bytes, reserved=fixed["reserved"],
        n_records=0, n_records_declared=n_records,
        record_duration_text=dur_text, record_duration=duration,
        labels=tuple(labels), transducers=tuple(fields["transducer"]),
        units=tuple(fields["unit"]), prefilters=tuple(fields["prefilter"]),
        signal_reserved=tuple(fields["reserved"]),
        physical_min=floats["physical_min"], physical_max=floats["physical_max"],
        digital_min=ints["digital_min"], digital_max=ints["digital_max"],
        samples_per_record=ints["samples_per_record"], raw_fields=raw_fields)
    notes = _validate(header)
    if commas:
        shown = ", ".join(commas[:4]) + (f" and {len(commas) - 4} more" if len(commas) > 4
                                         else "")
        notes.insert(0, f"numbers written with a decimal comma ({shown}); read the comma as "
                        "a decimal point")
    header, note = _resolve_records(header, data_bytes, on_truncated)
    for text in [*_text_notes(header), *notes, *([note] if note else [])]:
        warnings.warn(f"{path}: {text}", stacklevel=4)
    return header


def _text_notes(h: EdfHeader) -> list[str]:
    if not h.raw_fields:
        return []
    names = list(h.raw_fields)
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return [f"header fields hold non-ASCII, NUL or control bytes ({shown}); read as text up "
            "to the first NUL, decoded as UTF-8 or else Latin-1; the raw bytes are in "
            "metadata['edf_header_raw']"]


def _validate(h: EdfHeader) -> list[str]:
    """Reject impossible values (they would give wrong samples); return tolerated quirks."""
    path, labels = h.path, list(h.labels)
    notes: list[str] = []
    if not 0 <= h.record_duration <= _FIELD_MAX:
        raise CorruptFileError(f"data record duration is {h.record_duration_text!r} (must be "
                               f"0 to {_FIELD_MAX} s); {_FIX_HINT}", path=path)
    bad = np.flatnonzero((h.samples_per_record <= 0) | (h.samples_per_record > _FIELD_MAX))
    if bad.size:
        i = int(bad[0])
        raise CorruptFileError(f"{_signal(i, labels)} has {int(h.samples_per_record[i])} "
                               f"samples per record (must be 1 to {_FIELD_MAX}); {_FIX_HINT}",
                               path=path)
    ann = h.annotation_indices
    if h.is_plus and not ann:
        notes.append(f"the header declares {h.file_type} but has no 'EDF Annotations' signal; "
                     "read as plain EDF: no annotations, start time without a sub-second "
                     "part" + (", records taken as contiguous" if h.is_discontinuous else ""))
    if ann and not h.is_plus:
        notes.append(f"plain {'BDF' if h.is_bdf else 'EDF'} header (reserved field "
                     f"{h.reserved!r}) but {_signal(ann[0], labels)} is an annotation signal "
                     f"('EDF Annotations'): read its TALs as EDF+C annotations, not as data")
    lo, hi = (-(2**23), 2**23 - 1) if h.is_bdf else (-(2**15), 2**15 - 1)
    data = h.signal_indices
    flat: list[str] = []
    swapped: list[str] = []
    for i in data:
        dmin, dmax = int(h.digital_min[i]), int(h.digital_max[i])
        pmin, pmax = float(h.physical_min[i]), float(h.physical_max[i])
        if not (lo <= min(dmin, dmax) and max(dmin, dmax) <= hi):
            raise CorruptFileError(
                f"{_signal(i, labels)}: digital range [{dmin}, {dmax}] is outside the "
                f"{'24' if h.is_bdf else '16'}-bit range [{lo}, {hi}]; {_FIX_HINT}", path=path)
        if pmin == pmax:
            flat.append(_signal(i, labels))
            continue
        if dmin == dmax:
            raise CorruptFileError(f"{_signal(i, labels)}: digital minimum equals maximum "
                                   f"({dmin}) while the physical range is [{pmin}, {pmax}]: "
                                   f"no scaling possible; {_FIX_HINT}", path=path)
        if dmin > dmax:
            swapped.append(_signal(i, labels))
            dmin, dmax, pmin, pmax = dmax, dmin, pmax, pmin
        with np.errstate(all="ignore"):
            bitvalue = np.float64(pmax - pmin) / np.float64(dmax - dmin)
            offset = np.float64(pmax) / bitvalue - dmax
        if not (np.isfinite(bitvalue) and np.isfinite(offset) and bitvalue != 0):
            raise CorruptFileError(f"{_signal(i, labels)}: physical range [{pmin}, {pmax}] "
                                   f"over digital range [{dmin}, {dmax}] gives no finite "
                                   f"scaling; {_FIX_HINT}", path=path)
    if flat:
        notes.append(f"{', '.join(flat)}: physical minimum equals maximum, so the gain is 0: "
                     "every sample reads as that value (as MNE does)")
    if swapped:
        notes.append(f"{', '.join(swapped)}: digital minimum is above the maximum; scaled "
                     "through the declared (digital_min, physical_min) and (digital_max, "
                     "physical_max) pairs, so the polarity is as the header pairs them: check "
                     "the sign")
    if data and h.record_duration == 0:
        raise CorruptFileError("data record duration is 0 but the file has "
                               f"{len(data)} ordinary signal(s): their rate is undefined",
                               path=path)
    for i in data:
        rate = h.rate(i)
        if not (math.isfinite(rate) and rate > 0):
            raise CorruptFileError(f"data record duration {h.record_duration_text!r} gives "
                                   f"{_signal(i, labels)} a sampling rate of {rate}; "
                                   f"{_FIX_HINT}", path=path)
    return notes


def _resolve_records(h: EdfHeader, data_bytes: int | None,
                     on_truncated: str) -> tuple[EdfHeader, str | None]:
    """Fix ``n_records``: -1 (unknown) is computed from the size; a short file is truncated.

    Returns the header and the one note (warning text) about the record count, if any.
    """
    declared = h.n_records_declared
    rb = h.record_bytes
    if declared < -1:
        raise CorruptFileError(f"number of data records is {declared} (only -1, 'unknown', "
                               f"may be negative); {_FIX_HINT}", path=h.path)
    if data_bytes is None:
        if declared == -1:
            raise CorruptFileError("number of data records is -1 (unknown) and the data size "
                                   "cannot be known for compressed input; decompress first",
                                   path=h.path)
        return replace(h, n_records=declared), None
    available, extra = divmod(max(data_bytes, 0), rb)
    tail = (f"; {extra} trailing bytes of a partial record dropped" if extra else "")
    if declared == -1:
        return replace(h, n_records=available), (
            f"header gives -1 (unknown: the recording was not closed) data records; reading "
            f"the {available} data records the file size holds{tail}")
    if declared == 0 and available:
        return replace(h, n_records=available), (
            f"header declares 0 data records but the file holds {available} (a writer that "
            f"never finalised the header); reading those{tail}")
    if available < declared and on_truncated == "warn":
        return replace(h, n_records=available), (
            f"header promises {declared} data records but the file holds only {available} "
            f"complete ones; reading those{tail}")
    if available < declared:
        raise TruncatedFileError(
            f"header promises {declared} data records ({declared * rb} bytes) but the file "
            f"holds {data_bytes} bytes after the header ({available} complete records); pass "
            "on_truncated='warn' to read the complete records", path=h.path,
            declared=declared, available=available)
    if data_bytes > declared * rb:
        more, part = divmod(data_bytes - declared * rb, rb)
        return replace(h, n_records=declared), (
            f"{data_bytes - declared * rb} bytes after the {declared} declared data records "
            f"are ignored ({more} more whole records and a partial one of {part} bytes)")
    return replace(h, n_records=declared), None


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
        hour, minute, second = (int(x) for x in t.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        warnings.warn(f"{h.path}: start date/time {h.startdate!r} {h.starttime!r} is not a "
                      "valid date; start_time left unset", stacklevel=3)
        return None
