"""Evidence functions of the checks, without Dagster."""

from __future__ import annotations

import numpy as np

from biosigio_lib.testing import synthetic_recording
from biosigio_pipeline.verify import diff_recordings


def test_identical_recordings_have_no_differences() -> None:
    rec = synthetic_recording(3, 1.0, 100.0, extra_rates=(10.0,))
    assert diff_recordings(rec.copy(), rec) == []


def test_differences_are_listed_with_values() -> None:
    rec = synthetic_recording(3, 1.0, 100.0)
    other = rec.copy()
    other.channel_data("EEG002")[7] = np.nextafter(other.channel_data("EEG002")[7], np.inf)
    other.add_event(0.5, 0.0, "extra")
    other.metadata["subject"] = "sub-02"
    problems = diff_recordings(other, rec)
    assert any(p.startswith("EEG002: 1 sample(s) differ, first at index 7") for p in problems)
    assert "events: 4 != 3" in problems
    assert "metadata differs in ['subject']" in problems
    fewer = rec.select(channels=["EEG001", "EEG003"])
    assert diff_recordings(fewer, rec)[0] == "missing channels: ['EEG002']"
