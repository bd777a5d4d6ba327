"""Tiny EDF/BDF files for the EDF tests, written with pyedflib's own writer into tmp_path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest


def write_edf(
    path: Path,
    rates: Sequence[float] = (100.0, 100.0, 50.0),
    seconds: int = 4,
    *,
    labels: Sequence[str] | None = None,
    bdf: bool = False,
    plus: bool = True,
    annotations: Sequence[tuple[float, float, str]] = (),
    n_annotation_signals: int = 1,
    start: dt.datetime = dt.datetime(2021, 3, 4, 5, 6, 7),
    seed: int = 0,
) -> Path:
    """Write noise + sines with pyedflib (1 s records); returns ``path``."""
    pyedflib = pytest.importorskip("pyedflib")
    rng = np.random.default_rng(seed)
    labels = list(labels) if labels is not None else [f"EEG C{i}" for i in range(len(rates))]
    dmax = 8388607 if bdf else 32767
    headers, data = [], []
    for i, (lab, fs) in enumerate(zip(labels, rates)):
        n = int(seconds * fs)
        t = np.arange(n) / fs
        x = 100 * np.sin(2 * np.pi * (1 + i) * t) + rng.standard_normal(n)
        data.append(x)
        headers.append({"label": lab, "dimension": "uV", "sample_frequency": fs,
                        "physical_min": -200.0 - i, "physical_max": 200.0 + i / 4,
                        "digital_min": -dmax - 1, "digital_max": dmax,
                        "transducer": f"electrode {i}", "prefilter": "HP:0.1Hz"})
    kind = {(False, True): pyedflib.FILETYPE_EDFPLUS, (False, False): pyedflib.FILETYPE_EDF,
            (True, True): pyedflib.FILETYPE_BDFPLUS, (True, False): pyedflib.FILETYPE_BDF}
    w = pyedflib.EdfWriter(str(path), len(labels), file_type=kind[(bdf, plus)])
    try:
        w.setSignalHeaders(headers)
        w.setStartdatetime(start)
        if plus:
            w.setPatientCode("P-007")
            w.setSex(1)
            w.setEquipment("unit_test")
            if n_annotation_signals != 1:
                w.set_number_of_annotation_signals(n_annotation_signals)
        for onset, duration, text in annotations:
            w.writeAnnotation(onset, duration, text)
        w.writeSamples(data)
    finally:
        w.close()
    return path


def pyedflib_signals(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Labels and physical samples as pyedflib reads them."""
    pyedflib = pytest.importorskip("pyedflib")
    with pyedflib.EdfReader(str(path)) as r:
        return list(r.getSignalLabels()), [r.readSignal(i) for i in range(r.signals_in_file)]


def patch(path: Path, offset: int, data: bytes) -> None:
    """Overwrite bytes in place (to corrupt a header field or a TAL)."""
    raw = bytearray(path.read_bytes())
    raw[offset: offset + len(data)] = data
    path.write_bytes(bytes(raw))


def field_offset(path: Path, name: str, signal: int = 0) -> tuple[int, int]:
    """Byte offset and width of a header field (per-signal fields take ``signal``)."""
    fixed = {"version": (0, 8), "patient": (8, 80), "recording": (88, 80),
             "startdate": (168, 8), "starttime": (176, 8), "header_bytes": (184, 8),
             "reserved": (192, 44), "n_records": (236, 8), "record_duration": (244, 8),
             "n_signals": (252, 4)}
    if name in fixed:
        return fixed[name]
    ns = int(path.read_bytes()[252:256])
    widths = [("label", 16), ("transducer", 80), ("unit", 8), ("physical_min", 8),
              ("physical_max", 8), ("digital_min", 8), ("digital_max", 8),
              ("prefilter", 80), ("samples_per_record", 8), ("reserved_signal", 32)]
    pos = 256
    for field, width in widths:
        if field == name:
            return pos + signal * width, width
        pos += ns * width
    raise KeyError(name)


def set_field(path: Path, name: str, text: str, signal: int = 0) -> None:
    off, width = field_offset(path, name, signal)
    patch(path, off, text.encode("latin-1").ljust(width)[:width])


def record_layout(path: Path) -> tuple[int, int, int]:
    """Header bytes, record bytes and the byte offset of the last signal in a record (EDF)."""
    raw = path.read_bytes()
    ns = int(raw[252:256])
    off, width = field_offset(path, "samples_per_record")
    spr = [int(raw[off + i * width: off + (i + 1) * width]) for i in range(ns)]
    return int(raw[184:192]), 2 * sum(spr), 2 * sum(spr[:-1])
