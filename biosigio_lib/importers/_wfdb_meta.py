"""WFDB helpers: channel types from signal names, companion-file checks, annotation discovery.

Kept apart from ``wfdb_.py`` so the importer module only wires the wfdb package to a Recording.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import CorruptFileError, MissingSidecarError, TruncatedFileError

__all__ = [
    "ANNOTATION_EXTENSIONS",
    "NOT_ANNOTATION_EXTENSIONS",
    "channel_type",
    "check_signal_files",
    "parse_record_line",
]

#: Annotator extensions read as annotations without a plausibility check (a failure to read
#: one of these is an error, never a silent skip).
ANNOTATION_EXTENSIONS: frozenset[str] = frozenset({
    "atr", "ann", "ecg", "qrs", "qrsc", "wabp", "wqrs", "sqrs", "gqrs", "jqrs", "ari", "apn",
    "blh", "blm", "alh", "alm", "bph", "bpm", "st", "stf", "stb", "pu", "pu0", "pu1",
    "pwave", "arousal", "trigger", "event", "marker", "man", "hypn", "all", "a", "b",
})

#: Extensions never probed as annotations (headers, signal data, documents, other formats).
NOT_ANNOTATION_EXTENSIONS: frozenset[str] = frozenset({
    "hea", "dat", "mat", "xyz", "edf", "bdf", "xdf", "txt", "csv", "tsv", "json", "md",
    "html", "htm", "xml", "pdf", "png", "jpg", "jpeg", "gif", "zip", "gz", "tar", "bz2",
    "xz", "npy", "npz", "parquet", "feather", "arrow", "zarr", "flac", "wav", "log",
    "sha256", "md5", "py", "ini", "yaml", "yml", "info", "sh", "xws", "tmp",
})

# A record line: name[/n_seg] [n_sig [fs[/counter_fs[(base_counter)]] [n_frames [time [date]]]]]
_RECORD_LINE = re.compile(
    r"^[-\w]+(/\d+)?(\s+\d+(\s+[\d.eE+-]+(/[\d.eE+-]+(\([\d.eE+-]+\))?)?"
    r"(\s+\d+(\s+\S+(\s+\S+)?)?)?)?)?\s*$"
)

_ECG = re.compile(
    r"^(ml|m)?(i{1,3}|a?v[rlf]|v\d{0,2}r?|v[xyz]|mv\d|cm\d|d[1-3]|ml\d)$|ecg|ekg|lead",
    re.IGNORECASE,
)
_EEG_10_20 = re.compile(
    r"^(eeg[\s_-]*)?(fp|af|f|fc|ft|c|cp|tp|t|p|po|o|a|m|i|n)(z|\d{1,2})([-\s/].*)?$",
    re.IGNORECASE,
)
# (pattern on the lower-cased label, type); first match wins, after ECG/EEG checks.
_BY_NAME: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"eog|^(loc|roc)$"), "EOG"),
    (re.compile(r"emg|chin"), "EMG"),
    (re.compile(r"eeg"), "EEG"),
    (re.compile(r"^(n?i?abp|art|pap|cvp|icp|lap|rap|uap|bp|nbp\w*|[sdm]?bp)$|press"), "BP"),
    (re.compile(r"pleth|ppg"), "PPG"),
    (re.compile(r"spo2|sao2|sat"), "SPO2"),
    (re.compile(r"co2"), "CO2"),
    (re.compile(r"resp|thor|abd|airflow|flow|nasal|breath"), "RESP"),
    (re.compile(r"temp"), "TEMP"),
    (re.compile(r"^acc|accel"), "ACC"),
    (re.compile(r"gyro"), "GYRO"),
    (re.compile(r"stim|trig|marker"), "TRIG"),
)


def channel_type(name: str, unit: str) -> str:
    """Channel type from a WFDB signal name (ECG leads, 10-20 EEG sites...), then the unit."""
    label = (name or "").strip()
    low = label.lower()
    if _ECG.search(low):
        return "ECG"
    if _EEG_10_20.match(label) or low.startswith("eeg"):
        return "EEG"
    for pattern, ctype in _BY_NAME:
        if pattern.search(low):
            return ctype
    if (unit or "").strip().lower() in {"mmhg", "cmh2o", "kpa"}:
        return "BP"
    return "MISC"


def parse_record_line(text: str) -> bool:
    """True when the first non-comment, non-blank line of a header parses as a record line."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return bool(_RECORD_LINE.match(stripped))
    return False


def _segment_headers(dir_name: str, header: Any) -> list[Any]:
    """The single-segment headers a record's samples live in (itself, or its segments)."""
    import wfdb

    if getattr(header, "seg_name", None) is None:
        return [header]
    out = []
    for seg in header.seg_name:
        if seg == "~":
            continue
        path = os.path.join(dir_name, f"{seg}.hea")
        if not os.path.exists(path):
            raise MissingSidecarError(
                f"segment header {seg}.hea of multi-segment record {header.record_name!r} "
                "is missing", path=path)
        try:
            out.append(wfdb.rdheader(os.path.join(dir_name, seg)))
        except Exception as exc:  # wfdb raises bare ValueError/IndexError on bad headers
            raise CorruptFileError(f"cannot parse segment header: {exc}", path=path) from exc
    return out


def check_signal_files(dir_name: str, header: Any) -> list[str]:
    """Check every signal file exists and holds the frames its header promises; list them.

    Raises :class:`MissingSidecarError` naming a missing file and
    :class:`TruncatedFileError` for a file shorter than ``sig_len`` frames (compressed FLAC
    formats, whose size is not predictable, are left to the reader).
    """
    from wfdb.io import _signal

    files: list[str] = []
    for seg in _segment_headers(dir_name, header):
        names = seg.file_name or []
        per_file: dict[str, list[int]] = {}
        for i, fname in enumerate(names):
            per_file.setdefault(fname, []).append(i)
        for fname, idx in per_file.items():
            if fname == "~":  # a variable-layout header describes signals, holds none
                continue
            path = os.path.join(dir_name, fname)
            files.append(fname)
            if not os.path.exists(path):
                raise MissingSidecarError(
                    f"signal file {fname!r} of record {seg.record_name!r} is missing "
                    f"(needed by signal(s) {[seg.sig_name[i] for i in idx]})", path=path)
            fmt = seg.fmt[idx[0]]
            if seg.sig_len is None or seg.sig_len == 0 or fmt in _signal.COMPRESSED_FMTS:
                continue
            if fmt not in _signal.BYTES_PER_SAMPLE:
                raise CorruptFileError(f"signal {seg.sig_name[idx[0]]!r}: unknown format "
                                       f"{fmt!r}", path=path)
            spf = sum(int(seg.samps_per_frame[i] or 1) for i in idx)
            offset = int(seg.byte_offset[idx[0]] or 0) if seg.byte_offset else 0
            have = _signal._infer_sig_len(fname, fmt, spf, offset, dir_name)
            if have < seg.sig_len:
                raise TruncatedFileError(
                    f"signal file holds {have} frame(s), the header of record "
                    f"{seg.record_name!r} promises {seg.sig_len}", path=path)
    return files
