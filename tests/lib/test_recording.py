"""The Recording model: grids per rate, views, typed errors, events."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from biosigio_lib import (
    DuplicateLabelError,
    InvalidChannelError,
    MixedSamplingRateError,
    NonFiniteValueError,
    Recording,
    make_unique_labels,
)
from biosigio_lib.testing import synthetic_recording


def test_single_rate_signals_is_a_view():
    rec = synthetic_recording(n_channels=3, seconds=1.0, fs=512.0)
    df = rec.signals
    assert df.shape == (512, 3)
    assert list(df.columns) == ["EEG001", "EEG002", "EEG003"]
    assert np.shares_memory(df["EEG002"].to_numpy(), rec.grid(512.0).data)
    assert df.index[1] == 1 / 512.0


def test_add_channels_adopts_contiguous_array_without_copy():
    data = np.zeros((3, 100))
    rec = Recording()
    rec.add_channels(["a", "b", "c"], data, 100.0, "uV", "EEG")
    assert np.shares_memory(rec.grid(100.0).data, data)


def test_channels_at_many_rates_live_on_their_own_grids():
    rec = Recording()
    rates = [1.0, 10.0, 128.0, 256.0, 1000.5]
    for i, fs in enumerate(rates):
        rec.add_channel(f"c{i}", np.arange(int(fs * 4)), fs, "uV", "EEG")
    assert rec.rates == sorted(rates)
    assert rec.grid(1000.5).rate == 1000.5
    assert rec.channels["c4"]["sample_frequency"] == 1000.5
    with pytest.raises(MixedSamplingRateError, match="signals_at"):
        rec.signals  # noqa: B018
    assert rec.signals_at(1000.5).shape == (4002, 1)


def test_dtype_is_kept_per_channel():
    rec = Recording()
    rec.add_channel("trig", np.array([0, 1, 0], dtype=np.int16), 10.0, "", "TRIG")
    rec.add_channel("x", np.array([0.5, 1.5, 2.5], dtype=np.float32), 10.0, "uV", "EEG")
    assert rec.channel_data("trig").dtype == np.int16
    assert rec.signals.dtypes.to_dict() == {"trig": np.int16, "x": np.float32}
    assert rec.channels["trig"]["modality"] == "DISCRETE"


def test_duplicate_label_is_refused():
    rec = Recording()
    rec.add_channel("Fz", np.zeros(4), 4.0, "uV", "EEG")
    with pytest.raises(DuplicateLabelError, match="Fz"):
        rec.add_channel("Fz", np.zeros(4), 4.0, "uV", "EEG")


def test_make_unique_labels_is_deterministic():
    labels, renamed = make_unique_labels(["A", "B", "A", "A", "A-1"])
    assert labels == ["A", "B", "A-2", "A-3", "A-1"]
    assert renamed == {"A-2": "A", "A-3": "A"}


@pytest.mark.parametrize("fs", [0, -1, float("nan"), float("inf"), "abc"])
def test_bad_rate_is_refused(fs):
    with pytest.raises((InvalidChannelError, NonFiniteValueError)):
        Recording().add_channel("x", np.zeros(3), fs, "", "EEG")


def test_bad_shapes_and_labels_are_refused():
    rec = Recording()
    with pytest.raises(InvalidChannelError):
        rec.add_channel("x", np.zeros((2, 2)), 1.0)
    with pytest.raises(InvalidChannelError):
        rec.add_channel("", np.zeros(2), 1.0)
    rec.add_channel("x", np.zeros(3), 1.0)
    with pytest.raises(InvalidChannelError, match="grid="):
        rec.add_channel("y", np.zeros(4), 1.0)
    rec.add_channel("y", np.zeros(4), 1.0, grid="second")
    assert sorted(rec.grids) == ["1hz", "second"]


def test_unknown_type_maps_to_misc_never_fails():
    rec = Recording()
    rec.add_channel("x", np.zeros(3), 1.0, "", "wibble")
    rec.add_channel("y", np.zeros(3), 1.0, "", None)  # type: ignore[arg-type]
    assert rec.channels["x"]["modality"] == "MISC"
    assert rec.channels["y"]["channel_type"] == "MISC"


def test_non_ascii_labels():
    rec = Recording()
    rec.add_channel("Électrode-α", np.ones(3), 1.0, "µV", "EEG")
    assert rec.signals.columns[0] == "Électrode-α"


def test_ten_thousand_events_well_under_a_second():
    rec = Recording()
    t = time.perf_counter()
    for i in range(10_000):
        rec.add_event(i * 0.01, 0.005, f"e{i % 7}")
    ev = rec.events
    assert time.perf_counter() - t < 1.0
    assert len(ev) == 10_000 and ev["onset"].dtype == np.float64
    rec.add_events(np.arange(10_000) * 0.5, 0.1, "bulk", code=np.arange(10_000))
    assert len(rec.events) == 20_000 and "code" in rec.events


def test_nan_event_onset_is_refused():
    rec = Recording()
    with pytest.raises(NonFiniteValueError):
        rec.add_event(float("nan"), 0.0, "x")
    with pytest.raises(NonFiniteValueError):
        rec.add_events([1.0, float("inf")])


def test_events_setter_keeps_extra_columns():
    rec = Recording()
    rec.events = pd.DataFrame({"onset": [1, 2], "trial_type": ["go", "stop"]})
    assert list(rec.events.columns) == ["onset", "duration", "description", "trial_type"]


def test_select_channels_and_time_window():
    rec = synthetic_recording(n_channels=3, seconds=2.0, fs=100.0, extra_rates=(10.0,))
    sub = rec.select(["EEG002", "AUX1"], tmin=0.5, tmax=1.0)
    assert sub.labels == ["EEG002", "AUX1"]
    assert sub.grid(100.0).n_samples == 50 and sub.grid(100.0).t0 == 0.5
    np.testing.assert_array_equal(sub.channel_data("EEG002"), rec.channel_data("EEG002")[50:100])
    assert sub.grid(10.0).n_samples == 5


def test_zero_and_one_sample_channels():
    rec = Recording()
    rec.add_channel("empty", np.zeros(0), 100.0)
    assert rec.signals.shape == (0, 1)
    rec2 = Recording()
    rec2.add_channel("one", np.array([1.5]), 100.0)
    assert rec2.signals.iloc[0, 0] == 1.5


def test_select_with_infinite_bounds_and_nan_refused():
    rec = Recording()
    rec.add_channel("x", np.arange(10.0), 10.0, t0=0.5)
    whole = rec.select(tmin=-np.inf, tmax=np.inf)
    assert np.array_equal(whole.channel_data("x"), rec.channel_data("x"))
    assert whole.grid(10.0).t0 == 0.5
    assert rec.select(tmin=np.inf).grid(10.0).n_samples == 0
    assert rec.select(tmax=-np.inf).grid(10.0).n_samples == 0
    with pytest.raises(NonFiniteValueError, match="tmin"):
        rec.select(tmin=float("nan"))


def test_bad_event_is_refused_at_once_and_keeps_earlier_events():
    rec = Recording()
    rec.add_event(1.0, 0.5, "good")
    with pytest.raises(NonFiniteValueError):
        rec.add_event(float("nan"), 0.0, "bad")
    with pytest.raises(InvalidChannelError, match="onset"):
        rec.add_event("soon", 0.0, "bad")
    with pytest.raises(InvalidChannelError, match="duration"):
        rec.add_event(2.0, "long", "bad")
    assert rec.events["description"].tolist() == ["good"]
    assert rec.events["description"].tolist() == ["good"]


@pytest.mark.parametrize("kwargs", [
    {"duration": [1.0, 2.0, 3.0]},
    {"description": ["a", "b", "c"]},
    {"code": [1, 2, 3]},
    {"duration": [[1.0, 2.0]]},
])
def test_add_events_length_mismatch_is_a_clear_error(kwargs):
    rec = Recording()
    with pytest.raises(InvalidChannelError, match="2 onsets"):
        rec.add_events([1.0, 2.0], **kwargs)
    assert rec.events.empty
