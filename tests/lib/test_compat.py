"""Our side of the biosigio 1.2 API: multi-rate behaviour, deliberate differences, EDF writer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import (
    InvalidChannelError,
    MixedSamplingRateError,
    NonFiniteValueError,
    Recording,
    StoreExistsError,
    UnrepresentableValueError,
)
from biosigio_lib.calibration import Calibration
from biosigio_lib.exporters.edf import outward_text
from biosigio_lib.testing import synthetic_recording
from tests.conftest import requires


def _multi() -> Recording:
    return synthetic_recording(n_channels=2, seconds=2.0, fs=1000.0, extra_rates=(250.0,))


def test_multi_rate_accessors() -> None:
    rec = _multi()
    assert rec.get_n_channels() == 3
    with pytest.raises(MixedSamplingRateError, match="250 Hz"):
        rec.get_n_samples()
    with pytest.raises(MixedSamplingRateError, match=r"\(250, 1000 Hz\)"):
        rec.get_sampling_frequency()
    assert rec.get_duration() == 2.0
    assert rec.select_channels(["AUX1"]).get_sampling_frequency() == 250.0


def test_multi_rate_resample_each_grid() -> None:
    rec = _multi()
    out = rec.resample(125.0)
    assert out.rates == [125.0] and out.get_n_samples() == 250
    with pytest.raises(InvalidChannelError, match="only down-samples"):
        rec.resample(500.0)


def test_resample_drops_digital_values() -> None:
    rec = Recording()
    rec.add_channels(["A"], np.arange(-50, 50, dtype=np.int16)[None, :], 100.0, "uV", "EEG",
                     infos=[{"physical_min": -1.0, "digital_min": -32768, "transducer": "t"}],
                     calibration=Calibration(gain=0.5))
    out = rec.resample(50.0)
    assert out.calibration("A") is None and out.channel_data("A").dtype == np.float64
    assert out.channels["A"]["transducer"] == "t" and "physical_min" not in out.channels["A"]


def test_signals_setter_new_frame_and_none() -> None:
    rec = _multi()
    frame = rec.signals_at(1000.0)
    rec.signals = frame + 1.0
    assert rec.labels == ["EEG001", "EEG002"] and rec.rates == [1000.0]
    rec.signals = None
    assert rec.get_n_channels() == 0
    with pytest.raises(InvalidChannelError, match="DataFrame"):
        rec.signals = np.zeros(3)  # type: ignore[assignment]


def test_select_channels_keeps_events_and_calibration() -> None:
    rec = Recording()
    rec.add_channels(["A", "B"], np.ones((2, 10), np.int16), 10.0, "uV", "EEG",
                     calibration=Calibration(gain=2.0))
    rec.add_event(0.1, 0.0, "x")
    out = rec.select_channels("A")
    assert out.calibration("A") == Calibration(gain=2.0) and len(out.events) == 1


# ----------------------------------------------------------------------------- EDF writer
def _read(path: str) -> Recording:
    return Recording.from_file(path)


@pytest.mark.parametrize("bdf", [False, True])
def test_float_channels_minimal_error(tmp_path: Path, bdf: bool) -> None:
    rec = _multi()
    out = str(tmp_path / ("x.bdf" if bdf else "x.edf"))
    report = rec.to_bdf(out) if bdf else rec.to_edf(out, format="edf")
    back = _read(report.path)
    assert report.file_type == ("BDF+C" if bdf else "EDF+C") and report.exact == ()
    for label in rec.labels:
        x = rec.channel_data(label)
        err = np.max(np.abs(back.channel_data(label) - x))
        assert err == report.max_abs_error[label]
        lsb = (np.ptp(x)) / (2 ** (24 if bdf else 16) - 1)
        assert 0 < err <= 0.51 * lsb * 1.001 + 1e-12  # half an LSB (outward rounding margin)
        assert back.channels[label]["sample_frequency"] == rec.channels[label][
            "sample_frequency"]
    assert back.events["description"].tolist() == ["ev0", "ev1", "ev2"]
    # rebased on the .6789 s start (first TAL): within 1e-9 s, not always bit-exact
    np.testing.assert_allclose(back.events["onset"], rec.events["onset"], rtol=0, atol=1e-9)
    assert back.metadata["start_time"] == rec.metadata["start_time"]


def test_auto_format_and_suffix(tmp_path: Path) -> None:
    rec = _multi()
    report = rec.to_edf(str(tmp_path / "x.edf"))  # floats: 24 bits are better -> BDF
    assert report.path.endswith("x.bdf") and report.file_type == "BDF+C"
    ints = Recording({"start_time": dt.datetime(2020, 1, 1)})
    ints.add_channel("T", np.array([0, 5, 3, 7] * 25, np.int16), 100.0, "", "TRIG")
    rep = ints.to_edf(str(tmp_path / "t.edf"))
    assert rep.file_type == "EDF+C" and rep.lossless  # integers: gain 1, exact
    np.testing.assert_array_equal(_read(rep.path).channel_data("T"), ints.channel_data("T"))


def test_integer_record_duration_choice_and_errors(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("A", np.zeros(300), 3.0, "", "MISC")
    rec.add_channel("B", np.zeros(200), 2.0, "", "MISC")
    assert rec.to_edf(str(tmp_path / "a.edf"), format="edf").record_duration == 1.0
    lossless = Recording()  # 1001 samples at 1 kHz: 7 records of 0.143 s, no padding
    lossless.add_channel("A", np.zeros(1001), 1000.0, "", "MISC")
    assert lossless.to_edf(str(tmp_path / "k.edf"), format="edf").record_duration == 0.143
    odd = Recording()  # 3 Hz needs whole seconds (1/3 s does not fit the field): 4 samples
    odd.add_channel("A", np.arange(4.0), 3.0, "", "MISC")
    with pytest.raises(UnrepresentableValueError, match="pad_last_record"):
        odd.to_edf(str(tmp_path / "b.edf"), format="edf")
    rep = odd.to_edf(str(tmp_path / "b.edf"), format="edf", pad_last_record=True)
    assert rep.padded_samples == {"A": 2} and not rep.lossless
    np.testing.assert_array_equal(_read(rep.path).channel_data("A"), [0, 1, 2, 3, 3, 3])
    with pytest.raises(UnrepresentableValueError, match="whole number of samples"):
        odd.to_edf(str(tmp_path / "c.edf"), format="edf", record_duration=0.0001234)
    with pytest.raises(StoreExistsError):
        odd.to_edf(str(tmp_path / "b.edf"), format="edf", pad_last_record=True)


def test_clear_errors(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("A", np.array([0.0, np.nan] * 50), 100.0, "", "MISC")
    with pytest.raises(NonFiniteValueError, match="'A'"):
        rec.to_edf(str(tmp_path / "n.edf"), format="edf")
    long = Recording()
    long.add_channel("a label longer than 16", np.zeros(100), 100.0, "", "MISC")
    with pytest.raises(UnrepresentableValueError, match="16-character"):
        long.to_edf(str(tmp_path / "l.edf"), format="edf")
    with pytest.raises(InvalidChannelError, match="never clips"):
        _multi().to_edf(str(tmp_path / "c.edf"), clip_outliers=True)
    with pytest.raises(InvalidChannelError, match="to_bdf writes BDF"):
        _multi().to_bdf(str(tmp_path / "c.bdf"), format="edf")
    bad = _multi()
    bad.add_event(0.5, 0.0, "")
    with pytest.raises(InvalidChannelError, match="no description"):
        bad.to_edf(str(tmp_path / "e.edf"))


def test_common_t0_moves_start(tmp_path: Path) -> None:
    rec = synthetic_recording(n_channels=1, seconds=4.0, fs=100.0).select(tmin=1.0)
    rep = rec.to_edf(str(tmp_path / "s.edf"), format="bdf")
    back = _read(rep.path)
    assert rep.time_shift == 1.0
    assert back.metadata["start_time"] == rec.metadata["start_time"] + dt.timedelta(seconds=1)
    np.testing.assert_allclose(back.events["onset"] + 1.0, rec.events["onset"], atol=1e-12)


def test_discontinuous_edf_plus_d(tmp_path: Path) -> None:
    rec = Recording({"start_time": dt.datetime(2021, 3, 4, 5, 6, 7), "edf_record_duration": 1.0,
                     "edf_gaps": [[2.0, 3.0]], "edf_record_onsets": [0.0, 1.0, 5.0, 6.0]})
    rec.add_channels(["A"], np.arange(400, dtype=np.int16)[None, :], 100.0, "uV", "EEG",
                     infos=[{"physical_min": -100.0, "physical_max": 100.0,
                             "digital_min": -32768, "digital_max": 32767}],
                     calibration=Calibration.edf(-100.0, 100.0, -32768, 32767))
    rep = rec.to_edf(str(tmp_path / "d.edf"))
    assert rep.file_type == "EDF+D" and rep.exact == ("A",)
    with pytest.warns(UserWarning, match="gap"):
        back = _read(rep.path)
    assert back.metadata["edf_gaps"] == [[2.0, 3.0]]
    assert back.metadata["edf_record_onsets"] == [0.0, 1.0, 5.0, 6.0]
    assert back.digital_data("A").tobytes() == rec.digital_data("A").tobytes()


@requires("pyedflib")
def test_utf8_annotations_and_durations_with_pyedflib(tmp_path: Path) -> None:
    import pyedflib

    rec = synthetic_recording(n_channels=1, seconds=2.0, fs=256.0, n_events=0)
    rec.add_event(0.125, float("nan"), "Ωmega µV")
    rec.add_event(1.0, 0.0, "zero")
    rec.add_event(1.5, 0.25, "quarter")
    rep = rec.to_edf(str(tmp_path / "u.edf"), format="edf")
    with pyedflib.EdfReader(rep.path) as f:
        onsets, durations, texts = f.readAnnotations()
    assert list(texts) == ["Ωmega µV", "zero", "quarter"]
    np.testing.assert_allclose(onsets, [0.125, 1.0, 1.5])
    back = _read(rep.path).events
    assert np.isnan(back["duration"][0]) and back["duration"].tolist()[1:] == [0.0, 0.25]
    assert durations.tolist()[1:] == [0.0, 0.25]


def test_outward_text() -> None:
    assert outward_text(-3276.81234, up=False) == "-3276.82"
    assert outward_text(1234.56789, up=True) == "1234.568"
    assert outward_text(1e-9, up=True) == "0.000001"
    with pytest.raises(UnrepresentableValueError, match="coarser unit"):
        outward_text(-1.5e12, up=False)
