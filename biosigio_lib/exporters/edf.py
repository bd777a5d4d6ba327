"""EDF+ / BDF+ writer: digital values kept exactly, floats with their minimal-error calibration.

What is written (details and the error guarantee in ``docs/migrating.md``):

- EDF+C / BDF+C, or EDF+D / BDF+D when ``metadata['edf_gaps']`` is non-empty (with
  ``edf_record_onsets``); one ``EDF Annotations`` signal holds the timekeeping TALs and every
  event as a TAL (onset, duration when not NaN, UTF-8 text);
- the header from the metadata: patient/recording fields (``edf_patient_field``,
  ``edf_recording_field``, else built from ``subject``/``start_time``), start date/time with
  its sub-second part as the first record's TAL onset (``edf_start_offset`` when it
  reproduces ``start_time``), labels (``original_label`` when the importer renamed a repeat),
  transducer, unit, prefilter, physical/digital min/max;
- a calibrated channel whose calibration is the EDF scaling of its ``physical_min``,
  ``physical_max``, ``digital_min`` and ``digital_max`` extras (as the EDF importer keeps
  them) is written back exactly: same digital samples, same header numbers;
- any other channel gets the calibration that minimises its error: integers that fit the
  digital range are written with gain 1 (exact); anything else uses the full digital range
  with physical min/max the data's, rounded outward to 8 characters (no clipping). Each
  channel's max abs error (physical units) is in the returned :class:`EdfExportReport`;
- samples per record = rate x record duration, for every rate; the record duration is the
  source's when it fits, else the longest of at most 1 s that makes every rate and every
  channel length a whole number of records (error if none, unless ``pad_last_record``).

The file is written under a temporary sibling name and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._fs import atomic_target, resolve
from ..calibration import Calibration
from ..errors import (
    EmptyRecordingError,
    InvalidChannelError,
    NonFiniteValueError,
    UnrepresentableValueError,
    WriteError,
)

if TYPE_CHECKING:
    from ..recording import Grid, Recording

__all__ = ["EdfExportReport", "export_compat", "write_edf"]

#: bytes per sample and digital range of each format
_FORMATS = {False: (2, -32768, 32767), True: (3, -8388608, 8388607)}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_CHUNK_BYTES = 64 << 20  # records are assembled and written about this much at a time
_MAX_AUTO_DURATION = 60  # s: the longest record duration tried when none of <= 1 s fits


@dataclass(frozen=True)
class EdfExportReport:
    """What :func:`write_edf` wrote and how exactly.

    ``max_abs_error[label]`` is the largest ``|written - original|`` of the channel's physical
    values (0.0 for channels in ``exact``: same digital samples and calibration as stored).
    ``padded_samples[label]`` counts samples added to fill the last record
    (``pad_last_record=True`` only). ``time_shift`` (s) is the common start offset of the
    grids moved into the file's start time (event onsets are moved with it).
    """

    path: str
    file_type: str
    record_duration: float
    n_records: int
    exact: tuple[str, ...]
    max_abs_error: dict[str, float]
    padded_samples: dict[str, int] = field(default_factory=dict)
    time_shift: float = 0.0
    channels_tsv: str | None = None
    notes: tuple[str, ...] = ()
    verification: dict[str, float] | None = None

    @property
    def max_error(self) -> float:
        """The largest error of any channel (0.0 when every channel is exact)."""
        return max(self.max_abs_error.values(), default=0.0)

    @property
    def lossless(self) -> bool:
        """True when every sample reads back as it was (no error, no padding)."""
        return self.max_error == 0.0 and not any(self.padded_samples.values())


@dataclass
class _Signal:
    label: str
    info: Mapping[str, Any]
    grid: Grid
    pmin: str
    pmax: str
    dmin: int
    dmax: int
    digital: np.ndarray
    error: float
    exact: bool


# ----------------------------------------------------------------------------- numbers
def _positional(x: float | Decimal) -> str:
    """Plain decimal text (no exponent, no trailing zeros)."""
    if isinstance(x, Decimal):
        text = format(x, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    else:
        text = np.format_float_positional(x, trim="-", unique=True)
    return "0" if text in ("-0", "") else text


def exact_text(value: float, width: int = 8) -> str | None:
    """The shortest decimal text of ``value`` if it fits ``width`` chars and reads back as it."""
    v = float(value)
    if not math.isfinite(v):
        return None
    text = str(int(v)) if v.is_integer() and abs(v) < 1e15 else _positional(v)
    return text if len(text) <= width and float(text) == v else None


def outward_text(value: float, up: bool, width: int = 8, what: str = "value") -> str:
    """``value`` rounded up (``up``) or down to the closest decimal of at most ``width`` chars."""
    dec = Decimal(repr(float(value)))
    rounding = ROUND_CEILING if up else ROUND_FLOOR
    for places in range(width - 1, -width, -1):
        try:
            r = dec.quantize(Decimal(1).scaleb(-places), rounding=rounding)
        except InvalidOperation:
            continue
        text = _positional(r)
        if len(text) <= width and (float(text) >= value if up else float(text) <= value):
            return text
    raise UnrepresentableValueError(
        f"{what} {value!r} needs more than {width} characters in the EDF header; rescale the "
        "channel to a coarser unit (e.g. uV -> mV)")


def _field(text: str, width: int, what: str) -> bytes:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise UnrepresentableValueError(
            f"{what} {text!r} is not ASCII; EDF header fields are ASCII only: change it "
            "(channels[label] / metadata) before exporting") from None
    if len(raw) > width or any(b < 32 or b > 126 for b in raw):
        raise UnrepresentableValueError(
            f"{what} {text!r} does not fit the {width}-character EDF header field (or holds "
            "control characters); shorten it before exporting")
    return raw.ljust(width, b" ")


# ----------------------------------------------------------------------------- signals
def _exact_signal(rec: Recording, label: str, lo: int, hi: int) -> _Signal | None:
    """The channel as stored, when its calibration is its EDF header's scaling."""
    cal = rec.calibration(label)
    info = rec.channels[label]
    if cal is None or cal.divide or cal.missing is not None:
        return None
    try:
        pmin, pmax = exact_text(info["physical_min"]), exact_text(info["physical_max"])
        dmin, dmax = int(info["digital_min"]), int(info["digital_max"])
    except (KeyError, TypeError, ValueError):
        return None
    if pmin is None or pmax is None or not (lo <= dmin <= hi and lo <= dmax <= hi):
        return None
    if Calibration.edf(float(pmin), float(pmax), dmin, dmax) != cal:
        return None
    digital = rec.digital_data(label)
    if digital.size and (int(digital.min()) < lo or int(digital.max()) > hi):
        return None
    return _Signal(label, info, rec.grid_of(label), pmin, pmax, dmin, dmax, digital, 0.0, True)


