"""Tests of biosigio_lib.samples: the demo dataset reads back with the reference readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosigio_lib.samples import XdfStream, make_sample_dataset, write_xdf

pyedflib = pytest.importorskip("pyedflib")
wfdb = pytest.importorskip("wfdb")
pyxdf = pytest.importorskip("pyxdf")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("samples")
    return root, make_sample_dataset(root, seconds_scale=0.2)


def test_edf_files_have_mixed_rates_and_annotations(sample: tuple[Path, list[Path]]) -> None:
    _, files = sample
    edfs = [f for f in files if f.suffix == ".edf"]
    assert len(edfs) == 3
    for f in edfs:
        r = pyedflib.EdfReader(str(f))
        try:
            assert set(r.getSampleFrequencies()) == {256.0, 512.0, 32.0}
            onsets, durations, _texts = r.readAnnotations()
            assert len(onsets) >= 2 and (durations == 1.0).all()
            assert r.getSignalLabels()[:2] == ["Fp1", "Fp2"]
            assert np.abs(r.readSignal(0)).max() > 1.0  # microvolts, not noise at 0
        finally:
            r.close()
    assert (edfs[0].parent / "sub-01_task-rest_channels.tsv").read_text().startswith("name\t")


def test_bids_layout(sample: tuple[Path, list[Path]]) -> None:
    root, _ = sample
    assert (root / "bids_demo" / "dataset_description.json").is_file()
    assert (root / "bids_demo" / "participants.tsv").read_text().count("sub-0") == 2


def test_wfdb_record_and_annotations(sample: tuple[Path, list[Path]]) -> None:
    root, _ = sample
    rec = wfdb.rdrecord(str(root / "wfdb_demo" / "ecg01"))
    ann = wfdb.rdann(str(root / "wfdb_demo" / "ecg01"), "atr")
    assert rec.sig_name == ["MLII", "V5"] and rec.fs == 360
    assert len(ann.sample) > 5 and set(ann.symbol) <= {"N", "V"}
    # the annotated beats sit on R peaks of the first lead
    assert np.median(rec.p_signal[ann.sample, 0]) > 0.8


def test_demo_xdf_reads_with_pyxdf(sample: tuple[Path, list[Path]]) -> None:
    _, files = sample
    streams, _header = pyxdf.load_xdf(str(files[-1]))
    by = {s["info"]["name"][0]: s for s in streams}
    assert set(by) == {"DemoEEG", "DemoEMG", "Markers"}
    assert by["DemoEEG"]["time_series"].shape[1] == 4
    assert by["DemoEEG"]["time_series"].dtype == np.float32
    assert float(by["DemoEMG"]["info"]["nominal_srate"][0]) == 1000.0
    assert by["Markers"]["time_series"][0] == ["stimulus 0"]


def test_write_xdf_values_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((50, 3))
    ints = rng.integers(-1000, 1000, (20, 2)).astype(np.int16)
    t = 100.0 + np.arange(50) / 10.0
    path = tmp_path / "x.xdf"
    write_xdf(path, [
        XdfStream("A", "EEG", "double64", 10.0, t, data, ["a", "b", "c"], "uV"),
        XdfStream("B", "MISC", "int16", 5.0, 100.0 + np.arange(20) / 5.0, ints, ["x", "y"]),
        XdfStream("M", "Markers", "string", 0.0, np.array([101.0, 102.5]), ["go", "stöp"]),
    ], clock_offset=0.0)
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    by = {s["info"]["name"][0]: s for s in streams}
    assert by["A"]["time_series"].tobytes() == data.tobytes()
    np.testing.assert_array_equal(by["A"]["time_stamps"], t)
    assert by["B"]["time_series"].dtype == np.int16
    np.testing.assert_array_equal(by["B"]["time_series"], ints)
    assert [m[0] for m in by["M"]["time_series"]] == ["go", "stöp"]
    labels = [c["label"][0] for c in by["A"]["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels == ["a", "b", "c"]


def test_every_sample_recording_imports(sample: tuple[Path, list[Path]]) -> None:
    from biosigio_lib import Recording

    for f in sample[1]:
        try:
            rec = Recording.from_file(f)
        except ImportError as exc:  # an importer not installed in this checkout
            pytest.skip(str(exc))
        assert rec.n_channels > 0 and rec.duration > 1.0
