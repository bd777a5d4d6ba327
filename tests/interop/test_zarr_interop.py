"""Interop with the public biosigio 1.2 package: each side reads the other's Zarr stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biosigio_lib import Recording, serving

pytestmark = pytest.mark.interop
biosigio = pytest.importorskip("biosigio")
pytest.importorskip("zarr")


def _ours() -> Recording:
    rng = np.random.default_rng(0)
    rec = Recording({"subject": "sub-07", "source_file": "x.edf", "source_format": "edf"})
    rec.add_channels([f"EEG{i}" for i in range(4)],
                     np.cumsum(rng.standard_normal((4, 8000)), axis=1) + 50.0, 1000.0, "uV", "EEG")
    rec.add_channel("EMG", rng.standard_normal(4096), 2048.0, "mV", "EMG")
    trig = np.zeros(8000)
    trig[2000:2100] = 7
    rec.add_channel("STI", trig, 1000.0, "", "STIM")
    rec.add_channel("ECG", 300 + 10 * np.sin(np.arange(2000) / 50), 250.0, "uV", "ECG")
    rec.add_event(1.0, 0.5, "go")
    rec.add_event(2.5, 0.0, "stop")
    return rec


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_biosigio_reads_our_stores(tmp_path: Path, dtype: str) -> None:
    from biosigio import Recording as BRecording

    rec = _ours()
    out = rec.to_zarr(tmp_path / "ours.zarr", dtype=dtype)
    groups = serving.list_groups(out)
    assert groups == ["eeg_250hz", "emg_1000hz", "discrete_1000hz", "ecg_250hz"]
    for group in groups:
        theirs = BRecording.from_file(out, importer="zarr", group=group)
        mine = Recording.from_file(out, group=group)
        assert list(theirs.signals.columns) == mine.labels
        np.testing.assert_array_equal(theirs.signals.to_numpy(),
                                      mine.signals.to_numpy().astype(np.float64))
        rate = mine.rates[0]
        assert all(theirs.channels[c]["sample_frequency"] == rate for c in mine.labels)
        assert theirs.events["description"].tolist() == ["go", "stop"]
        assert theirs.metadata["subject"] == "sub-07"
    trig = BRecording.from_file(out, importer="zarr", group="discrete_1000hz")
    assert trig.channels["STI"]["channel_type"] == "TRIG"  # nearest type biosigio knows
    np.testing.assert_array_equal(trig.signals["STI"].to_numpy(), rec.channel_data("STI"))


def test_we_read_biosigio_stores(tmp_path: Path) -> None:
    from biosigio import Recording as BRecording
    from biosigio.importers.zarr import ZarrImporter

    rng = np.random.default_rng(1)
    n = 4000
    data = np.cumsum(rng.standard_normal((3, n)), axis=1)
    brec = BRecording()
    labels = ["C3", "C4", "Cz"]
    brec.signals = pd.DataFrame(data.T, index=np.arange(n) / 1000.0, columns=labels)
    brec.channels = {lab: {"sample_frequency": 1000.0, "physical_dimension": "uV",
                           "prefilter": "n/a", "channel_type": "EEG", "modality": "EEG"}
                     for lab in labels}
    brec.metadata = {"subject": "b1"}
    brec.events = pd.DataFrame({"onset": [0.5, 1.5], "duration": [0.0, 0.1],
                                "description": ["a", "b"]})
    out = brec.to_zarr(str(tmp_path / "theirs.zarr"))
    theirs = ZarrImporter().load(out)
    mine = Recording.from_file(out)
    assert mine.labels == labels and mine.rates == [250.0]
    np.testing.assert_array_equal(mine.signals.to_numpy(), theirs.signals.to_numpy())
    assert mine.events["description"].tolist() == ["a", "b"]
    assert mine.metadata["subject"] == "b1" and mine.metadata["source_format"] == "zarr"
    info = mine.channels["C3"]
    assert info["original_rate"] == 1000.0 and info["anti_aliased"] is True
    view = serving.read_view(out, "eeg_250hz", 1)
    assert view.min.shape[0] == 3 and (view.min <= view.max).all()


def test_level0_agrees_with_biosigio_within_quantisation(tmp_path: Path) -> None:
    """Same data, both writers: level 0 differs only by the filters' edge handling."""
    from biosigio import Recording as BRecording

    rec = _ours().select(["EEG0", "EEG1"])
    brec = BRecording()
    brec.signals = pd.DataFrame(rec.grid(1000.0).data.T, index=np.arange(8000) / 1000.0,
                                columns=rec.labels)
    brec.channels = {lab: {"sample_frequency": 1000.0, "physical_dimension": "uV",
                           "prefilter": "n/a", "channel_type": "EEG", "modality": "EEG"}
                     for lab in rec.labels}
    theirs = Recording.from_file(brec.to_zarr(str(tmp_path / "b.zarr")))
    mine = Recording.from_file(rec.to_zarr(tmp_path / "m.zarr"))
    a, b = mine.grid(250.0).data, theirs.grid(250.0).data
    assert a.shape == b.shape
    span = np.ptp(rec.grid(1000.0).data, axis=1)[:, None]
    assert (np.abs(a - b)[:, 30:-30] <= 2e-3 * span).all()


def test_biosigio_refuses_an_events_only_store(tmp_path: Path) -> None:
    """biosigio 1.2 needs a signal group: it refuses our events-only stores (documented)."""
    from biosigio import Recording as BRecording

    rec = Recording({"subject": "sub-07"})
    rec.add_events([1.0, 2.5], [0.5, 0.0], ["go", "stop"])
    out = rec.to_zarr(tmp_path / "events.zarr")
    with pytest.raises(ValueError, match="No channel groups"):
        BRecording.from_file(out, importer="zarr")
    assert Recording.from_file(out).events["description"].tolist() == ["go", "stop"]