def _float_signal(rec: Recording, label: str, lo: int, hi: int) -> _Signal:
    """The calibration with the least error: gain 1 for fitting integers, else full range."""
    x = np.asarray(rec.channel_data(label))
    info, grid = rec.channels[label], rec.grid_of(label)
    if x.dtype.kind == "b":
        x = x.astype(np.int64)
    if x.dtype.kind == "f" and x.size and not np.isfinite(x).all():
        bad = int(np.argmax(~np.isfinite(x)))
        raise NonFiniteValueError(
            f"channel {label!r}: sample {bad} is {x[bad]}; EDF/BDF cannot store NaN/Inf: fill "
            "or drop them (e.g. rec.select(tmin=..., tmax=...)) before exporting")
    vmin = float(x.min()) if x.size else 0.0
    vmax = float(x.max()) if x.size else 0.0
    integral = x.dtype.kind in "iu" or bool(np.array_equal(x, np.rint(x)))
    if integral and lo <= vmin and vmax <= hi:
        dmin, dmax = int(vmin), int(vmax)
        if dmin == dmax:
            dmax, dmin = (dmax + 1, dmin) if dmax < hi else (dmax, dmin - 1)
        digital = x.astype(np.int32 if hi > 32767 else np.int16)
        return _Signal(label, info, grid, str(dmin), str(dmax), dmin, dmax, digital, 0.0,
                       False)
    what = f"channel {label!r}: physical"
    pmin = outward_text(vmin, up=False, what=f"{what} minimum")
    pmax = outward_text(vmax, up=True, what=f"{what} maximum")
    if float(pmin) == float(pmax):
        pmax = outward_text(vmax + max(abs(vmax), 1.0), up=True, what=f"{what} maximum")
    cal = Calibration.edf(float(pmin), float(pmax), lo, hi)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.clip(np.rint(x / cal.gain + cal.baseline), lo, hi)
    digital = d.astype(np.int32 if hi > 32767 else np.int16)
    err = float(np.max(np.abs(cal.apply(digital) - x))) if x.size else 0.0
    return _Signal(label, info, grid, pmin, pmax, lo, hi, digital, err, False)


