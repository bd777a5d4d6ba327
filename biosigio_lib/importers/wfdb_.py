"""WFDB records (``.hea`` + signal files, multi-segment, multi-frequency) via the wfdb package.

Samples are kept as the record's digital (ADC) values with each signal's calibration, so
physical values come out bit-identical to ``wfdb.rdrecord(physical=True)`` (float64, NaN where
WFDB marks a sample invalid) at 2-4 bytes a sample; ``digital=False`` stores the physical
float64 values instead (as does any signal whose ADC values cannot be recovered exactly, e.g.
a multi-segment record whose segments have other gains). Channels
with ``samps_per_frame > 1`` run at ``fs * spf`` and get a grid of their own per distinct rate
(read with ``smooth_frames=False``, so nothing is averaged). Every annotation file of the record
becomes events. Opening a ``.dat`` or an annotation file answers "open the .hea instead".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._fs import Location, list_folder
from ..calibration import Calibration
from ..errors import (
    BiosigIOError,
    CorruptFileError,
    FileReadError,
    TruncatedFileError,
    UnsupportedFormatError,
    source_not_found,
)
from ..recording import Recording, make_unique_labels
from ._registry import Importer, register
from ._wfdb_meta import (
    ANNOTATION_EXTENSIONS,
    NOT_ANNOTATION_EXTENSIONS,
    channel_type,
    check_signal_files,
    parse_record_line,
)

if TYPE_CHECKING:
    import wfdb

__all__ = ["WfdbImporter", "read_wfdb"]

#: Per-signal header fields copied into each channel's info (when the header has them).
_CHANNEL_FIELDS = ("fmt", "adc_gain", "baseline", "init_value", "adc_res", "adc_zero",
                   "checksum", "block_size", "byte_offset", "skew", "file_name",
                   "samps_per_frame")
_COMPANION = ("dat", *sorted(ANNOTATION_EXTENSIONS))


def _split_name(path: str) -> tuple[str, str, str]:
    """``(dir, record, ext)`` of a path (ext lower-case, without the dot)."""
    dir_name, base = os.path.split(path)
    record, _, ext = base.rpartition(".")
    return dir_name, record or ext, ext.lower() if record else ""


@contextlib.contextmanager
def _local_record(loc: Location) -> Iterator[str]:
    """The local path of the record's ``.hea``; remote records are staged in a temp folder."""
    if loc.is_local:
        yield loc.path
        return
    import wfdb

    parent, _, base = loc.path.rpartition("/")
    record = base.rpartition(".")[0]
    tmp = tempfile.mkdtemp(prefix="biosigio-wfdb-")
    try:
        # get_file/list_folder, not get/glob: those expand "[", "*", "?" in the names
        loc.fs.get_file(loc.path, os.path.join(tmp, base))
        names = {n for n, is_dir in list_folder(loc.fs, parent)
                 if not is_dir and n.startswith(f"{record}.")}
        try:
            header = wfdb.rdheader(os.path.join(tmp, record))
            for seg in getattr(header, "seg_name", None) or []:
                if seg != "~":
                    names.add(f"{seg}.hea")
                    loc.fs.get_file(f"{parent}/{seg}.hea", os.path.join(tmp, f"{seg}.hea"))
                    names.update(wfdb.rdheader(os.path.join(tmp, seg)).file_name or [])
            names.update(getattr(header, "file_name", None) or [])
        except Exception:  # the local read below reports header problems precisely
            pass
        for name in sorted(names - {base, "~"}):
            with contextlib.suppress(FileNotFoundError):
                loc.fs.get_file(f"{parent}/{name}", os.path.join(tmp, name))
        yield os.path.join(tmp, base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_header(hea_path: str) -> Any:
    """wfdb's header object, with wfdb's bare exceptions turned into typed errors."""
    import wfdb

    if os.path.getsize(hea_path) == 0:
        raise CorruptFileError("the header file is empty", path=hea_path)
    try:
        with open(hea_path, encoding="latin-1") as fh:
            text = fh.read()
    except OSError as exc:
        raise FileReadError(f"cannot read the header: {exc}", path=hea_path) from exc
    if not parse_record_line(text):
        raise CorruptFileError("the first line is not a WFDB record line "
                               "('<name> <n_signals> <fs> <n_samples> ...')", path=hea_path)
    try:
        header = wfdb.rdheader(hea_path[: -len(".hea")])
    except Exception as exc:
        raise CorruptFileError(f"cannot parse the WFDB header: {type(exc).__name__}: {exc}",
                               path=hea_path) from exc
    described = len(header.sig_name or []) if getattr(header, "seg_name", None) is None \
        else header.n_sig
    if described != (header.n_sig or 0):
        raise CorruptFileError(f"the record line declares {header.n_sig} signal(s), the "
                               f"header describes {described}", path=hea_path)
    return header


def _read_signals(hea_path: str, sampfrom: int, sampto: int | None) -> Any:
    import wfdb

    try:
        return wfdb.rdrecord(hea_path[: -len(".hea")], sampfrom=sampfrom, sampto=sampto,
                             physical=True, smooth_frames=False, return_res=64)
    except BiosigIOError:
        raise
    except ValueError as exc:
        if "not loaded correctly" in str(exc):
            raise TruncatedFileError("a signal file ends before the samples its header "
                                     "promises", path=hea_path) from exc
        raise CorruptFileError(f"wfdb cannot read the samples: {exc}", path=hea_path) from exc
    except Exception as exc:
        raise CorruptFileError(f"wfdb cannot read the samples: {type(exc).__name__}: {exc}",
                               path=hea_path) from exc


def _plausible(ann: wfdb.Annotation) -> bool:
    """Sanity check for files with a non-standard extension that rdann happened to parse."""
    s = np.asarray(ann.sample)
    return bool(s.size and (s >= 0).all() and (np.diff(s) >= 0).all()
                and all(sym is not None for sym in ann.symbol))


def _annotations(hea_path: str, header: Any, signal_files: list[str]
                 ) -> tuple[pd.DataFrame, list[str]]:
    """Every annotation file ``<record>.<ext>`` of the record as one event table."""
    import wfdb

    dir_name, record, _ = _split_name(hea_path)
    skip = {f.lower() for f in signal_files}
    frames: list[pd.DataFrame] = []
    used: list[str] = []
    for name in sorted(os.listdir(dir_name or ".")):
        if not name.startswith(f"{record}.") or name.lower() in skip:
            continue
        ext = name[len(record) + 1:]
        if not ext or "." in ext or ext.lower() in NOT_ANNOTATION_EXTENSIONS:
            continue
        path = os.path.join(dir_name, name)
        standard = ext.lower() in ANNOTATION_EXTENSIONS
        try:
            ann = wfdb.rdann(os.path.join(dir_name, record), ext)
        except Exception as exc:
            if standard:
                raise CorruptFileError(f"annotation file cannot be read: "
                                       f"{type(exc).__name__}: {exc}", path=path) from exc
            continue
        if not standard and not _plausible(ann):
            continue
        fs = float(ann.fs) if ann.fs else float(header.fs)
        sample = np.asarray(ann.sample, dtype=np.int64)
        n = sample.size
        frames.append(pd.DataFrame({
            "onset": sample / fs,
            "duration": np.zeros(n),
            "description": np.array(["" if s is None else str(s) for s in ann.symbol],
                                    dtype=object),
            "aux_note": np.array(["" if a is None else str(a) for a in (ann.aux_note or
                                                                        [""] * n)],
                                 dtype=object),
            "subtype": np.asarray(ann.subtype, dtype=np.int64),
            "chan": np.asarray(ann.chan, dtype=np.int64),
            "num": np.asarray(ann.num, dtype=np.int64),
            "annotator": np.array([ext] * n, dtype=object),
            "sample": sample,
        }))
        used.append(ext)
    if not frames:
        return pd.DataFrame(), used
    table = pd.concat(frames, ignore_index=True)
    order = np.argsort(table["onset"].to_numpy(), kind="stable")
    return table.iloc[order].reset_index(drop=True), used


def _start_time(header: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if header.base_date is not None and header.base_time is not None:
        out["start_time"] = dt.datetime.combine(header.base_date, header.base_time)
    elif header.base_time is not None:
        out["base_time"] = header.base_time
    elif header.base_date is not None:
        out["start_time"] = dt.datetime.combine(header.base_date, dt.time())
    return out


def _metadata(loc: Location, header: Any, annotators: list[str],
              signal_files: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "source_file": loc.url,
        "source_format": "wfdb",
        "record_name": header.record_name,
        **_start_time(header),
        "frame_frequency": float(header.fs),
        "n_frames": int(header.sig_len or 0),
        "comments": list(header.comments or []),
        "annotators": annotators,
        "signal_files": sorted(set(signal_files)),
        "multi_segment": getattr(header, "seg_name", None) is not None,
    }
    if meta["multi_segment"]:
        meta["layout"] = header.layout
        meta["seg_name"] = list(header.seg_name)
        meta["seg_len"] = [int(x) for x in header.seg_len]
    for key in ("counter_freq", "base_counter"):
        if getattr(header, key, None) is not None:
            meta[key] = float(getattr(header, key))
    return meta


def _channel_infos(wrec: Any, renamed: dict[str, str], labels: list[str]) -> list[dict[str, Any]]:
    infos: list[dict[str, Any]] = []
    for i, label in enumerate(labels):
        info: dict[str, Any] = {}
        for field in _CHANNEL_FIELDS:
            values = getattr(wrec, field, None)
            if values is not None and i < len(values) and values[i] is not None:
                v = values[i]
                info[field] = v.item() if isinstance(v, np.generic) else v
        if label in renamed:
            info["original_label"] = renamed[label]
        infos.append(info)
    return infos


#: Bits of a digital sample per WFDB format (wider ones are stored as int32).
_FORMAT_BITS = {"8": 16, "80": 8, "508": 8, "310": 10, "311": 10, "212": 12, "16": 16,
                "61": 16, "160": 16, "516": 16, "24": 24, "524": 24, "32": 32}


def _int_dtype(fmt: str | None, values: np.ndarray) -> np.dtype[Any]:
    """The narrowest of int16/int32/int64 that holds the format's digital values."""
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if _FORMAT_BITS.get(str(fmt), 64) <= info.bits and (
                values.size == 0 or (values.min() >= info.min and values.max() <= info.max)):
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _calibration(wrec: Any, i: int) -> Calibration | None:
    """Signal ``i``'s calibration from the header's gain and baseline (None if missing)."""
    from wfdb.io._signal import INVALID_SAMPLE_VALUE

    fields: list[Any] = [getattr(wrec, name, None) for name in ("adc_gain", "baseline", "fmt")]
    if any(f is None or i >= len(f) or f[i] is None for f in fields):
        return None
    gain, base, fmt = (f[i] for f in fields)
    if not gain:
        return None
    return Calibration.wfdb(gain, base, INVALID_SAMPLE_VALUE.get(str(fmt)))


def _to_digital(physical: np.ndarray, cal: Calibration, fmt: str | None) -> np.ndarray | None:
    """The ADC values behind wfdb's physical values, or None unless they give them back bit
    for bit (NaN where wfdb has NaN).

    Inverting and checking, rather than asking wfdb for digital values, gives one read, works
    for every format (wfdb's digital mode fails on format 61) and for multi-segment records,
    whose segments may carry their own gains: such a channel simply stays physical.
    """
    nan = np.isnan(physical)
    if nan.any() and cal.missing is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        guess = np.rint(physical * cal.gain + cal.baseline)
    if not np.isfinite(guess[~nan]).all():
        return None
    guess[nan] = cal.missing if cal.missing is not None else 0
    digital = guess.astype(_int_dtype(fmt, guess))
    if digital.size and not np.array_equal(digital, guess):
        return None
    if not np.array_equal(cal.apply(digital), physical, equal_nan=True):
        return None
    return digital


def _add_signals(rec: Recording, wrec: Any, sampfrom: int, digital: bool = True) -> None:
    """Put the expanded signals on one grid per distinct ``fs * spf``: as ADC values with
    their calibrations where those reproduce wfdb's physical values exactly, else physical."""
    signals = wrec.e_p_signal
    if not wrec.n_sig or signals is None:
        return
    raw = [str(x) if x is not None else f"sig{i}" for i, x in enumerate(wrec.sig_name)]
    raw = [x if x.strip() else f"sig{i}" for i, x in enumerate(raw)]
    labels, renamed = make_unique_labels(raw)
    units = [u or "" for u in (wrec.units or [""] * wrec.n_sig)]
    infos = _channel_infos(wrec, renamed, labels)
    spf = [int(x or 1) for x in (wrec.samps_per_frame or [1] * wrec.n_sig)]
    fmts = list(wrec.fmt or [None] * wrec.n_sig)
    for k in dict.fromkeys(spf):
        rate = float(wrec.fs) * k
        first = sampfrom * k
        kept: dict[int, tuple[np.ndarray, Calibration | None]] = {}
        for i in (i for i, s in enumerate(spf) if s == k):
            cal = _calibration(wrec, i) if digital else None
            dig = None if cal is None else _to_digital(signals[i], cal, fmts[i])
            kept[i] = (signals[i], None) if dig is None else (dig, cal)
            signals[i] = None  # free wfdb's copy as we go
        runs: dict[tuple[np.dtype[Any], bool], list[int]] = {}
        for i, (arr, cal) in kept.items():
            runs.setdefault((arr.dtype, cal is not None), []).append(i)
        for (_, calibrated), idx in runs.items():
            data = np.stack([kept[i][0] for i in idx])
            cals = [c for i in idx if (c := kept[i][1]) is not None]  # all, or none of them
            rec.add_channels([labels[i] for i in idx], data, rate, [units[i] for i in idx],
                             [channel_type(raw[i], units[i]) for i in idx],
                             infos=[infos[i] for i in idx], t0=first / rate if first else 0.0,
                             calibration=cals if calibrated else None)
    rec.channels = {lab: rec.channels[lab] for lab in labels}


def _hea_path(path: str) -> str:
    """The header path for ``path``; a companion file is answered with the .hea to open."""
    dir_name, record, ext = _split_name(path)
    if ext == "hea":
        return path
    if ext in _COMPANION or os.path.exists(os.path.join(dir_name, f"{record}.hea")):
        raise UnsupportedFormatError(
            f"this is a companion file of the WFDB record {record!r}; open "
            f"{os.path.join(dir_name, record + '.hea')} instead", path=path)
    raise UnsupportedFormatError("a WFDB record is opened through its .hea header file",
                                 path=path)


def read_wfdb(loc: Location, *, annotations: bool = True, sampfrom: int = 0,
              sampto: int | None = None, digital: bool = True) -> Recording:
    """Read a WFDB record (or frames ``[sampfrom, sampto)``) into a Recording.

    ``digital=True`` keeps the ADC values and each signal's calibration (physical values
    computed on request, bit-identical to wfdb's); ``digital=False`` stores physical float64.
    """
    _hea_path(loc.path)
    if not loc.exists():
        raise source_not_found(loc.url)
    with _local_record(loc) as local:
        header = _read_header(local)
        files = check_signal_files(os.path.dirname(local), header)
        events, used = (_annotations(local, header, files) if annotations
                        else (pd.DataFrame(), []))
        wrec = _read_signals(local, sampfrom, sampto) if header.n_sig else header
    rec = Recording(_metadata(loc, header, used, files))
    _add_signals(rec, wrec, sampfrom, digital)
    if len(events):
        if sampfrom or sampto is not None:
            t0, t1 = sampfrom / header.fs, (sampto if sampto is not None
                                            else header.sig_len) / header.fs
            onset = events["onset"].to_numpy()
            events = events[(onset >= t0) & (onset < t1)]
        rec.events = events.reset_index(drop=True)
    return rec


@register
class WfdbImporter(Importer):
    """PhysioNet WFDB records through their ``.hea`` header (all formats wfdb reads)."""

    name = "wfdb"
    extensions = (".hea",)
    extra = "wfdb"
    requires = ("wfdb",)
    description = "PhysioNet WFDB records (.hea + signal and annotation files)"

    def can_open(self, loc: Location, head: bytes) -> bool:
        """A ``.hea`` whose first record line parses; a companion file with a sibling .hea."""
        dir_name, record, ext = _split_name(loc.path)
        if ext == "hea":
            return parse_record_line(head.decode("latin-1"))
        if ext in _COMPANION:
            try:
                return bool(loc.fs.exists(f"{dir_name}/{record}.hea"))
            except OSError:
                return False
        return False

    def read(self, loc: Location, **kwargs: Any) -> Recording:
        """Read the whole record (``annotations=False`` skips the annotation files)."""
        return read_wfdb(loc, **kwargs)

    def iter_blocks(self, loc: Location, block_seconds: float = 60.0,
                    **kwargs: Any) -> Iterator[Recording]:
        """Yield ``block_seconds`` of frames at a time, read with ``rdrecord(sampfrom, sampto)``."""
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be > 0, got {block_seconds!r}")
        _hea_path(loc.path)
        with _local_record(loc) as local:
            header = _read_header(local)
        n = int(header.sig_len or 0)
        step = max(1, round(block_seconds * float(header.fs)))
        if n == 0:
            yield read_wfdb(loc, **kwargs)
            return
        for start in range(0, n, step):
            yield read_wfdb(loc, sampfrom=start, sampto=min(n, start + step), **kwargs)
