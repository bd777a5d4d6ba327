"""EDF/BDF importer: conformance on every real file (oracle.json + pyedflib) and generated files.

Where the reference readers disagree we follow the EDF+ specification:
- annotation-only EDF+ (SC4001EC-Hypnogram, test_edfann): every TAL is an annotation, so we
  match pyedflib / ``mne.read_annotations`` (154 / 856), not ``mne.io.read_raw_edf`` (1);
- sub-second start: the first record's timekeeping TAL (+0.3945312) is the offset of the
  first sample from the header's start second (spec 2.2.4), so start_time is
  04:05:56.394531 (as oracle.json now says; pyedflib 0.1.42 reports .039453, MNE drops it).
- a TAL without duration has an unknown duration: NaN (pyedflib says -1, MNE 0).
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib._fs import resolve
from biosigio_lib.importers import get_importer, guess_importer, iter_blocks
from biosigio_lib.importers.edf import channel_type, read_edf_header
from tests.lib.importers._edf_util import (
    patch,
    pyedflib_signals,
    record_layout,
    set_field,
    write_edf,
)
from tests.lib.importers.contract import ImporterContract

_REAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"
_ORACLE = json.loads((_REAL / "oracle.json").read_text()) if (_REAL / "oracle.json").is_file() \
    else {}
REAL_FILES = sorted(k for k in _ORACLE if k.endswith((".edf", ".bdf")))


@functools.cache
def _read(path: str) -> Recording:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the real files deserves a warning
        return Recording.from_file(path, importer="edf")  # BIDS files: the bare EDF


def _facts(oracle: dict, name: str) -> dict:
    entry = oracle[name]
    return entry.get("edf", entry)


def test_every_real_edf_is_covered(real_data: Path) -> None:
    on_disk = {p.relative_to(real_data).as_posix() for p in real_data.rglob("*")
               if p.suffix.lower() in (".edf", ".bdf")}
    assert on_disk == set(REAL_FILES)


@pytest.mark.real_data
class TestRealFiles(ImporterContract):
    source_format = "edf"

    @pytest.fixture(params=REAL_FILES)
    def name(self, request: pytest.FixtureRequest, real_data: Path) -> str:
        return request.param

    @pytest.fixture
    def recording(self, name: str, real_data: Path) -> Recording:
        return _read(str(real_data / name))

    def test_channels_match_oracle(self, recording: Recording, name: str, oracle: dict) -> None:
        facts = _facts(oracle, name)
        assert recording.labels == facts["labels"]
        assert len(recording.labels) == facts["n_signals_excl_annotations"]
        for ch in facts["channels"]:
            info = recording.channels[ch["label"]]
            assert info["sample_frequency"] == ch["fs"]
            assert recording.channel_data(ch["label"]).size == ch["n_samples"]
            assert info["physical_dimension"] == ch["unit"]
            assert info["prefilter"] == ch["prefilter"]
            assert info["transducer"] == ch["transducer"]
            assert (info["physical_min"], info["physical_max"]) == (ch["phys_min"], ch["phys_max"])
            assert (info["digital_min"], info["digital_max"]) == (ch["dig_min"], ch["dig_max"])
        assert recording.rates == sorted(facts["distinct_fs"])
        for label, first in facts["first5"].items():
            assert recording.channel_data(label)[:5].tolist() == first  # exact
        assert recording.metadata["edf_file_type"].startswith(facts["filetype_pyedflib"][:3])
        assert recording.metadata["edf_n_records"] == facts["n_datarecords"]
        assert recording.metadata["edf_record_duration"] == facts["datarecord_duration_s"]

    def test_start_time_with_subsecond(self, recording: Recording, name: str,
                                       oracle: dict) -> None:
        facts = _facts(oracle, name)
        # oracle.json carries the corrected sub-second start (.394531, MANIFEST.md)
        assert recording.metadata["start_time"] == dt.datetime.fromisoformat(
            facts["start_datetime"])
        if "record_onsets_s" in facts:
            assert recording.metadata["edf_start_offset"] == facts["record_onsets_s"][0]
            assert recording.metadata["edf_gaps"] == []

    def test_annotations_match_oracle(self, recording: Recording, name: str,
                                      oracle: dict) -> None:
        facts = _facts(oracle, name)
        ev = recording.events
        assert len(ev) == facts["annotations_pyedflib_count"]
        for (onset, duration, text), row in zip(facts["annotations_pyedflib_first3"],
                                                 ev.itertuples()):
            assert row.onset == pytest.approx(onset, abs=1e-7)
            assert (math.isnan(row.duration) if duration == -1 else row.duration == duration)
            assert row.description == text

    def test_samples_bit_identical_to_pyedflib(self, recording: Recording, name: str,
                                               real_data: Path) -> None:
        pyedflib = pytest.importorskip("pyedflib")
        labels, signals = pyedflib_signals(real_data / name)
        assert len(labels) == recording.n_channels
        for label, ref in zip(recording.labels, signals):
            ours = recording.channel_data(label)
            assert ours.dtype == np.float64
            assert ours.tobytes() == ref.tobytes(), label
        with pyedflib.EdfReader(str(real_data / name)) as r:
            onsets, durations, texts = r.readAnnotations()
        ev = recording.events
        np.testing.assert_allclose(ev["onset"].to_numpy(), onsets, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(ev["duration"].fillna(-1).to_numpy(), durations)
        assert ev["description"].tolist() == [str(t) for t in texts]


def test_channel_types_from_label_prefixes(real_data: Path) -> None:
    rec = _read(str(real_data / "edf" / "chtypes_edf.edf"))
    types = {lab: info["channel_type"] for lab, info in rec.channels.items()}
    assert types["EEG Fp1-Ref"] == "EEG" and types["ECG ECG1"] == "ECG"
    assert types["SaO2 X9"] == "SAO2" and rec.channels["ECG ECG1"]["modality"] == "ECG"
    assert types["POL E"] == "EEG"  # unknown prefix: the default type (as MNE)


def test_multi_rate_file_one_grid_per_rate(real_data: Path) -> None:
    rec = _read(str(real_data / "edf" / "test_reduced.edf"))
    assert rec.rates == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]
    for g in rec.grids.values():
        assert g.n_samples == g.rate * 6 and g.t0 == 0.0


def test_bdf_status_channel_is_trigger(real_data: Path) -> None:
    path = real_data / "bdf" / "test_bdf_stim_channel.bdf"
    rec = _read(str(path))
    assert rec.channels["Status"]["channel_type"] == "TRIG"
    assert rec.channels["Status"]["modality"] == "DISCRETE"
    pyedflib = pytest.importorskip("pyedflib")
    with pyedflib.EdfReader(str(path)) as r:
        digital = r.readSignal(3, digital=True)
    word = Recording.from_file(path, status="digital").channel_data("Status")
    assert word.dtype == np.int32 and np.array_equal(word, digital)
    trig = Recording.from_file(path, status="trigger").channel_data("Status")
    assert np.array_equal(trig, digital & 0xFFFF)


def test_utf8_annotation_text(real_data: Path) -> None:
    rec = _read(str(real_data / "edf" / "test_utf8.edf"))
    assert "中文测试八个字" in rec.events["description"].tolist()


# --------------------------------------------------------------------- generated files
@pytest.mark.parametrize("bdf", [False, True])
def test_generated_multi_rate_matches_pyedflib(tmp_path: Path, bdf: bool) -> None:
    path = write_edf(tmp_path / ("x.bdf" if bdf else "x.edf"), rates=(200.0, 50.0, 200.0, 7.0),
                     bdf=bdf, annotations=[(0.5, 0.25, "blink"), (2.0, -1, "Ω ünïcode")])
    rec = Recording.from_file(path)
    labels, signals = pyedflib_signals(path)
    assert rec.labels == labels
    for lab, ref in zip(labels, signals):
        assert rec.channel_data(lab).tobytes() == ref.tobytes()
    assert sorted(g.rate for g in rec.grids.values()) == [7.0, 50.0, 200.0]
    assert rec.grid(200.0).labels == ["EEG C0", "EEG C2"]
    ev = rec.events
    assert ev["description"].tolist() == ["blink", "Ω ünïcode"]
    assert ev["onset"].tolist() == [0.5, 2.0]
    assert ev["duration"].iloc[0] == 0.25 and math.isnan(ev["duration"].iloc[1])
    info = rec.channels["EEG C1"]
    assert info["transducer"] == "electrode 1" and info["prefilter"] == "HP:0.1Hz"
    meta = rec.metadata
    assert meta["start_time"] == dt.datetime(2021, 3, 4, 5, 6, 7)
    assert meta["subject"] == "P-007" and meta["edf_patient"]["sex"] == "male"
    assert meta["edf_recording"]["equipment"] == "unit test"
    assert meta["edf_file_type"] == ("BDF+C" if bdf else "EDF+C")


def test_subsecond_start_from_first_tal(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "s.edf", rates=(10.0,), seconds=3)
    hb, rb, ann = record_layout(path)
    for r in range(3):  # every record starts 0.25 s after the header's whole second
        tal = b"+%d.25\x14\x14\x00" % r + (b"+2.5\x150.5\x14mark\x14\x00" if r == 1 else b"")
        patch(path, hb + r * rb + ann, tal)
    rec = Recording.from_file(path)
    assert rec.metadata["start_time"] == dt.datetime(2021, 3, 4, 5, 6, 7, 250000)
    assert rec.metadata["edf_start_offset"] == 0.25 and rec.metadata["edf_gaps"] == []
    assert rec.events["onset"].tolist() == [2.25]  # from the first sample, not the header
    assert rec.events["duration"].tolist() == [0.5]
    pyedflib = pytest.importorskip("pyedflib")
    with pyedflib.EdfReader(str(path)) as r:
        assert r.readAnnotations()[0].tolist() == pytest.approx([2.25])


def test_duplicate_labels_made_unique(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "d.edf", rates=(10.0, 10.0, 10.0), labels=["Fz", "Fz", "Fz-1"])
    rec = Recording.from_file(path)
    assert rec.labels == ["Fz", "Fz-2", "Fz-1"]
    assert rec.channels["Fz-2"]["original_label"] == "Fz"
    assert "original_label" not in rec.channels["Fz"]


def test_several_annotation_signals_all_read(tmp_path: Path) -> None:
    anns = [(0.1 * k, 0.0, f"a{k}") for k in range(12)]  # 4 records x 3 signals x 1 TAL
    path = write_edf(tmp_path / "m.edf", n_annotation_signals=3, annotations=anns)
    assert read_edf_header(resolve(path)).annotation_indices == [3, 4, 5]
    pyedflib = pytest.importorskip("pyedflib")
    with pyedflib.EdfReader(str(path)) as r:
        assert r.readAnnotations()[2].size == 12
    rec = Recording.from_file(path)
    assert sorted(rec.events["description"]) == sorted(a[2] for a in anns)


def test_plain_edf_has_no_edf_plus_metadata(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "p.edf", plus=False)
    rec = Recording.from_file(path)
    assert rec.metadata["edf_file_type"] == "EDF" and "edf_gaps" not in rec.metadata
    assert rec.metadata["subject"] is None and rec.events.empty


def test_edf_plus_d_gaps_reported_not_closed(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "g.edf", rates=(10.0,), seconds=4)
    _, (ref,) = pyedflib_signals(path)  # pyedflib refuses EDF+D: read before patching
    set_field(path, "reserved", "EDF+D")
    raw = path.read_bytes()
    hb, rb, ann = record_layout(path)
    for r, onset in ((2, b"+5"), (3, b"+6")):  # records 2 and 3 start after a 3 s gap
        pos = hb + r * rb + ann
        assert raw[pos:pos + 2] == b"+%d" % r
        patch(path, pos, onset)
    with pytest.warns(UserWarning, match="gap"):
        rec = Recording.from_file(path)
    meta = rec.metadata
    assert meta["edf_file_type"] == "EDF+D"
    assert meta["edf_gaps"] == [[2.0, 3.0]]
    assert meta["edf_record_onsets"] == [0.0, 1.0, 5.0, 6.0]
    assert rec.channel_data("EEG C0").tobytes() == ref.tobytes()  # concatenated records


def test_iter_blocks_reassembles_the_file(tmp_path: Path) -> None:
    anns = [(k + 0.5, 0.0, f"e{k}") for k in range(10)]
    path = write_edf(tmp_path / "b.edf", rates=(20.0, 5.0), seconds=10, annotations=anns)
    full = Recording.from_file(path)
    blocks = list(iter_blocks(path, block_seconds=3.0))
    assert [b.grid(20.0).t0 for b in blocks] == [0.0, 3.0, 6.0, 9.0]
    for lab in full.labels:
        joined = np.concatenate([b.channel_data(lab) for b in blocks])
        assert joined.tobytes() == full.channel_data(lab).tobytes()
    assert sum(len(b.events) for b in blocks) == len(full.events)
    assert all(b.metadata["start_time"] == full.metadata["start_time"] for b in blocks)
    whole = list(get_importer("edf").iter_blocks(resolve(path), block_seconds=1e6))
    assert len(whole) == 1 and whole[0].grid(5.0).n_samples == 50


def test_fsspec_and_gzip_read_the_same(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    path = write_edf(tmp_path / "f.edf", annotations=[(1.0, 0.5, "x")])
    local = Recording.from_file(path)
    with fsspec.open("memory://edf/f.edf", "wb") as fh:
        fh.write(path.read_bytes())
    gz = tmp_path / "f.edf.gz"
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    for other in (Recording.from_file("memory://edf/f.edf"), Recording.from_file(gz)):
        for lab in local.labels:
            assert other.channel_data(lab).tobytes() == local.channel_data(lab).tobytes()
        assert other.events.equals(local.events)


def test_dispatch_by_magic_and_suffix(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "x.edf")
    odd = tmp_path / "renamed.dat"
    shutil.copy(path, odd)
    assert guess_importer(odd).name == "edf"  # magic bytes
    bdf = write_edf(tmp_path / "y.BDF", bdf=True)
    assert guess_importer(bdf).name == "edf"
    assert Recording.from_file(odd).labels == Recording.from_file(path).labels


@pytest.mark.parametrize(("label", "expected"), [
    ("EEG Fpz-Cz", "EEG"), ("EMG chin", "EMG"), ("Status", "TRIG"), ("EKG", "ECG"),
    ("Resp oro-nasal", "RESP"), ("sine 8 Hz", "EEG"), ("Event marker", "TRIG")])
def test_channel_type_rules(label: str, expected: str) -> None:
    assert channel_type(label, "EEG") == expected