def _signals(rec: Recording, bdf: bool) -> list[_Signal]:
    _, lo, hi = _FORMATS[bdf]
    return [_exact_signal(rec, lab, lo, hi) or _float_signal(rec, lab, lo, hi)
            for lab in rec.channels]


def needs_bdf(rec: Recording) -> bool:
    """True when some channel is exact in BDF (24 bits) but not in EDF (16 bits)."""
    _, lo, hi = _FORMATS[False]
    _, blo, bhi = _FORMATS[True]
    for lab in rec.channels:
        if _exact_signal(rec, lab, lo, hi) is not None:
            continue
        if _exact_signal(rec, lab, blo, bhi) is not None:
            return True
        if rec.calibration(lab) is None and rec.channel_data(lab).dtype.kind != "f":
            continue  # integers: exact in EDF when they fit, else BDF is no better bound
        return True
    return False


# ----------------------------------------------------------------------------- layout
def _frac(x: float) -> Fraction:
    return Fraction(repr(float(x)))


def _record_layout(rec: Recording, record_duration: float | None,
                   pad: bool) -> tuple[Fraction, int, dict[str, int]]:
    """(record duration, number of records, samples per record by grid key)."""
    grids = list(rec.grids.values())
    meta_d = rec.metadata.get("edf_record_duration")
    if not grids:
        d = _frac(record_duration if record_duration is not None else
                  (meta_d if isinstance(meta_d, (int, float)) and meta_d >= 0 else 0.0))
        return d, 1, {}
    rates = [_frac(g.rate) for g in grids]
    num = math.gcd(*(r.numerator for r in rates))
    den = math.lcm(*(r.denominator for r in rates))
    base = Fraction(den, num)  # the shortest duration holding a whole number of each rate

    def whole(d: Fraction) -> bool:
        return all((r * d).denominator == 1 for r in rates)

    def fits(d: Fraction) -> bool:
        return all(g.n_samples % int(r * d) == 0 for g, r in zip(grids, rates))

    def text_ok(d: Fraction) -> bool:
        t = exact_text(float(d))
        return t is not None and Fraction(t) == d

    if record_duration is not None:
        d = _frac(record_duration)
        if d <= 0 or not whole(d) or not text_ok(d):
            raise UnrepresentableValueError(
                f"record_duration {record_duration!r} s does not give a whole number of "
                f"samples at every rate {rec.rates} Hz (or does not fit 8 characters); use a "
                f"multiple of {float(base):g} s")
        candidates = [d]
    else:
        candidates = []
        if isinstance(meta_d, (int, float)) and meta_d > 0:
            candidates.append(_frac(meta_d))
        if base <= 1:
            candidates += [base * m for m in range(int(1 / base), 0, -1)]
        step = base.numerator  # whole seconds that are multiples of base
        candidates += [Fraction(step * j) for j in range(1, _MAX_AUTO_DURATION // step + 1)]
    usable = [d for d in candidates if d > 0 and whole(d) and text_ok(d)]
    if not usable:
        raise UnrepresentableValueError(
            f"no EDF record duration gives a whole number of samples at every rate "
            f"{rec.rates} Hz (the shortest is {float(base):g} s, which does not fit the "
            "8-character field); resample the channels to rates with a common period")
    chosen = next((d for d in usable if fits(d)), None)
    if chosen is None:
        if not pad:
            d = usable[0]
            short = [f"{g.key}: {g.n_samples} samples" for g, r in zip(grids, rates)
                     if g.n_samples % int(r * d)]
            raise UnrepresentableValueError(
                f"the channels are not a whole number of {float(d):g}-s data records "
                f"({', '.join(short)}); pass pad_last_record=True to fill the last record "
                "(the report counts the added samples) or select() a whole number of records")
        chosen = usable[0]
    spr = {g.key: int(r * chosen) for g, r in zip(grids, rates)}
    n_records = max(-(-g.n_samples // spr[g.key]) for g in grids)
    return chosen, n_records, spr


# ----------------------------------------------------------------------------- header + TALs
def _start(rec: Recording, shift: float, notes: list[str]) -> tuple[dt.datetime, Decimal]:
    """Header start (whole seconds) and the first record's TAL onset (s after it)."""
    start = rec.metadata.get("start_time")
    if isinstance(start, dt.date) and not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day)
    if not isinstance(start, dt.datetime):
        notes.append("no start_time in the metadata: the header says 01.01.85 00.00.00")
        start = dt.datetime(1985, 1, 1)
    if start.tzinfo is not None:
        notes.append(f"start_time {start.isoformat()} is written as its wall-clock time; EDF "
                     "has no time zone")
        start = start.replace(tzinfo=None)
    start = start + dt.timedelta(seconds=shift)
    src = rec.metadata.get("edf_start_offset")
    if isinstance(src, (int, float)) and not shift and 0 <= src < 1e9:
        header = start - dt.timedelta(seconds=float(src))
        if header.microsecond == 0:
            return header, Decimal(repr(float(src)))
    header = start.replace(microsecond=0)
    return header, Decimal(start.microsecond).scaleb(-6)


def _edf_date(text: str) -> bool:
    m = re.fullmatch(r"(\d\d)-([A-Z]{3})-(\d{4})", text)
    if not m or m.group(2) not in _MONTHS:
        return False
    try:
        dt.date(int(m.group(3)), _MONTHS.index(m.group(2)) + 1, int(m.group(1)))
    except ValueError:
        return False
    return True


def _plus_patient(text: str) -> bool:
    """EDF+ patient field as EDFlib checks it: ``code sex birthdate name [...]``."""
    p = text.split(" ")
    return (len(p) >= 4 and all(p[:4]) and p[1] in ("M", "F", "X")
            and (p[2] == "X" or _edf_date(p[2])))


def _plus_recording(text: str, date: str) -> bool:
    """EDF+ recording field: ``Startdate <the header date or X> admin tech equipment [...]``."""
    p = text.split(" ")
    return len(p) >= 5 and p[0] == "Startdate" and p[1] in ("X", date) and all(p[:5])


def _ident_fields(rec: Recording, start: dt.datetime, notes: list[str]) -> tuple[str, str]:
    """EDF+ patient and recording fields: the metadata's when they comply with EDF+, else
    EDF+ fields that carry the original text as their 'additional' subfield."""
    meta = rec.metadata
    date = f"{start.day:02d}-{_MONTHS[start.month - 1]}-{start.year}"
    subject = meta.get("subject")
    code = "X" if subject in (None, "") else str(subject).replace(" ", "_")
    patient = meta.get("edf_patient_field")
    if not isinstance(patient, str):
        patient = f"{code} X X X"
    elif not _plus_patient(patient):
        notes.append(f"patient field {patient!r} is not EDF+ ('code sex birthdate name'): "
                     "written as 'X X X X <it>'")
        patient = ("X X X X " + patient.strip()).strip()[:80]
    recording = meta.get("edf_recording_field")
    if not isinstance(recording, str):
        recording = f"Startdate {date} X X X"
    elif not _plus_recording(recording, date):
        notes.append(f"recording field {recording!r} is not EDF+ ('Startdate {date} admin "
                     "technician equipment'): written as 'Startdate <date> X X X <it>'")
        recording = (f"Startdate {date} X X X " + recording.strip()).strip()[:80]
    return patient, recording


def _tal_onset(x: Decimal) -> str:
    text = _positional(x)
    return text if text.startswith("-") else "+" + text


def _rebased(onset: float, offset: Decimal) -> Decimal:
    """``onset + offset`` as the shortest decimal from which a reader gets ``onset`` back
    (``float(text) - offset``), so 100-ns readers (EDFlib) see the source's digits too."""
    exact = Decimal(repr(onset)) + offset
    if not offset:
        return exact
    off = float(offset)
    for places in range(0, 18):
        cand = exact.quantize(Decimal(1).scaleb(-places))
        if float(cand) - off == onset:
            return cand
    return exact


def _event_tals(events: pd.DataFrame | None, offset: Decimal, shift: float) -> list[bytes]:
    """One TAL per event (onset relative to the header start)."""
    if events is None or events.empty:
        return []
    onsets = events["onset"].to_numpy(dtype=np.float64) - shift
    durs = (events["duration"].to_numpy(dtype=np.float64) if "duration" in events
            else np.full(len(events), np.nan))
    texts = (events["description"].tolist() if "description" in events
             else [""] * len(events))
    out = []
    for i, (onset, dur, text) in enumerate(zip(onsets.tolist(), durs.tolist(), texts)):
        if not math.isfinite(onset):
            raise NonFiniteValueError(f"event {i}: onset is {onset}")
        if text is None or (isinstance(text, float) and math.isnan(text)) or str(text) == "":
            raise InvalidChannelError(
                f"event {i} (onset {onset:g} s) has no description; an EDF+ annotation needs "
                "text: fill events['description'] before exporting")
        text = str(text)
        if any(c in text for c in "\x00\x14\x15"):
            raise InvalidChannelError(f"event {i}: description {text!r} holds a TAL control "
                                      "character (\\x00, \\x14 or \\x15)")
        head = _tal_onset(_rebased(onset, offset))
        if math.isfinite(dur):
            if dur < 0:
                raise InvalidChannelError(f"event {i}: duration {dur} is negative")
            head += "\x15" + _positional(dur)
        try:
            out.append(f"{head}\x14{text}\x14\x00".encode())
        except UnicodeEncodeError:
            raise UnrepresentableValueError(
                f"event {i}: description {text!r} is not valid Unicode (lone surrogates); "
                "EDF+ annotations are UTF-8") from None
    return out


def _annotations(n_records: int, onsets: Sequence[Decimal], tals: list[bytes],
                 bps: int) -> np.ndarray:
    """``(n_records, nbytes)`` uint8: each record's timekeeping TAL then its share of TALs."""
    keep = [f"{_tal_onset(o)}\x14\x14\x00".encode() for o in onsets]
    total = sum(len(t) for t in tals)
    budget = -(-total // n_records) + max((len(t) for t in tals), default=0)
    parts: list[list[bytes]] = [[k] for k in keep]
    used = [0] * n_records
    r = 0
    for tal in tals:
        if used[r] + len(tal) > budget and r < n_records - 1:
            r += 1
        parts[r].append(tal)
        used[r] += len(tal)
    blobs = [b"".join(p) for p in parts]
    nbytes = max(len(b) for b in blobs)
    nbytes = -(-nbytes // bps) * bps
    out = np.zeros((n_records, nbytes), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        out[i, :len(blob)] = np.frombuffer(blob, dtype=np.uint8)
    return out


def _header(rec: Recording, sigs: list[_Signal], spr: dict[str, int], bdf: bool,
            file_type: str, d: Fraction, n_records: int, start: dt.datetime,
            ann_spr: int, notes: list[str]) -> bytes:
    patient, recording = _ident_fields(rec, start, notes)
    if not 1985 <= start.year <= 2084 and f"-{start.year}" not in recording:
        raise UnrepresentableValueError(
            f"start year {start.year} is outside the EDF clipping range 1985-2084 and the "
            "recording field does not give it ('Startdate dd-MMM-yyyy ...')")
    ns = len(sigs) + 1
    _, lo, hi = _FORMATS[bdf]
    head = b"".join([
        b"\xffBIOSEMI" if bdf else b"0       ",
        _field(patient, 80, "patient field"), _field(recording, 80, "recording field"),
        _field(start.strftime("%d.%m.") + f"{start.year % 100:02d}", 8, "start date"),
        _field(start.strftime("%H.%M.%S"), 8, "start time"),
        _field(str(256 * (ns + 1)), 8, "header size"),
        _field(file_type, 44, "reserved field"),
        _field(str(n_records), 8, "number of records"),
        _field(exact_text(float(d)) or "", 8, "record duration"),
        _field(str(ns), 4, "number of signals"),
    ])
    ann_label = "BDF Annotations" if bdf else "EDF Annotations"

    def labels(s: _Signal) -> str:
        return str(s.info.get("original_label", s.label))

    cols: list[list[bytes]] = [
        [_field(labels(s), 16, f"label of channel {s.label!r}") for s in sigs]
        + [_field(ann_label, 16, "")],
        [_field(str(s.info.get("transducer", "") or ""), 80,
                f"transducer of channel {s.label!r}") for s in sigs] + [b" " * 80],
        [_field(str(s.info.get("physical_dimension", "")), 8, f"unit of channel {s.label!r}")
         for s in sigs] + [b" " * 8],
        [_field(s.pmin, 8, "") for s in sigs] + [_field("-1", 8, "")],
        [_field(s.pmax, 8, "") for s in sigs] + [_field("1", 8, "")],
        [_field(str(s.dmin), 8, "") for s in sigs] + [_field(str(lo), 8, "")],
        [_field(str(s.dmax), 8, "") for s in sigs] + [_field(str(hi), 8, "")],
        [_field(str(s.info.get("prefilter", "") or ""), 80, f"prefilter of channel {s.label!r}")
         for s in sigs] + [b" " * 80],
        [_field(str(spr[s.grid.key]), 8, "") for s in sigs] + [_field(str(ann_spr), 8, "")],
        [b" " * 32] * ns,
    ]
    return head + b"".join(b"".join(c) for c in cols)


# ----------------------------------------------------------------------------- writer
def write_edf(rec: Recording, path: str | os.PathLike[str], *, bdf: bool = False,
              overwrite: bool = False, storage_options: Mapping[str, Any] | None = None,
              record_duration: float | None = None, pad_last_record: bool = False,
              events: pd.DataFrame | None = None) -> EdfExportReport:
    """Write ``rec`` as EDF+ (``bdf=False``) or BDF+; see the module docstring.

    Raises :class:`StoreExistsError` for an existing target unless ``overwrite``, and
    :class:`UnrepresentableValueError` / :class:`InvalidChannelError` /
    :class:`NonFiniteValueError` (naming the channel or event) for what EDF cannot hold.
    """
    loc = resolve(path, storage_options)
    bps = _FORMATS[bdf][0]
    events = rec.events if events is None else events
    notes: list[str] = []
    t0s = {g.t0 for g in rec.grids.values()}
    if len(t0s) > 1:
        raise InvalidChannelError(
            f"the grids start at different times {sorted(t0s)} s; an EDF file starts every "
            "signal at once: select() a common window first", path=loc.url)
    shift = t0s.pop() if t0s else 0.0
    if shift:
        notes.append(f"the signals start {shift:g} s after start_time: the file starts then "
                     "and event onsets are moved by the same amount")
    d, n_records, spr = _record_layout(rec, record_duration, pad_last_record)
    sigs = _signals(rec, bdf)
    header_start, offset = _start(rec, shift, notes)

    gaps = rec.metadata.get("edf_gaps")
    onsets_meta: Any = rec.metadata.get("edf_record_onsets")
    discontinuous = bool(gaps) and onsets_meta is not None
    if discontinuous:
        if len(onsets_meta) != n_records or float(d) != rec.metadata.get("edf_record_duration"):
            raise UnrepresentableValueError(
                f"the recording has gaps (metadata['edf_gaps']) recorded for "
                f"{len(onsets_meta)} records of {rec.metadata.get('edf_record_duration')} s, "
                f"but its channels make {n_records} records of {float(d):g} s; write the "
                "channels as the source stored them or drop 'edf_gaps'", path=loc.url)
        rec_onsets = [Decimal(repr(float(o) - shift)) + offset for o in onsets_meta]
    else:
        rec_onsets = [offset + d_dec * k for d_dec in [_dec(d)] for k in range(n_records)]
    file_type = ("BDF+" if bdf else "EDF+") + ("D" if discontinuous else "C")
    ann = _annotations(n_records, rec_onsets, _event_tals(events, offset, shift), bps)
    ann_spr = ann.shape[1] // bps

    padded: dict[str, int] = {}
    for s in sigs:
        need = n_records * spr[s.grid.key]
        if s.digital.size < need:
            padded[s.label] = need - s.digital.size
            s.digital = (np.pad(s.digital, (0, need - s.digital.size), mode="edge")
                         if s.digital.size else np.zeros(need, s.digital.dtype))
    header = _header(rec, sigs, spr, bdf, file_type, d, n_records, header_start, ann_spr,
                     notes)
    _write_file(loc, header, sigs, spr, ann, n_records, bdf, overwrite)
    return EdfExportReport(
        path=loc.url, file_type=file_type, record_duration=float(d), n_records=n_records,
        exact=tuple(s.label for s in sigs if s.exact),
        max_abs_error={s.label: s.error for s in sigs}, padded_samples=padded,
        time_shift=shift, notes=tuple(notes))


def _dec(d: Fraction) -> Decimal:
    return Decimal(exact_text(float(d)) or repr(float(d)))


def _write_file(loc: Any, header: bytes, sigs: list[_Signal], spr: dict[str, int],
                ann: np.ndarray, n_records: int, bdf: bool, overwrite: bool) -> None:
    bps = _FORMATS[bdf][0]
    widths = [spr[s.grid.key] * bps for s in sigs] + [ann.shape[1]]
    starts = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    record_bytes = int(starts[-1])
    groups: dict[int, list[int]] = {}  # samples per record -> signal positions
    for i, s in enumerate(sigs):
        groups.setdefault(spr[s.grid.key], []).append(i)
    stacks = {n: np.stack([sigs[i].digital for i in pos]).astype("<i4" if bdf else "<i2")
              for n, pos in groups.items()}
    per_chunk = max(1, _CHUNK_BYTES // max(record_bytes, 1))
    try:
        with atomic_target(loc, overwrite=overwrite) as tmp, tmp.fs.open(tmp.path, "wb") as fh:
            fh.write(header)
            for r0 in range(0, n_records, per_chunk):
                r1 = min(n_records, r0 + per_chunk)
                buf = np.zeros((r1 - r0, record_bytes), dtype=np.uint8)
                for n, pos in groups.items():
                    block = stacks[n][:, r0 * n:r1 * n].reshape(len(pos), r1 - r0, n)
                    raw = np.ascontiguousarray(block.transpose(1, 0, 2)).view(np.uint8)
                    if bdf:
                        raw = raw.reshape(r1 - r0, len(pos), n, 4)[..., :3]
                    raw = raw.reshape(r1 - r0, len(pos), n * bps)
                    idx = starts[pos][:, None] + np.arange(n * bps)
                    buf[:, idx] = raw
                buf[:, starts[-2]:] = ann[r0:r1]
                fh.write(buf.tobytes())
    except OSError as exc:
        if isinstance(exc, (WriteError, FileExistsError)):
            raise
        raise WriteError(f"writing the EDF/BDF file failed: {exc}", path=loc.url) from exc


# ----------------------------------------------------------------------------- biosigio API
def export_compat(rec: Recording, filepath: str | os.PathLike[str], *, format: str = "auto",
                  verify: bool = False, verify_tolerance: float = 1e-6,
                  verify_channel_map: Mapping[str, str] | None = None,
                  verify_plot: bool = False, events_df: pd.DataFrame | None = None,
                  create_channels_tsv: bool = False, clip_outliers: bool | str = "auto",
                  method: str = "both", fft_noise_range: Any = None, svd_rank: Any = None,
                  precision_threshold: float = 0.01, bypass_analysis: bool | None = None,
                  **options: Any) -> EdfExportReport:
    """biosigio 1.2's ``Recording.to_edf`` arguments on :func:`write_edf`.

    ``format`` is ``'edf'``, ``'bdf'`` or ``'auto'`` (EDF when 16 bits hold every channel
    exactly, else BDF); as in biosigio the file's suffix follows the format (``x.edf`` becomes
    ``x.bdf`` for BDF) and ``report.path`` says where it went.
    """
    del method, fft_noise_range, svd_rank, precision_threshold, bypass_analysis  # no analysis
    fmt = str(format).lower()
    if fmt not in ("auto", "edf", "bdf"):
        raise InvalidChannelError(f"Unknown format {format!r}: use 'auto', 'edf' or 'bdf'")
    if clip_outliers is True:
        raise InvalidChannelError(
            "clip_outliers=True is not supported: the EDF writer never clips; every channel "
            "keeps its full range (see report.max_abs_error)")
    if verify_plot:
        raise InvalidChannelError("verify_plot=True is not supported (no plotting here); "
                                  "read report.verification instead")
    if not rec.channels and (events_df if events_df is not None else rec.events).empty:
        raise EmptyRecordingError("No signals loaded: nothing to write to EDF/BDF",
                                  path=os.fspath(filepath))
    bdf = fmt == "bdf" or (fmt == "auto" and needs_bdf(rec))
    text = os.fspath(filepath)
    stem, ext = os.path.splitext(text)
    if ext.lower() in (".edf", ".bdf"):
        text = stem + (".bdf" if bdf else ".edf")
    report = write_edf(rec, text, bdf=bdf, events=events_df, **options)
    extra: dict[str, Any] = {}
    if create_channels_tsv:
        extra["channels_tsv"] = _channels_tsv(rec, report, options)
    if verify:
        extra["verification"] = _verify(rec, report, verify_channel_map)
        worst = max(extra["verification"].values(), default=0.0)
        if worst > max(verify_tolerance, report.max_error):
            raise WriteError(f"verification failed: a channel reads back {worst:g} off "
                             f"(tolerance {verify_tolerance:g})", path=report.path)
    if extra:
        from dataclasses import replace

        report = replace(report, **extra)
    return report


def _channels_tsv(rec: Recording, report: EdfExportReport, options: Mapping[str, Any]) -> str:
    stem = os.path.splitext(report.path)[0]
    frame = pd.DataFrame({
        "name": list(rec.channels),
        "type": [i["channel_type"] for i in rec.channels.values()],
        "units": [i["physical_dimension"] for i in rec.channels.values()],
        "sampling_frequency": [i["sample_frequency"] for i in rec.channels.values()],
        "reference": "n/a", "status": "good"})
    loc = resolve(f"{stem}_channels.tsv", options.get("storage_options"))
    with atomic_target(loc, overwrite=bool(options.get("overwrite"))) as tmp, \
            tmp.fs.open(tmp.path, "wb") as fh:
        fh.write(frame.to_csv(sep="\t", index=False, na_rep="n/a").encode())
    return loc.url


def _verify(rec: Recording, report: EdfExportReport,
            channel_map: Mapping[str, str] | None) -> dict[str, float]:
    """Read the file back; the max abs physical difference per channel."""
    from ..recording import Recording as _Recording

    back = _Recording.from_file(report.path, importer="edf")
    out = {}
    for label in rec.channels:
        other = (channel_map or {}).get(label, label)
        a = rec.channel_data(label)
        b = back.channel_data(other)[: a.size]
        out[label] = float(np.max(np.abs(a - b))) if a.size else 0.0
    return out
