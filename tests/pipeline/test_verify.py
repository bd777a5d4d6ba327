"""Evidence functions of the checks, without Dagster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biosigio_lib import Recording
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
    assert any(p.startswith("EEG002: 1 of 100 samples differ") and "first at index 7" in p
               for p in problems)
    assert "events: 3 in A, 4 in B" in problems  # A: the expected recording, B: the actual
    assert "metadata differ in ['subject']" in problems
    fewer = rec.select(channels=["EEG001", "EEG003"])
    assert diff_recordings(fewer, rec)[0] == "missing channels: ['EEG002']"


def _events_only(tmp_path: Path) -> tuple[Recording, str]:
    rec = Recording({"subject": "sub-01"})
    rec.add_events([0.0, 30.0, 30.0], [30.0, np.nan, 30.0], ["W", "N1", "N1"], scorer=[1, 2, 3])
    return rec, rec.to_zarr(tmp_path / "e.zarr")


def test_events_only_store_is_complete_and_level0_checks_nothing(tmp_path: Path) -> None:
    from biosigio_pipeline.verify import level0_reports, missing_in_store

    rec, url = _events_only(tmp_path)
    found = missing_in_store(rec, url)
    assert found == {"missing_channels": [], "source_events": 3, "store_events": 3,
                     "missing_events": 0, "unexpected_events": 0,
                     "differing_event_columns": []}
    assert level0_reports(rec, url) == []
    with_signal = synthetic_recording(2, 1.0, 100.0)
    (row,) = level0_reports(with_signal, url)
    assert not row["passed"] and "missing from the store" in row["failure"]


def test_a_changed_event_is_reported(tmp_path: Path) -> None:
    import zarr

    from biosigio_pipeline.verify import missing_in_store

    rec, url = _events_only(tmp_path)
    ev = zarr.open_group(url, mode="r+")["events"]
    onset = ev["onset"][...]
    onset[1] = np.nextafter(onset[1], np.inf)  # one ulp
    ev["onset"][...] = onset
    found = missing_in_store(rec, url)
    assert (found["missing_events"], found["unexpected_events"]) == (1, 1)
    other = rec.copy()
    other.events = other.events.assign(scorer=[1, 2, 4])
    assert missing_in_store(other, url)["differing_event_columns"] == ["scorer"]
