"""Same inputs, same results: each biosigio 1.2 Recording method on ours and on biosigio's.

Copied values are compared bit-exactly; resampled values (computed by the same
``scipy.signal.resample_poly`` on channel-major instead of sample-major arrays) within
1e-12 x the channel's peak amplitude. Multi-rate behaviour (which biosigio cannot hold) and
deliberate differences are tested in tests/lib/test_compat.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import EmptyRecordingError, MixedSamplingRateError, Recording

biosigio = pytest.importorskip("biosigio")
pytestmark = pytest.mark.interop

RESAMPLE_RTOL = 1e-12  # of the channel's peak |value|
CHANNELS = [("EMG1", "EMG", "mV"), ("EMG2", "EMG", "mV"), ("EEG1", "EEG", "uV"),
            ("ACC1", "ACC", "g")]


def _pair(n: int = 2000, fs: float = 1000.0) -> tuple[Recording, object]:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((len(CHANNELS), n)).cumsum(axis=1)
    ours, theirs = Recording(), biosigio.Recording()
    for (label, ctype, unit), row in zip(CHANNELS, data):
        ours.add_channel(label, row, fs, unit, ctype)
        theirs.add_channel(label, row, fs, unit, ctype, prefilter="")
    for r in (ours, theirs):
        r.set_metadata("start_time", dt.datetime(2024, 5, 6, 7, 8, 9))
        r.add_event(0.5, 0.25, "go")
    return ours, theirs


def _same_signals(ours: Recording, theirs: object, rtol: float = 0.0) -> None:
    frame = theirs.signals
    assert list(frame.columns) == ours.labels
    for label in ours.labels:
        a, b = ours.channel_data(label), frame[label].to_numpy()
        if rtol == 0.0:
            assert a.tobytes() == b.tobytes(), label
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=rtol * np.max(np.abs(b)))


@pytest.mark.parametrize("n", [0, 1, 2, 1001])
def test_counts_rate_duration(n: int) -> None:
    ours, theirs = _pair(n=n, fs=512.0) if n else (Recording(), biosigio.Recording())
    assert ours.get_n_channels() == theirs.get_n_channels()
    assert ours.get_n_samples() == theirs.get_n_samples()
    assert ours.get_duration() == theirs.get_duration()  # bit-exact: n * (1 / rate)
    if n:
        assert ours.get_sampling_frequency() == theirs.get_sampling_frequency()
    else:
        with pytest.raises(ValueError, match="No channels"):
            theirs.get_sampling_frequency()
        with pytest.raises(EmptyRecordingError, match="No channels"):
            ours.get_sampling_frequency()


def test_mixed_rate_sampling_frequency_both_raise_valueerror() -> None:
    ours, theirs = Recording(), biosigio.Recording()
    for r in (ours, theirs):
        r.add_channel("A", np.zeros(100), 500, "uV", "EEG")
    ours.add_channel("B", np.zeros(200), 1000, "uV", "EMG")
    theirs.add_channel("B", np.zeros(100), 1000, "uV", "EMG")
    with pytest.raises(ValueError, match="differing sampling"):
        theirs.get_sampling_frequency()
    with pytest.raises(MixedSamplingRateError, match=r"differing sampling frequencies \(500, 1000"):
        ours.get_sampling_frequency()


def test_metadata_accessors() -> None:
    ours, theirs = _pair()
    for r in (ours, theirs):
        r.set_metadata("subject", "S1")
    for key in ("subject", "missing", "start_time"):
        assert ours.get_metadata(key) == theirs.get_metadata(key)
        assert ours.has_metadata(key) is theirs.has_metadata(key)


def test_type_and_modality_queries() -> None:
    ours, theirs = _pair()
    assert set(ours.get_channel_types()) == set(theirs.get_channel_types())
    for ctype in ("EMG", "EEG", "ACC", "ECG"):
        assert ours.get_channels_by_type(ctype) == theirs.get_channels_by_type(ctype)
    # EEG, EMG and MISC mean the same in both vocabularies; ACC is our MOTION (see docs)
    for modality in ("EEG", "EMG"):
        assert ours.get_channels_by_modality(modality) == theirs.get_channels_by_modality(
            modality)
    assert ours.get_channels_by_modality("BEH") == theirs.get_channels_by_modality("BEH") == []
    with pytest.raises(ValueError, match="Unknown modality"):
        theirs.get_channels_by_modality("nonsense")
    with pytest.raises(ValueError, match="Unknown modality"):
        ours.get_channels_by_modality("nonsense")


@pytest.mark.parametrize("kwargs", [
    {"channels": ["EEG1", "EMG1"]}, {"channels": "ACC1"}, {"channel_type": "EMG"},
    {"modality": "EMG"}, {"channels": ["EMG1", "EEG1"], "channel_type": "EMG"},
    {"channels": ("EMG2", "EMG1"), "modality": "EMG"},
])
@pytest.mark.parametrize("inplace", [False, True])
def test_select_channels(kwargs: dict, inplace: bool) -> None:
    ours, theirs = _pair()
    got_ours = ours.select_channels(**kwargs, inplace=inplace)
    got_theirs = theirs.select_channels(**kwargs, inplace=inplace)
    assert (got_ours is ours) is inplace and (got_theirs is theirs) is inplace
    _same_signals(got_ours, got_theirs)
    assert list(got_ours.channels) == list(got_theirs.channels)
    for label, info in got_theirs.channels.items():
        same = {k: v for k, v in got_ours.channels[label].items() if k != "modality"}
        assert same == {k: v for k, v in info.items() if k != "modality"}
        if info["channel_type"] in ("EEG", "EMG"):  # ACC: our MOTION, biosigio's MISC
            assert got_ours.channels[label]["modality"] == info["modality"]
    assert got_ours.metadata == got_theirs.metadata


@pytest.mark.parametrize("kwargs", [
    {}, {"channels": ["nope"]}, {"channels": ["EMG1", "EMG1"]}, {"channel_type": "GYRO"},
    {"modality": "MEG"}, {"channels": ["EEG1"], "channel_type": "EMG"},
    {"channels": ["ACC1"], "modality": "EEG"},
])
def test_select_channels_errors(kwargs: dict) -> None:
    ours, theirs = _pair()
    with pytest.raises(ValueError) as theirs_err:
        theirs.select_channels(**kwargs)
    with pytest.raises(ValueError) as ours_err:
        ours.select_channels(**kwargs)
    assert str(ours_err.value) == str(theirs_err.value)


def test_set_channel() -> None:
    ours, theirs = _pair()
    for r in (ours, theirs):
        r.set_channel("EEG1", channel_type="EMG", physical_dimension="mV", prefilter="HP 10")
        r.set_channel("EMG2", modality="MISC")
    for label in ("EEG1", "EMG2"):
        for key in ("channel_type", "modality", "physical_dimension", "prefilter"):
            assert ours.channels[label][key] == theirs.channels[label][key]
    for r in (ours, theirs):
        with pytest.raises(KeyError, match="Channel not found"):
            r.set_channel("nope", channel_type="EEG")


@pytest.mark.parametrize(("fs", "target"), [(1000.0, 250.0), (1000.0, 300.0), (2048.0, 500.0),
                                            (1000.0, 1000.0), (360.0, 100.0)])
def test_resample_matches(fs: float, target: float) -> None:
    ours, theirs = _pair(n=3001, fs=fs)
    a, b = ours.resample(target), theirs.resample(target)
    assert a.get_n_samples() == b.get_n_samples()
    assert a.get_sampling_frequency() == b.get_sampling_frequency()
    assert {k: v["sample_frequency"] for k, v in a.channels.items()} == {
        k: v["sample_frequency"] for k, v in b.channels.items()}
    _same_signals(a, b, rtol=RESAMPLE_RTOL)
    assert a.events[["onset", "duration", "description"]].equals(
        b.events[["onset", "duration", "description"]].astype({"description": "str"}))


def test_resample_errors() -> None:
    ours, theirs = _pair()
    for r in (ours, theirs):
        with pytest.raises(ValueError, match="exceeds"):
            r.resample(2000.0)
        with pytest.raises(ValueError, match="positive"):
            r.resample(0)
    with pytest.raises(ValueError, match="No signals loaded"):
        biosigio.Recording().resample(100)
    with pytest.raises(EmptyRecordingError, match="No signals loaded"):
        Recording().resample(100)


def test_signals_setter() -> None:
    ours, theirs = _pair()
    for r in (ours, theirs):
        r.signals = r.signals * 2.0
    _same_signals(ours, theirs)
    assert ours.get_sampling_frequency() == theirs.get_sampling_frequency()


def test_to_edf_reads_back_in_biosigio(tmp_path: Path) -> None:
    """biosigio 1.2 reads our EDF; its values equal ours within our reported error."""
    ours, _ = _pair()
    report = ours.to_edf(tmp_path / "x.edf", format="edf")
    back = biosigio.Recording.from_file(report.path, bids_channels="off")
    assert list(back.signals.columns) == ours.labels
    for label in ours.labels:
        err = np.max(np.abs(back.signals[label].to_numpy() - ours.channel_data(label)))
        assert err <= report.max_abs_error[label] > 0
    assert back.events["description"].tolist() == ["go"]
    assert back.events["onset"].tolist() == [0.5]


def test_to_edf_argument_errors_match(tmp_path: Path) -> None:
    for r in (Recording(), biosigio.Recording()):
        with pytest.raises(ValueError, match="No signals loaded"):
            r.to_edf(str(tmp_path / "e.edf"), format="edf", bypass_analysis=True)
