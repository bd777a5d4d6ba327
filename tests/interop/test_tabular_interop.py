"""Our Parquet/Feather archives and biosigio 1.2's read each other bit-exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biosigio_lib import Recording
from biosigio_lib.archive import MANIFEST_NAME
from biosigio_lib.testing import synthetic_recording

biosigio = pytest.importorskip("biosigio")
pytestmark = pytest.mark.interop

SUFFIX = {"to_parquet": ".parquet", "to_arrow": ".feather"}


def _ours() -> Recording:
    """Values biosigio 1.2 can represent: float64 data, JSON metadata with a datetime."""
    rec = synthetic_recording(n_channels=3, seconds=1.5, fs=1000.5, n_events=0)
    rec.metadata.update({"source_file": "/data/x.edf", "lab": "Ünïversity", "age": 31})
    rec.add_channel("µV-ch", np.linspace(-1, 1, 1501), 1000.5, "µV", "EMG",
                    transducer="AgCl", physical_min=-3276.8)
    rec.add_event(0.25, 0.5, "Ωmega")
    rec.add_event(0.75, float("nan"), "no duration")
    return rec


def _assert_same_as_biosigio(ours: Recording, theirs: object) -> None:
    frame = theirs.signals
    assert list(frame.columns) == ours.labels
    for label in ours.labels:
        col = frame[label].to_numpy()
        assert col.dtype == ours.channel_data(label).dtype
        assert col.tobytes() == ours.channel_data(label).tobytes(), label
    assert frame.index.to_numpy().tobytes() == ours.grid(ours.rates[0]).times.tobytes()
    assert theirs.channels == ours.channels
    pd.testing.assert_frame_equal(theirs.events[["onset", "duration", "description"]]
                                  .astype({"description": "str"}),
                                  ours.events[["onset", "duration", "description"]],
                                  check_exact=True)
    meta = {k: v for k, v in theirs.metadata.items() if k != "source_file"}  # it renames
    assert meta == {k: v for k, v in ours.metadata.items() if k != "source_file"}


@pytest.mark.parametrize("method", ["to_parquet", "to_arrow"])
def test_biosigio_reads_ours(tmp_path: Path, method: str) -> None:
    rec = _ours()
    out = getattr(rec, method)(tmp_path / f"ours{SUFFIX[method]}")
    _assert_same_as_biosigio(rec, biosigio.Recording.from_file(out))


@pytest.mark.parametrize("method", ["to_parquet", "to_arrow"])
def test_biosigio_reads_each_grid_file_of_a_folder(tmp_path: Path, method: str) -> None:
    rec = _ours()
    rec.add_channel("slow", np.arange(30, dtype=np.float64), 20.0, "g", "ACC")
    out = Path(getattr(rec, method)(tmp_path / f"multi{SUFFIX[method]}"))
    files = sorted(p for p in out.iterdir() if p.name != MANIFEST_NAME)
    assert len(files) == 2
    for path in files:
        theirs = biosigio.Recording.from_file(str(path), importer="tabular")
        labels = list(theirs.signals.columns)
        _assert_same_as_biosigio(rec.select(labels), theirs)


def _theirs() -> object:
    rec = biosigio.Recording()
    n, fs = 2048, 512.0
    data = np.random.default_rng(7).standard_normal((n, 3))
    labels = ["C3", "C4", "Ünï"]
    rec.signals = pd.DataFrame(data, index=np.arange(n) / fs, columns=labels)
    rec.channels = {lab: {"sample_frequency": fs, "physical_dimension": "uV",
                          "prefilter": "n/a", "channel_type": "EEG", "modality": "EEG"}
                    for lab in labels}
    rec.metadata = {"subject": "s1", "start_time": dt.datetime(2020, 1, 2, 3, 4, 5, 600000),
                    "source_format": "edf"}
    rec.add_event(0.5, 0.25, "blink")
    rec.add_event(1.5, 0.0, "Ωmega")
    return rec


@pytest.mark.parametrize("method", ["to_parquet", "to_arrow"])
def test_we_read_biosigio(tmp_path: Path, method: str) -> None:
    theirs = _theirs()
    path = str(tmp_path / f"theirs{SUFFIX[method]}")
    getattr(theirs, method)(path)
    ours = Recording.from_file(path)
    assert ours.metadata == theirs.metadata
    assert ours.rates == [512.0] and ours.grid(512.0).t0 == 0.0
    for label in theirs.signals.columns:
        assert ours.channel_data(label).tobytes() == theirs.signals[label].to_numpy().tobytes()
        assert ours.channels[label] == theirs.channels[label]
    pd.testing.assert_frame_equal(ours.events, theirs.events.astype({"description": "str"}),
                                  check_exact=True)
    part = Recording.from_file(path, channels=["C4"], tmin=1.0, tmax=2.0)
    assert part.channel_data("C4").tobytes() == \
        theirs.signals["C4"].to_numpy()[512:1024].tobytes()
    assert part.grid_of("C4").t0 == 1.0


def test_biosigio_reads_an_archive_with_non_utf8_labels(tmp_path: Path) -> None:
    """Escaped column names keep the file readable by biosigio 1.2 (it sees the escaped
    label); our reader restores the exact label."""
    rec = synthetic_recording(n_channels=1, seconds=1.0, fs=100.0, n_events=0)
    rec.add_channel("caf\udce9", np.arange(100.0), 100.0, "uV", "EEG")
    out = rec.to_parquet(tmp_path / "nu.parquet")
    theirs = biosigio.Recording.from_file(out)
    assert list(theirs.signals.columns) == ["EEG001", "caf\\udce9"]
    assert theirs.signals["caf\\udce9"].to_numpy().tobytes() == \
        rec.channel_data("caf\udce9").tobytes()
    assert Recording.from_file(out).labels == ["EEG001", "caf\udce9"]
