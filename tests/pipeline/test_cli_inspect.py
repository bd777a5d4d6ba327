"""``info`` and ``verify`` (and the library's describe/compare behind them) on generated and
real recordings, archives and stores, with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.inspection import compare, describe, load
from biosigio_lib.testing import synthetic_recording
from biosigio_pipeline.cli import main

from .conftest import requires_serving


@pytest.fixture
def rec() -> Recording:
    return synthetic_recording(3, 1.0, 200.0, extra_rates=(50.0,), n_events=7)


def test_info_text_on_an_archive(rec: Recording, tmp_path: Path, capsys) -> None:
    path = rec.to_parquet(tmp_path / "r.parquet")
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    for text in ("start time: 2024-01-02T03:04:05.678900", "duration:   1 s",
                 "channels:   4 at 50 Hz, 200 Hz", "EEG001", "AUX1", "float64",
                 "events:     7", "... 2 more", "subject: sub-01"):
        assert text in out, text


def test_info_json_on_an_archive(rec: Recording, tmp_path: Path, capsys) -> None:
    path = rec.to_arrow(tmp_path / "r.arrow")
    assert main(["info", path, "--json", "--events", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_channels"] == 4 and d["rates"] == [50.0, 200.0] and d["duration"] == 1.0
    assert [c["label"] for c in d["channels"]] == ["EEG001", "EEG002", "EEG003", "AUX1"]
    assert {c["unit"] for c in d["channels"]} == {"uV", "g"}
    assert d["events"]["count"] == 7 and len(d["events"]["first"]) == 2
    assert d["events"]["first"][0]["description"] == "ev0"
    assert d["start_time"] == "2024-01-02T03:04:05.678900"
    assert {g["rate"]: g["n_samples"] for g in d["grids"]} == {200.0: 200, 50.0: 50}


@requires_serving
def test_info_on_a_store_lists_groups_and_levels(tmp_path: Path, capsys) -> None:
    long = synthetic_recording(2, 20.0, 1000.0, channel_type="EMG", extra_rates=(100.0,))
    store = long.to_zarr(tmp_path / "s.zarr")
    assert main(["info", store, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["importer"] == "zarr" and len(d["groups"]) == 2
    emg = next(g for g in d["groups"] if g["modality"] == "EMG")
    assert emg["levels"][0]["level"] == 0 and len(emg["levels"]) > 1  # a view pyramid
    assert all(lev["shape"] for lev in emg["levels"])
    assert all(c["calibration"] and "scale" in c["calibration"] for c in d["channels"])
    assert main(["info", store]) == 0
    out = capsys.readouterr().out
    assert "groups:     2" in out and "level 1:" in out
    # one group read as a recording
    assert main(["info", store, "--group", emg["name"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_channels"] == 2
    assert main(["info", store, "--group", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no group 'nope'" in err and "--group" in err


def test_info_errors_say_what_to_do(tmp_path: Path, capsys) -> None:
    odd = tmp_path / "notes.txt"
    odd.write_text("not a recording\n")
    assert main(["info", str(odd)]) == 2
    err = capsys.readouterr().err
    assert str(odd) in err and "--importer" in err and "Traceback" not in err
    assert main(["info", str(tmp_path / "missing.edf")]) == 2
    assert "check the path" in capsys.readouterr().err


def test_verify_equal_copies_exit_0(rec: Recording, tmp_path: Path, capsys) -> None:
    a = rec.to_parquet(tmp_path / "a.parquet")
    b = rec.to_arrow(tmp_path / "b.arrow")
    assert main(["verify", a, b]) == 0
    assert "verify passed" in capsys.readouterr().out
    assert main(["verify", a, b, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["equal"] and d["differences"] == []


def test_verify_lists_differences_exit_1(rec: Recording, tmp_path: Path, capsys) -> None:
    a = rec.to_parquet(tmp_path / "a.parquet")
    other = rec.select(channels=["EEG001", "EEG002", "AUX1"])
    other.metadata = dict(rec.metadata)
    x = other.channel_data("EEG002")
    x[5] += 0.25
    x[9] += 0.5
    other.add_channel("EXTRA", np.zeros(200), 200.0)
    other.add_event(0.9, 0.0, "late")
    other.metadata["subject"] = "sub-02"
    b = other.to_parquet(tmp_path / "b.parquet")
    assert main(["verify", a, b]) == 1
    out = capsys.readouterr().out
    assert "verify FAILED" in out
    assert "missing channels: ['EEG003']" in out and "extra channels: ['EXTRA']" in out
    assert "EEG002: 2 of 200 samples differ; max abs difference 0.5 uV, first at index 5" in out
    assert "events: 7 in A, 8 in B" in out and "metadata differ in ['subject']" in out
    assert main(["verify", a, b, "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    kinds = {x["kind"] for x in d["differences"]}
    assert {"channels_missing", "channels_extra", "samples", "events", "metadata"} <= kinds
    s = next(x for x in d["differences"] if x["kind"] == "samples")
    assert s["channel"] == "EEG002" and s["details"]["max_abs_diff"] == pytest.approx(0.5)
    assert s["details"]["first_index"] == 5
    # a tolerance above the change hides the sample difference only
    assert main(["verify", a, b, "--tolerance", "1", "--json"]) == 1
    kinds = {x["kind"] for x in json.loads(capsys.readouterr().out)["differences"]}
    assert "samples" not in kinds and "channels_missing" in kinds


def test_compare_rate_t0_length_dtype_calibration() -> None:
    from biosigio_lib import Calibration

    a = Recording()
    a.add_channel("X", np.arange(10, dtype=np.float64), 10.0)
    a.add_channel("Y", np.arange(10, dtype=np.float64), 20.0)
    a.add_channels(["Z"], np.arange(10, dtype=np.int16)[None], 5.0,
                   calibration=Calibration(gain=0.5))
    b = Recording()
    b.add_channel("X", np.arange(12, dtype=np.float32), 10.0, t0=1.0)
    b.add_channel("Y", np.arange(10, dtype=np.float64), 25.0)
    b.add_channels(["Z"], np.arange(10, dtype=np.int16)[None], 5.0,
                   calibration=Calibration(gain=0.25))
    kinds = {(d.kind, d.channel) for d in compare(a, b)}
    assert {("t0", "X"), ("length", "X"), ("dtype", "X"), ("rate", "Y"),
            ("calibration", "Z"), ("samples", "Z")} <= kinds
    assert ("samples", "X") not in kinds  # the common part holds the same values
    # within a tolerance only values count: X (float32 vs float64) is the same
    loose = {(d.kind, d.channel) for d in compare(a, b, 1e-9)}
    assert ("dtype", "X") not in loose and ("length", "X") in loose
    with pytest.raises(ValueError, match="tolerance"):
        compare(a, b, -1.0)


def test_compare_nan_positions() -> None:
    a, b = Recording(), Recording()
    a.add_channel("X", np.array([1.0, np.nan, 3.0]), 1.0)
    b.add_channel("X", np.array([1.0, np.nan, np.nan]), 1.0)
    (d,) = [d for d in compare(a, b, 0.5) if d.kind == "samples"]
    assert d.details["first_index"] == 2
    assert compare(a, a.copy(), 0.5) == []


@requires_serving
def test_verify_source_against_its_store(tmp_path: Path, capsys) -> None:
    """A store is a lossy derived copy: it differs exactly, and matches within its bound;
    all its groups are read when no group is named."""
    rec = synthetic_recording(2, 4.0, 250.0, extra_rates=(100.0,))
    a = rec.to_parquet(tmp_path / "a.parquet")
    store = rec.to_zarr(tmp_path / "s.zarr", dtype="float32")
    assert load(store).n_channels == 3
    assert main(["verify", a, store]) == 1
    assert "differ" in capsys.readouterr().out
    assert main(["verify", a, store, "--tolerance", "1e-3"]) == 0, capsys.readouterr().out
    # the store names its own location (source_file, source_format): compared when asked
    assert main(["verify", a, store, "--tolerance", "1e-3", "--location-metadata"]) == 1
    assert "source_format" in capsys.readouterr().out


def test_verify_missing_input_exit_2(rec: Recording, tmp_path: Path, capsys) -> None:
    a = rec.to_parquet(tmp_path / "a.parquet")
    assert main(["verify", a, str(tmp_path / "nope.parquet")]) == 2
    err = capsys.readouterr().err
    assert "nope.parquet" in err and "check the path" in err


# ------------------------------------------------------------------------ real recordings
@pytest.mark.real_data
@pytest.mark.parametrize("rel", ["edf/test_generator.edf", "bdf/test_generator.bdf",
                                 "wfdb/100.hea", "xdf/minimal.xdf",
                                 "edf/SC4001EC-Hypnogram.edf"])
def test_info_on_real_files(real_data: Path, rel: str, capsys) -> None:
    path = real_data / rel
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rec = Recording.from_file(path)
    assert d["n_channels"] == rec.n_channels and d["rates"] == rec.rates
    assert d["events"]["count"] == len(rec.events)
    assert d["duration"] == pytest.approx(rec.duration)
    calibrated = [c for c in d["channels"] if c["calibration"]]
    assert len(calibrated) == sum(rec.calibration(lab) is not None for lab in rec.labels)
    assert main(["info", str(path)]) == 0
    assert f"file:       {path}" in capsys.readouterr().out


@pytest.mark.real_data
def test_verify_real_file_against_its_archive(real_data: Path, tmp_path: Path,
                                              capsys) -> None:
    src = real_data / "edf" / "test_reduced.edf"  # 139 channels at 10 rates, calibrated
    archive = Recording.from_file(src).to_parquet(tmp_path / "a.parquet")
    assert main(["verify", str(src), archive]) == 0, capsys.readouterr().out
    capsys.readouterr()
    assert main(["verify", str(src), str(real_data / "edf" / "test_generator.edf")]) == 1
    out = capsys.readouterr().out
    assert "missing channels" in out and "extra channels" in out


@pytest.mark.real_data
def test_describe_real_bids_recording(real_data: Path) -> None:
    import warnings

    edf = (real_data / "bids" / "emg_ConcurrentIndependentUnits" / "sub-01" / "emg"
           / "sub-01_task-jumping_recording-bipolar_emg.edf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = describe(edf)
    assert d["importer"] == "bids" and d["n_channels"] == 1 and d["events"]["count"] > 0
