"""BIDS importer: discovery, sidecars applied with inheritance, real EMG datasets vs oracle.json.

Where the readers disagree: the jumping events.tsv has onsets up to 10.5 s for a 0.5 s
recording; mne-bids keeps only 1 annotation, we keep all 15 because BIDS allows events
outside the recorded data (they are noted in metadata['bids_notes'] with a warning).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import CorruptFileError, MissingSidecarError, UnsupportedFormatError
from biosigio_lib.importers import guess_importer
from biosigio_lib.importers.bids import scan_bids, scan_bids_skipped
from tests.lib.importers._edf_util import write_edf
from tests.lib.importers.contract import ImporterContract

_REAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"
_ORACLE = json.loads((_REAL / "oracle.json").read_text()) if (_REAL / "oracle.json").is_file() \
    else {}
REAL_BIDS = sorted(k for k in _ORACLE if k.startswith("bids/"))


def _quiet_read(path: Path | str, **kw: object) -> Recording:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Recording.from_file(path, **kw)


# ------------------------------------------------------------------------ real datasets
def test_scan_real_datasets(real_data: Path) -> None:
    found = [r for ds in sorted((real_data / "bids").iterdir()) for r in scan_bids(ds)]
    assert sorted(Path(r.path).relative_to(real_data).as_posix() for r in found) == REAL_BIDS
    keys = {r.key: r for r in found}
    rec = keys["sub-01_task-jumping_recording-bipolar_emg"]
    assert (rec.sub, rec.ses, rec.task, rec.recording, rec.run) == (
        "01", None, "jumping", "bipolar", None)
    assert rec.datatype == "emg" and rec.importer == "edf"
    assert scan_bids_skipped(real_data / "bids" / "emg_TwoWristbands") == []


@pytest.mark.real_data
class TestRealBids(ImporterContract):
    source_format = "bids"

    @pytest.fixture(params=REAL_BIDS)
    def name(self, request: pytest.FixtureRequest, real_data: Path) -> str:
        return request.param

    @pytest.fixture
    def recording(self, name: str, real_data: Path) -> Recording:
        return _quiet_read(real_data / name)

    def test_dispatched_to_bids_automatically(self, name: str, real_data: Path) -> None:
        assert guess_importer(real_data / name).name == "bids"

    def test_channels_tsv_applied(self, recording: Recording, name: str, oracle: dict) -> None:
        facts = oracle[name]
        assert recording.n_channels == facts["channels_tsv_count"]
        assert {i["channel_type"] for i in recording.channels.values()} == set(
            facts["channels_tsv_types"])
        for row in facts["channels_tsv_first3"]:
            info = recording.channels[row["name"]]
            assert info["bids_units"] == row["units"]
            for col in set(row) - {"name", "type", "units"}:
                assert info[col] == row[col]
        # the samples are in the EDF's unit: kept, and the TSV's unit conflict is noted
        assert recording.channels[facts["channels_tsv_first3"][0]["name"]][
            "physical_dimension"] == facts["edf"]["channels"][0]["unit"]
        assert any("units differ" in n for n in recording.metadata["bids_notes"])

    def test_sidecar_participant_entities(self, recording: Recording, name: str,
                                          oracle: dict, real_data: Path) -> None:
        facts = oracle[name]
        meta = recording.metadata
        assert meta["bids_sidecar"] == facts["sidecar_json"]
        assert meta["subject"] == "sub-01" and meta["bids_entities"]["sub"] == "01"
        assert meta["participant"]["participant_id"] == "sub-01"
        assert isinstance(meta["participant"]["age"], int)
        assert meta["bids_key"] == Path(name).name.split(".")[0]
        assert meta["data_format"] == "edf"

    def test_events_tsv_all_rows_and_columns(self, recording: Recording, name: str,
                                             oracle: dict) -> None:
        facts = oracle[name]
        ev = recording.events
        assert len(ev) == facts.get("events_tsv_count", 0)
        for col in facts.get("events_tsv_columns", []):
            assert col in ev.columns
        for row, got in zip(facts.get("events_tsv_first3", []), ev.itertuples()):
            assert got.onset == float(row["onset"]) and got.duration == float(row["duration"])
            assert got.description == row["trial_type"] == got.trial_type

    def test_samples_equal_the_bare_edf(self, recording: Recording, name: str,
                                        real_data: Path) -> None:
        bare = Recording.from_file(real_data / name, importer="edf")
        assert bare.metadata["source_format"] == "edf"
        for lab in bare.labels:
            assert recording.channel_data(lab).tobytes() == bare.channel_data(lab).tobytes()


def test_opening_a_sidecar_says_open_the_data_file(real_data: Path) -> None:
    tsv = (real_data / "bids" / "emg_TwoWristbands" / "sub-01" / "emg" /
           "sub-01_task-typing_channels.tsv")
    with pytest.raises(UnsupportedFormatError, match=r"open the data file instead.*typing_emg"):
        Recording.from_file(tsv)


# ------------------------------------------------------------------- generated dataset
def _tsv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")


def _json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    _json(root / "dataset_description.json", {"Name": "t", "BIDSVersion": "1.9.0"})
    _tsv(root / "participants.tsv", [["participant_id", "age", "hand"],
                                     ["sub-01", "41", "n/a"], ["sub-02", "007", "R"]])
    _json(root / "task-rest_eeg.json", {"PowerLineFrequency": 50, "TaskName": "rest",
                                        "EEGReference": "Cz"})
    _json(root / "sub-01" / "sub-01_task-rest_eeg.json", {"PowerLineFrequency": 60})
    eeg = root / "sub-01" / "ses-a" / "eeg"
    eeg.mkdir(parents=True)
    write_edf(eeg / "sub-01_ses-a_task-rest_run-1_eeg.edf", rates=(100.0, 100.0), seconds=3,
              labels=["Fz", "Cz"], annotations=[(0.5, 0.0, "edf-mark")])
    _json(eeg / "sub-01_ses-a_task-rest_run-1_eeg.json", {"SamplingFrequency": 100,
                                                          "EEGReference": "linked mastoids"})
    _tsv(eeg / "sub-01_ses-a_task-rest_run-1_channels.tsv",
         [["name", "type", "units", "status", "low_cutoff"],
          ["Fz", "EEG", "uV", "good", "0.1"], ["Pz", "EEG", "uV", "bad", "n/a"]])
    _tsv(eeg / "sub-01_ses-a_task-rest_events.tsv",
         [["onset", "duration", "trial_type", "value", "response_time"],
          ["0.25", "n/a", "go", "1", "0.31"], ["1.5", "0.5", "n/a", "2", "n/a"],
          ["9.0", "1", "late", "3", "n/a"]])
    (eeg / "sub-01_ses-a_task-rest_run-2_eeg.vhdr").write_text("Brain Vision header\n")
    emg = root / "sub-02" / "emg"
    emg.mkdir(parents=True)
    write_edf(emg / "sub-02_task-grip_emg.bdf", rates=(200.0,), bdf=True, labels=["EMG1"])
    return root


def test_scan_generated_dataset(dataset: Path) -> None:
    found = scan_bids(dataset)
    assert [r.key for r in found] == ["sub-01_ses-a_task-rest_run-1_eeg", "sub-02_task-grip_emg"]
    first = found[0]
    assert first.entities == {"sub": "01", "ses": "a", "task": "rest", "run": "1"}
    assert first.path == str(dataset / "sub-01/ses-a/eeg/sub-01_ses-a_task-rest_run-1_eeg.edf")
    skipped = scan_bids_skipped(dataset)
    assert len(skipped) == 1 and skipped[0][0].endswith("run-2_eeg.vhdr")
    assert "BrainVision" in skipped[0][1]
    with pytest.raises(CorruptFileError, match="dataset_description"):
        scan_bids(dataset / "sub-01")


def test_read_applies_inheritance_channels_events_participant(dataset: Path) -> None:
    path = scan_bids(dataset)[0].path
    with pytest.warns(UserWarning) as record:
        rec = Recording.from_file(path)
    text = " ".join(str(w.message) for w in record)
    assert "not in the data: ['Pz']" in text and "not in channels.tsv: ['Cz']" in text
    assert "1 of 3 events lie outside" in text
    meta = rec.metadata
    # root < subject < datatype level: closer overrides, keys from every level kept
    assert meta["bids_sidecar"] == {"PowerLineFrequency": 60, "TaskName": "rest",
                                    "EEGReference": "linked mastoids", "SamplingFrequency": 100}
    assert meta["participant"] == {"participant_id": "sub-01", "age": 41, "hand": None}
    assert meta["bids_entities"] == {"sub": "01", "ses": "a", "task": "rest", "run": "1"}
    assert len(meta["bids_notes"]) == 3
    fz = rec.channels["Fz"]
    assert (fz["status"], fz["low_cutoff"], fz["channel_type"]) == ("good", 0.1, "EEG")
    assert "status" not in rec.channels["Cz"]
    ev = rec.events
    assert ev["onset"].tolist() == [0.25, 1.5, 9.0, 0.5]
    assert math.isnan(ev["duration"].iloc[0]) and ev["duration"].iloc[1] == 0.5
    assert ev["description"].tolist() == ["go", "", "late", "edf-mark"]
    assert ev["source"].tolist() == ["events.tsv"] * 3 + ["data_file"]
    assert ev["value"].tolist()[:3] == [1, 2, 3] and np.isnan(ev["value"].iloc[3])
    assert ev["response_time"].iloc[0] == 0.31 and np.isnan(ev["response_time"].iloc[1])


def test_bdf_recording_without_sidecars(dataset: Path) -> None:
    path = scan_bids(dataset)[1].path
    with pytest.warns(UserWarning, match="no _emg.json sidecar"):
        rec = Recording.from_file(path)
    assert rec.metadata["participant"]["age"] == "007"  # leading zeros: kept as text
    assert rec.metadata["bids_datatype"] == "emg"
    with pytest.raises(MissingSidecarError, match="REQUIRED"):
        Recording.from_file(path, strict=True)


def test_bad_events_and_folder_entry_points(dataset: Path) -> None:
    events = dataset / "sub-01/ses-a/eeg/sub-01_ses-a_task-rest_events.tsv"
    _tsv(events, [["onset", "duration"], ["n/a", "1"]])
    with pytest.raises(CorruptFileError, match="row 1: onset is missing"):
        _quiet_read(scan_bids(dataset)[0].path)
    with pytest.raises(UnsupportedFormatError, match=r"2 recordings.*scan_bids"):
        Recording.from_file(dataset)
    with pytest.raises(UnsupportedFormatError, match="sidecar"):
        Recording.from_file(events)


def test_repeated_channels_tsv_names_follow_the_data_files_renaming(tmp_path: Path) -> None:
    """Two ``Fz`` rows describe the data's ``Fz`` and ``Fz-1``; the 2nd must not overwrite."""
    root = tmp_path / "ds"
    _json(root / "dataset_description.json", {"Name": "t", "BIDSVersion": "1.9.0"})
    eeg = root / "sub-01" / "eeg"
    eeg.mkdir(parents=True)
    data = write_edf(eeg / "sub-01_task-rest_eeg.edf", rates=(100.0, 100.0), seconds=1,
                     labels=["Fz", "Fz"])
    _json(eeg / "sub-01_task-rest_eeg.json", {"SamplingFrequency": 100})
    _tsv(eeg / "sub-01_task-rest_channels.tsv",
         [["name", "type", "units"], ["Fz", "EEG", "uV"], ["Fz", "EMG", "uV"]])
    with pytest.warns(UserWarning, match="repeats"):
        rec = Recording.from_file(data)
    assert rec.labels == ["Fz", "Fz-1"]
    assert rec.channels["Fz"]["channel_type"] == "EEG"
    assert rec.channels["Fz-1"]["channel_type"] == "EMG"
