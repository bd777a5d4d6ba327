"""Every real EDF/BDF file -> Recording -> Parquet archive -> read back -> to_edf/to_bdf.

pyedflib (the independent reader) and our reader must find in the written file every digital
sample, every annotation and the header of the source: compared bit-exactly, except TAL onsets
that had to be rebased on a sub-second start (within 1e-9 s) and, for plain EDF/BDF sources,
the patient/recording fields, which EDF+ requires in its structured form (the original text
is kept as their 'additional' subfield).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from tests.conftest import SHARED_REAL, requires

pytestmark = [requires("pyedflib"), pytest.mark.real_data]

FILES = sorted(
    [p.relative_to(SHARED_REAL).as_posix() for p in SHARED_REAL.glob("edf/*.edf")]
    + [p.relative_to(SHARED_REAL).as_posix() for p in SHARED_REAL.glob("bdf/*.bdf")]
    + [p.relative_to(SHARED_REAL).as_posix() for p in SHARED_REAL.glob("bids/*/*/*/*.edf")]
) if SHARED_REAL.is_dir() else []


def _read(path: str | Path) -> Recording:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recording.from_file(path)


def _pyedflib(path: str | Path) -> dict:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as f:
        n = f.signals_in_file
        return {
            "headers": f.getSignalHeaders(),
            "digital": [f.readSignal(i, digital=True) for i in range(n)],
            "annotations": f.readAnnotations(),
            "start": f.getStartdatetime().replace(microsecond=0),
            "header": f.getHeader(),
            "file_duration": f.getFileDuration(),
        }


@pytest.mark.parametrize("name", FILES)
def test_real_file_roundtrip(real_data: Path, tmp_path: Path, name: str) -> None:
    src_path = real_data / name
    src = _read(src_path)
    archived = _read(src.to_parquet(tmp_path / "a.parquet"))
    bdf = name.endswith(".bdf")
    out = tmp_path / ("out.bdf" if bdf else "out.edf")
    report = archived.to_bdf(out) if bdf else archived.to_edf(out)
    assert report.path == str(out)
    assert report.lossless and set(report.exact) == set(src.labels)
    assert report.file_type == ("BDF+C" if bdf else "EDF+C")

    theirs, ours = _pyedflib(src_path), _pyedflib(out)
    # every digital sample and header field of every data signal, in order
    assert len(ours["headers"]) == len(theirs["headers"])
    for a, b in zip(theirs["headers"], ours["headers"]):
        for key in ("label", "dimension", "sample_frequency", "physical_max", "physical_min",
                    "digital_max", "digital_min", "prefilter", "transducer"):
            assert b[key] == a[key], (key, a["label"])
    for a, b in zip(theirs["digital"], ours["digital"]):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert ours["start"] == theirs["start"]

    # annotations: the recording's events (EDF TALs, or a BIDS events.tsv) as written
    onsets, durations, texts = ours["annotations"]
    assert list(texts) == src.events["description"].tolist()
    if src.metadata.get("source_format") == "edf" and len(theirs["annotations"][0]):
        t_on, t_dur, t_txt = theirs["annotations"]
        assert list(t_txt) == list(texts)
        np.testing.assert_allclose(onsets, t_on, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(durations, t_dur)

    # our reader: the same recording back (digital values, calibration, events, header)
    back = _read(out)
    assert back.labels == src.labels
    for label in src.labels:
        assert back.digital_data(label).tobytes() == src.digital_data(label).tobytes()
        assert back.calibration(label) == src.calibration(label)
        for key in ("physical_min", "physical_max", "digital_min", "digital_max",
                    "transducer", "samples_per_record"):
            assert back.channels[label][key] == src.channels[label][key]
        for key in ("physical_dimension", "prefilter", "sample_frequency"):
            assert back.channels[label][key] == src.channels[label][key]
    assert back.metadata["start_time"] == src.metadata["start_time"]
    ev, ev_back = src.events, back.events
    assert ev_back["description"].tolist() == ev["description"].tolist()
    np.testing.assert_allclose(ev_back["onset"], ev["onset"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ev_back["duration"].to_numpy(), ev["duration"].to_numpy())
    if not src.metadata.get("edf_start_offset"):
        np.testing.assert_array_equal(ev_back["onset"].to_numpy(), ev["onset"].to_numpy())
    assert back.metadata["edf_record_duration"] == src.metadata["edf_record_duration"]
    if "+" in src.metadata["edf_file_type"]:
        for key in ("edf_patient_field", "edf_recording_field", "edf_start_offset"):
            assert back.metadata[key] == src.metadata[key], key
        assert ours["header"] == theirs["header"]
    else:  # plain EDF/BDF: EDF+ fields that carry the original text
        for key in ("edf_patient_field", "edf_recording_field"):
            assert src.metadata[key].strip() in back.metadata[key]
