"""The contract every importer passes; each format's test module subclasses ImporterContract.

Subclasses set ``cases`` (a list of pytest params giving a path each, or a fixture named
``source_path``) and get these invariants for free: exact float rates, dtypes kept, unique
labels, typed events, JSON-safe metadata with provenance, and a bit-exact archive round trip.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording, _jsonsafe


class ImporterContract:
    """Mix into a test class that provides a ``recording`` fixture (the imported Recording)."""

    #: the importer name expected in ``metadata['source_format']`` (None: not checked)
    source_format: str | None = None

    def test_rates_are_exact_positive_floats(self, recording: Recording) -> None:
        for label, info in recording.channels.items():
            fs = info["sample_frequency"]
            assert isinstance(fs, float) and math.isfinite(fs) and fs > 0, label
            assert recording.rate_of(label) == fs

    def test_labels_unique_and_strings(self, recording: Recording) -> None:
        labels = recording.labels
        assert len(labels) == len(set(labels))
        assert all(isinstance(x, str) and x for x in labels)

    def test_samples_are_numeric_and_contiguous(self, recording: Recording) -> None:
        for g in recording.grids.values():
            for _labels, arr in g.blocks():
                assert arr.dtype.kind in "biuf"
                assert arr.shape[1] == g.n_samples
                assert arr.flags.c_contiguous

    def test_channel_info_has_core_keys(self, recording: Recording) -> None:
        for info in recording.channels.values():
            for key in ("sample_frequency", "physical_dimension", "channel_type", "modality",
                        "prefilter"):
                assert key in info
            assert isinstance(info["physical_dimension"], str)

    def test_events_are_typed(self, recording: Recording) -> None:
        ev = recording.events
        assert list(ev.columns[:3]) == ["onset", "duration", "description"]
        assert ev["onset"].dtype == np.float64 and ev["duration"].dtype == np.float64
        assert np.isfinite(ev["onset"].to_numpy()).all()
        assert all(isinstance(d, str) for d in ev["description"])

    def test_metadata_is_json_safe_with_provenance(self, recording: Recording) -> None:
        text = _jsonsafe.dumps(recording.metadata)
        json.loads(text)
        assert _jsonsafe.loads(text).keys() == recording.metadata.keys()
        assert recording.metadata.get("source_file")
        if self.source_format is not None:
            assert recording.metadata.get("source_format") == self.source_format

    def test_archive_round_trip_is_bit_exact(self, recording: Recording, tmp_path: Path) -> None:
        pytest.importorskip("biosigio_lib.archive")
        from biosigio_lib.testing import assert_recordings_equal

        out = recording.to_parquet(tmp_path / "rec.parquet")
        assert_recordings_equal(Recording.from_file(out), recording)
