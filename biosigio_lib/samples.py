"""A small, realistic sample dataset for the demo and the tests, written by the formats' own
writers: a BIDS-style EEG dataset of EDF+ files (mixed rates, annotations, sidecars) with
pyedflib's ``EdfWriter``, a WFDB database with ``wfdb.wrsamp``/``wrann``, and an XDF file
written here by hand (pyxdf only reads) that pyxdf reads back.

Layout under the chosen root::

    bids_demo/  dataset_description.json participants.tsv sub-0N/eeg/sub-0N_task-*_eeg.*
    wfdb_demo/  ecg01.hea ecg01.dat ecg01.atr
    xdf_demo/   session01.xdf
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

from .errors import MissingDependencyError

__all__ = ["SAMPLE_RECORDINGS", "make_sample_dataset", "write_xdf"]

#: (subject, task, seconds): the EDF files of the BIDS part.
SAMPLE_RECORDINGS: tuple[tuple[str, str, int], ...] = (
    ("01", "rest", 60), ("01", "motor", 45), ("02", "rest", 60))
_START = dt.datetime(2024, 3, 1, 9, 30, 15, 250000)


def _need(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"writing the sample dataset needs {module}: pip install 'biosigio-pipeline[{extra}]'"
        ) from exc


# ---------------------------------------------------------------------------- signals
def _eeg(rng: np.random.Generator, n_ch: int, n: int, fs: float) -> np.ndarray:
    """Alpha rhythm plus 1/f-like background, in microvolts."""
    t = np.arange(n) / fs
    white = rng.standard_normal((n_ch, n))
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1 / fs)
    spec /= np.sqrt(np.maximum(f, 1.0))
    background = np.fft.irfft(spec, n=n, axis=1)
    background *= 15.0 / background.std(axis=1, keepdims=True)
    alpha = 20.0 * np.sin(2 * np.pi * (9.5 + 0.3 * np.arange(n_ch))[:, None] * t)
    alpha *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.05 * t)
    return background + alpha


def _ecg(rng: np.random.Generator, n: int, fs: float, bpm: float = 66.0) -> np.ndarray:
    """A QRS-like spike train with T waves and baseline wander, in millivolts."""
    t = np.arange(n) / fs
    beats = np.cumsum(60.0 / bpm + 0.04 * rng.standard_normal(int(t[-1] * bpm / 60) + 2))
    train = np.zeros(n)
    train[np.round(beats[beats < t[-1]] * fs).astype(np.int64)] = 1.0
    k = np.arange(-int(0.1 * fs), int(0.5 * fs)) / fs  # one beat: QRS spike, then the T wave
    template = 1.2 * np.exp(-((k / 0.012) ** 2)) + 0.3 * np.exp(-(((k - 0.25) / 0.05) ** 2))
    sig = np.convolve(train, template)[int(0.1 * fs): int(0.1 * fs) + n]
    sig += 0.05 * np.sin(2 * np.pi * 0.25 * t)
    return sig + 0.02 * rng.standard_normal(n)


def _beat_samples(sig: np.ndarray, fs: float) -> np.ndarray:
    """Indices of the R peaks (local maxima above half the max)."""
    thr = 0.5 * sig.max()
    peak = (sig[1:-1] > sig[:-2]) & (sig[1:-1] >= sig[2:]) & (sig[1:-1] > thr)
    idx = np.flatnonzero(peak) + 1
    keep: npt.NDArray[np.bool_] = (np.concatenate([[True], np.diff(idx) > 0.2 * fs])
                                   if idx.size else idx.astype(bool))
    return idx[keep]


# ---------------------------------------------------------------------------- EDF
def _write_edf(path: Path, rng: np.random.Generator, seconds: int,
               task: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pyedflib = _need("pyedflib", "edf")
    eeg_labels = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
    chans: list[tuple[str, str, int, str, np.ndarray]] = []
    eeg = _eeg(rng, len(eeg_labels), 256 * seconds, 256.0)
    chans += [(lab, "uV", 256, "EEG", eeg[i]) for i, lab in enumerate(eeg_labels)]
    chans.append(("ECG", "mV", 512, "ECG", _ecg(rng, 512 * seconds, 512.0)))
    acc_t = np.arange(32 * seconds) / 32.0
    chans.append(("AccX", "g", 32, "ACC",
                  0.1 * np.sin(2 * np.pi * 0.3 * acc_t) + 0.01 * rng.standard_normal(acc_t.size)))
    w = pyedflib.EdfWriter(str(path), len(chans), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        headers = []
        for label, unit, fs, _kind, data in chans:
            lim = float(np.ceil(np.abs(data).max() * 1.1 * 100) / 100)
            headers.append({"label": label, "dimension": unit, "sample_frequency": fs,
                            "physical_max": lim, "physical_min": -lim, "digital_max": 32767,
                            "digital_min": -32768, "transducer": "AgAgCl electrode"
                            if unit == "uV" else "", "prefilter": "HP:0.1Hz LP:100Hz"})
        w.setSignalHeaders(headers)
        w.setStartdatetime(_START)
        w.setPatientCode("sub-demo")
        w.writeSamples([np.ascontiguousarray(c[4]) for c in chans])
        events = []
        for i, onset in enumerate(np.arange(0.5, seconds - 1.5, max(1.0, seconds / 6))):
            desc = "eyes closed" if task == "rest" and i % 2 == 0 else (
                "eyes open" if task == "rest" else f"movement {i + 1}: hand ✋")
            w.writeAnnotation(float(onset), 1.0, desc)
            events.append({"onset": float(onset), "duration": 1.0, "trial_type": desc})
    finally:
        w.close()
    return [{"name": c[0], "type": c[3], "units": c[1], "sampling_frequency": c[2]}
            for c in chans], events


def _tsv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    cols = list(rows[0])
    lines = ["\t".join(cols)] + ["\t".join(str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_bids(root: Path, rng: np.random.Generator, seconds_scale: float) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "biosigio demo", "BIDSVersion": "1.9.0", "DatasetType": "raw",
         "License": "CC0", "Authors": ["biosigio-pipeline"]}, indent=2))
    _tsv(root / "participants.tsv", [{"participant_id": "sub-01", "age": 31, "sex": "F"},
                                     {"participant_id": "sub-02", "age": 45, "sex": "M"}])
    out = []
    for sub, task, seconds in SAMPLE_RECORDINGS:
        secs = max(4, int(seconds * seconds_scale))
        folder = root / f"sub-{sub}" / "eeg"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{sub}_task-{task}"
        edf = folder / f"{stem}_eeg.edf"
        chans, events = _write_edf(edf, rng, secs, task)
        _tsv(folder / f"{stem}_channels.tsv",
             [{**c, "status": "good"} for c in chans])
        _tsv(folder / f"{stem}_events.tsv", events)
        (folder / f"{stem}_eeg.json").write_text(json.dumps(
            {"TaskName": task, "SamplingFrequency": 256, "PowerLineFrequency": 50,
             "EEGReference": "Cz", "SoftwareFilters": "n/a", "RecordingDuration": secs,
             "EEGChannelCount": 6, "ECGChannelCount": 1, "MiscChannelCount": 1}, indent=2))
        out.append(edf)
    return out


# ---------------------------------------------------------------------------- WFDB
def _write_wfdb(folder: Path, rng: np.random.Generator, seconds: int) -> Path:
    wfdb = _need("wfdb", "wfdb")
    folder.mkdir(parents=True, exist_ok=True)
    fs = 360
    lead1 = _ecg(rng, fs * seconds, float(fs))
    lead2 = 0.6 * lead1 + 0.03 * rng.standard_normal(lead1.size)
    sig = np.column_stack([lead1, lead2])
    wfdb.wrsamp("ecg01", fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig,
                fmt=["212", "212"], adc_gain=[200.0, 200.0], baseline=[0, 0],
                base_date=_START.date(), base_time=_START.time().replace(microsecond=0),
                comments=["demo record written by biosigio_lib.samples"], write_dir=str(folder))
    beats = _beat_samples(lead1, float(fs))
    symbols = np.where(np.arange(beats.size) % 17 == 5, "V", "N")
    wfdb.wrann("ecg01", "atr", sample=beats, symbol=list(symbols), write_dir=str(folder))
    return folder / "ecg01.hea"


# ---------------------------------------------------------------------------- XDF
@dataclass(frozen=True)
class XdfStream:
    """One stream to write: numeric samples ``(n, n_ch)`` or string markers ``(n,)``."""

    name: str
    type: str
    channel_format: str  # 'float32' | 'double64' | 'int16' | 'int32' | 'string'
    nominal_srate: float
    time_stamps: np.ndarray
    time_series: Any
    labels: Sequence[str] = ()
    unit: str = ""


_XDF_NUMERIC = {"float32": "<f4", "double64": "<f8", "int8": "<i1", "int16": "<i2",
                "int32": "<i4", "int64": "<i8"}


def _varlen(n: int) -> bytes:
    if n < 256:
        return b"\x01" + struct.pack("<B", n)
    if n < 2**32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _stream_header(sid: int, s: XdfStream, created: float) -> bytes:
    chans = "".join(f"<channel><label>{escape(lab)}</label><unit>{escape(s.unit)}</unit>"
                    f"<type>{escape(s.type)}</type></channel>" for lab in s.labels)
    n_ch = 1 if s.channel_format == "string" else int(np.asarray(s.time_series).shape[1])
    xml = (f'<?xml version="1.0"?><info><name>{escape(s.name)}</name><type>{escape(s.type)}'
           f"</type><channel_count>{n_ch}</channel_count><nominal_srate>{s.nominal_srate!r}"
           f"</nominal_srate><channel_format>{s.channel_format}</channel_format>"
           f"<source_id>biosigio-demo-{sid}</source_id><version>1.1</version>"
           f"<created_at>{created!r}</created_at><uid>demo-{sid}</uid>"
           f"<session_id>default</session_id><hostname>demo</hostname>"
           f"<desc><channels>{chans}</channels></desc></info>")
    return _chunk(2, struct.pack("<I", sid) + xml.encode())


def _samples(sid: int, s: XdfStream) -> bytes:
    ts = np.asarray(s.time_stamps, dtype="<f8")
    buf = io.BytesIO()
    buf.write(struct.pack("<I", sid) + _varlen(ts.size))
    if s.channel_format == "string":
        for t, text in zip(ts, s.time_series):
            raw = str(text).encode()
            buf.write(b"\x08" + struct.pack("<d", t) + _varlen(len(raw)) + raw)
    else:  # vectorised: one record per sample = [8][timestamp][values]
        values = np.ascontiguousarray(
            np.asarray(s.time_series, dtype=_XDF_NUMERIC[s.channel_format]))
        rec = np.dtype([("flag", "u1"), ("t", "<f8"), ("v", values.dtype, (values.shape[1],))])
        arr = np.empty(ts.size, dtype=rec)
        arr["flag"], arr["t"], arr["v"] = 8, ts, values
        buf.write(arr.tobytes())
    return _chunk(3, buf.getvalue())


def write_xdf(path: str | os.PathLike[str], streams: Sequence[XdfStream], *,
              clock_offset: float = 0.0) -> None:
    """Write a minimal valid XDF 1.0 file: header, stream headers, samples, offsets, footers."""
    parts = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    created = 1000.0
    for sid, s in enumerate(streams, start=1):
        parts.append(_stream_header(sid, s, created))
    for sid, s in enumerate(streams, start=1):
        parts.append(_samples(sid, s))
    for sid, s in enumerate(streams, start=1):
        ts = np.asarray(s.time_stamps, dtype=np.float64)
        for t in (ts[0], ts[-1]) if ts.size else ():
            parts.append(_chunk(4, struct.pack("<Idd", sid, float(t), clock_offset)))
    for sid, s in enumerate(streams, start=1):
        ts = np.asarray(s.time_stamps, dtype=np.float64)
        xml = (f'<?xml version="1.0"?><info><first_timestamp>{float(ts[0])!r}</first_timestamp>'
               f"<last_timestamp>{float(ts[-1])!r}</last_timestamp>"
               f"<sample_count>{ts.size}</sample_count><clock_offsets>"
               f"<offset><time>{float(ts[0])!r}</time><value>{clock_offset!r}</value></offset>"
               f"</clock_offsets></info>")
        parts.append(_chunk(6, struct.pack("<I", sid) + xml.encode()))
    tmp = Path(f"{os.fspath(path)}.tmp")
    tmp.write_bytes(b"".join(parts))
    os.replace(tmp, path)


def _write_xdf_demo(folder: Path, rng: np.random.Generator, seconds: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fs, t0 = 500.0, 5000.0
    n = int(fs * seconds)
    labels = ["Fz", "Cz", "Pz", "Oz"]
    eeg = _eeg(rng, len(labels), n, fs).T.astype(np.float32)
    emg_fs = 1000.0
    m = int(emg_fs * seconds)
    burst = (np.sin(2 * np.pi * 0.2 * np.arange(m) / emg_fs) > 0.6).astype(np.float64)
    emg = (50.0 * rng.standard_normal((m, 2)) * (0.1 + burst[:, None])).astype(np.float32)
    marks_t = t0 + 0.37 + np.arange(1.0, seconds - 1, 4.0)
    streams = [
        XdfStream("DemoEEG", "EEG", "float32", fs, t0 + np.arange(n) / fs, eeg, labels, "uV"),
        XdfStream("DemoEMG", "EMG", "float32", emg_fs, t0 + 0.25 + np.arange(m) / emg_fs, emg,
                  ["EMG_L", "EMG_R"], "uV"),
        XdfStream("Markers", "Markers", "string", 0.0, marks_t,
                  [f"stimulus {i}" for i in range(marks_t.size)], ["Marker"]),
    ]
    path = folder / "session01.xdf"
    write_xdf(path, streams, clock_offset=-0.0125)
    return path


def make_sample_dataset(root: str | os.PathLike[str], *, seconds_scale: float = 1.0,
                        seed: int = 0) -> list[Path]:
    """Write the demo dataset under ``root`` (created); return the main file of each recording.

    ``seconds_scale`` shortens every recording (tests use ~0.1 for speed).
    """
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = _write_bids(base / "bids_demo", rng, seconds_scale)
    out.append(_write_wfdb(base / "wfdb_demo", rng, max(4, int(60 * seconds_scale))))
    out.append(_write_xdf_demo(base / "xdf_demo", rng, max(4, int(30 * seconds_scale))))
    return out
