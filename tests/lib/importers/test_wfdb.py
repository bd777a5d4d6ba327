"""WFDB importer: the contract, bit-exact values against wfdb, and the oracle on real records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import (
    BiosigIOError,
    CorruptFileError,
    MissingSidecarError,
    TruncatedFileError,
    UnsupportedFormatError,
)
from biosigio_lib.importers import guess_importer, iter_blocks
from biosigio_lib.importers._wfdb_meta import channel_type, parse_record_line
from tests.conftest import requires
from tests.lib.importers.contract import ImporterContract

wfdb = pytest.importorskip("wfdb")

RECORDS = ["100", "binformats", "multi-segment/041s/041s", "s0010_re", "test01_00s"]


def _bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module", params=RECORDS)
def real_record(request: pytest.FixtureRequest, real_data: Path) -> tuple[str, Path, Recording]:
    hea = real_data / "wfdb" / f"{request.param}.hea"
    return request.param, hea, Recording.from_file(hea)


@requires("wfdb")
class TestWfdbContract(ImporterContract):
    source_format = "wfdb"

    @pytest.fixture
    def recording(self, real_record: tuple[str, Path, Recording]) -> Recording:
        return real_record[2]


@requires("wfdb")
class TestWfdbRealFiles:
    def test_values_bit_exact_to_wfdb(self, real_record: tuple[str, Path, Recording]) -> None:
        _, hea, rec = real_record
        ref = wfdb.rdrecord(str(hea)[:-4], smooth_frames=False)
        names = list(rec.channels)
        for i, label in enumerate(names):
            assert _bits(rec.channel_data(label), ref.e_p_signal[i]), label
        if set(ref.samps_per_frame) == {1}:  # also the default (smoothed) p_signal
            p = wfdb.rdrecord(str(hea)[:-4]).p_signal
            for i, label in enumerate(names):
                assert _bits(rec.channel_data(label), np.ascontiguousarray(p[:, i])), label

    def test_matches_oracle(self, real_record: tuple[str, Path, Recording],
                            oracle: dict) -> None:
        name, _, rec = real_record
        facts = oracle[f"wfdb/{name}.hea"]
        infos = list(rec.channels.values())
        assert len(infos) == facts["n_sig"]
        originals = [info.get("original_label", lab) for lab, info in rec.channels.items()]
        assert originals == facts["sig_name"]
        assert [i["physical_dimension"] for i in infos] == facts["units"]
        assert [i["fmt"] for i in infos] == facts["fmt"]
        assert [i["adc_gain"] for i in infos] == facts["adc_gain"]
        assert [i["baseline"] for i in infos] == facts["baseline"]
        assert [i["sample_frequency"] for i in infos] == facts["per_channel_fs"]
        assert [rec.channel_data(lab).size for lab in rec.channels] == \
            facts["per_channel_n_samples"]
        assert rec.metadata["comments"] == facts["comments"]
        assert rec.metadata["n_frames"] == facts["sig_len_frames"]
        assert rec.metadata["frame_frequency"] == facts["fs_frame"]
        for label, first in facts["first5"].items():
            assert rec.channel_data(label)[:5].tolist() == first
        if "nan_count_per_channel" in facts:
            assert [int(np.isnan(rec.channel_data(lab)).sum()) for lab in rec.channels] == \
                facts["nan_count_per_channel"]
        if facts["base_date"]:
            start = dt.datetime.fromisoformat(f"{facts['base_date']}T{facts['base_time']}")
            assert rec.metadata["start_time"] == start
        else:
            assert "start_time" not in rec.metadata
        assert rec.metadata["multi_segment"] == facts["multi_segment"]
        assert sorted(rec.metadata["annotators"]) == sorted(facts["annotations"])
        for ext, ann in facts["annotations"].items():
            ev = rec.events[rec.events["annotator"] == ext]
            assert len(ev) == ann["count"]
            got = [[int(r.sample), r.onset, r.description, r.aux_note]
                   for r in ev.head(3).itertuples()]
            assert got == ann["first3"]

    def test_events_match_rdann(self, real_data: Path) -> None:
        rec = Recording.from_file(real_data / "wfdb" / "100.hea")
        ann = wfdb.rdann(str(real_data / "wfdb" / "100"), "atr")
        ev = rec.events
        assert ev["sample"].tolist() == ann.sample.tolist()
        assert ev["description"].tolist() == ann.symbol
        assert ev["aux_note"].tolist() == ann.aux_note
        assert ev["subtype"].tolist() == ann.subtype.tolist()
        assert ev["chan"].tolist() == ann.chan.tolist()
        assert ev["num"].tolist() == ann.num.tolist()
        assert _bits(ev["onset"].to_numpy(), ann.sample / 360.0)
        assert set(ev["annotator"]) == {"atr"}

    def test_multi_frequency_multi_segment(self, real_data: Path) -> None:
        rec = Recording.from_file(real_data / "wfdb" / "multi-segment" / "041s" / "041s.hea")
        assert rec.rates == [125.0, 500.0]
        assert rec.grid(500.0).labels == ["III", "I", "V"]
        assert rec.grid(125.0).labels == ["ABP", "PAP", "PLETH", "RESP"]
        assert rec.channels["ABP"]["channel_type"] == "BP"
        assert rec.channels["III"]["modality"] == "ECG"
        assert rec.metadata["seg_name"] == ["041s01", "041s02"]

    def test_labels_with_spaces_and_two_signal_files(self, real_data: Path) -> None:
        rec = Recording.from_file(real_data / "wfdb" / "test01_00s.hea")
        assert rec.labels == ["ECG 1", "ECG 2", "ECG 3", "ECG 4"]
        rec = Recording.from_file(real_data / "wfdb" / "s0010_re.hea")
        assert rec.metadata["signal_files"] == ["s0010_re.dat", "s0010_re.xyz"]
        assert rec.channels["vz"]["file_name"] == "s0010_re.xyz"

    @pytest.mark.parametrize("name", ["100", "multi-segment/041s/041s"])
    def test_iter_blocks_concatenate_to_the_whole(self, real_data: Path, name: str) -> None:
        hea = real_data / "wfdb" / f"{name}.hea"
        whole = Recording.from_file(hea)
        blocks = list(iter_blocks(hea, block_seconds=7.0))
        assert len(blocks) == int(np.ceil(whole.metadata["n_frames"]
                                          / (7.0 * whole.metadata["frame_frequency"])))
        for label in whole.channels:
            parts = [b.channel_data(label) for b in blocks]
            assert _bits(np.concatenate(parts), whole.channel_data(label)), label
            g = [b.grid_of(label) for b in blocks]
            assert g[1].t0 == g[0].n_samples / g[0].rate
        assert sum(len(b.events) for b in blocks) == len(whole.events)

    def test_dispatch_by_suffix_and_content(self, real_data: Path) -> None:
        assert guess_importer(real_data / "wfdb" / "100.hea").name == "wfdb"
        head = (real_data / "wfdb" / "100.hea").read_bytes()
        assert parse_record_line(head.decode())

    @pytest.mark.parametrize("companion", ["100.dat", "100.atr"])
    def test_companion_file_says_open_the_hea(self, real_data: Path, companion: str) -> None:
        with pytest.raises(UnsupportedFormatError, match=r"open .*100\.hea instead"):
            Recording.from_file(real_data / "wfdb" / companion)


@requires("wfdb")
class TestWfdbGenerated:
    def _write(self, tmp_path: Path, names: list[str], **kw: object) -> Path:
        rng = np.random.default_rng(1)
        d = rng.integers(-2000, 2000, size=(500, len(names))).astype(np.int16)
        wfdb.wrsamp("gen", fs=250, units=["mV"] * len(names), sig_name=names,
                    d_signal=d, fmt=["16"] * len(names), adc_gain=[100.0] * len(names),
                    baseline=[0] * len(names), write_dir=str(tmp_path), **kw)
        return tmp_path / "gen.hea"

    def test_duplicate_labels_made_unique(self, tmp_path: Path) -> None:
        hea = self._write(tmp_path, ["ECG", "ECGX", "RESP"])  # wrsamp refuses repeats
        hea.write_text(hea.read_text().replace(" ECGX", " ECG"))
        rec = Recording.from_file(hea)
        assert rec.labels == ["ECG", "ECG-1", "RESP"]
        assert rec.channels["ECG-1"]["original_label"] == "ECG"
        assert "original_label" not in rec.channels["ECG"]
        ref = wfdb.rdrecord(str(hea)[:-4]).p_signal
        assert _bits(rec.channel_data("ECG-1"), np.ascontiguousarray(ref[:, 1]))

    def test_base_datetime_and_several_annotators(self, tmp_path: Path) -> None:
        start = dt.datetime(2021, 3, 4, 5, 6, 7, 250000)
        hea = self._write(tmp_path, ["II", "PLETH"], base_datetime=start)
        wfdb.wrann("gen", "atr", np.array([10, 100]), symbol=["N", "V"],
                   write_dir=str(tmp_path))
        wfdb.wrann("gen", "qrs", np.array([50]), symbol=["N"], aux_note=["x"],
                   write_dir=str(tmp_path))
        wfdb.wrann("gen", "mynotes", np.array([5, 200]), symbol=["+", "+"],
                   aux_note=["(N", "(AFIB"], write_dir=str(tmp_path))
        (tmp_path / "gen.txt").write_text("not an annotation file")
        rec = Recording.from_file(hea)
        assert rec.metadata["start_time"] == start
        assert rec.metadata["annotators"] == ["atr", "mynotes", "qrs"]
        ev = rec.events
        assert ev["onset"].tolist() == [5 / 250, 10 / 250, 50 / 250, 100 / 250, 200 / 250]
        assert ev["annotator"].tolist() == ["mynotes", "atr", "qrs", "atr", "mynotes"]
        assert ev["aux_note"].tolist() == ["(N", "", "x", "", "(AFIB"]
        assert rec.channels["II"]["channel_type"] == "ECG"
        assert rec.channels["PLETH"]["channel_type"] == "PPG"

    def test_annotations_can_be_skipped(self, tmp_path: Path) -> None:
        hea = self._write(tmp_path, ["II"])
        wfdb.wrann("gen", "atr", np.array([10]), symbol=["N"], write_dir=str(tmp_path))
        rec = Recording.from_file(hea, importer="wfdb", annotations=False)
        assert len(rec.events) == 0 and rec.metadata["annotators"] == []

    def test_samples_per_frame_get_their_own_grid(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(2)
        e = [rng.integers(-100, 100, 400).astype(np.int64),
             rng.integers(-100, 100, 100).astype(np.int64)]
        wfdb.wrsamp("mf", fs=100, units=["mV", "mV"], sig_name=["EMG", "RESP"],
                    e_d_signal=e, samps_per_frame=[4, 1], fmt=["16", "16"],
                    adc_gain=[10.0, 10.0], baseline=[0, 0], write_dir=str(tmp_path))
        rec = Recording.from_file(tmp_path / "mf.hea")
        assert rec.rates == [100.0, 400.0]
        assert rec.grid(400.0).labels == ["EMG"]
        assert _bits(rec.channel_data("EMG"), e[0] / 10.0)
        assert rec.channels["EMG"]["samps_per_frame"] == 4


@pytest.mark.parametrize(("name", "unit", "expected"), [
    ("MLII", "mV", "ECG"), ("V5", "mV", "ECG"), ("aVR", "mV", "ECG"), ("III", "mV", "ECG"),
    ("ECG 1", "mV", "ECG"), ("ABP", "mmHg", "BP"), ("PLETH", "NU", "PPG"),
    ("RESP", "Ohm", "RESP"), ("Fpz-Cz", "uV", "EEG"), ("EEG Fpz-Cz", "uV", "EEG"),
    ("EOG horizontal", "uV", "EOG"), ("EMG submental", "uV", "EMG"), ("SpO2", "%", "SPO2"),
    ("xyz", "mmHg", "BP"), ("sig 0, fmt 8", "mV", "MISC"),
])
def test_channel_type_from_name_and_unit(name: str, unit: str, expected: str) -> None:
    assert channel_type(name, unit) == expected


@requires("wfdb")
class TestWfdbBadInput:
    def _record(self, tmp_path: Path) -> Path:
        d = (np.arange(1000, dtype=np.int16) % 300).reshape(500, 2)
        wfdb.wrsamp("rec", fs=100, units=["mV", "mV"], sig_name=["I", "II"], d_signal=d,
                    fmt=["16", "16"], adc_gain=[100.0, 100.0], baseline=[0, 0],
                    write_dir=str(tmp_path))
        return tmp_path / "rec.hea"

    def test_empty_header(self, tmp_path: Path) -> None:
        hea = tmp_path / "e.hea"
        hea.write_text("")
        with pytest.raises(BiosigIOError, match="empty") as info:
            Recording.from_file(hea)
        assert str(hea) in str(info.value)
        with pytest.raises(CorruptFileError, match="header file is empty"):
            Recording.from_file(hea, importer="wfdb")

    @pytest.mark.parametrize("text", ["garbage line here\n", "# only a comment\n",
                                      "rec 2 100 500\nrec.dat 16 100 16 0 0 0 0 I\n"])
    def test_corrupt_header(self, tmp_path: Path, text: str) -> None:
        hea = tmp_path / "rec.hea"
        hea.write_text(text)
        with pytest.raises(CorruptFileError) as info:
            Recording.from_file(hea, importer="wfdb")
        assert str(hea) in str(info.value)

    def test_missing_signal_file_is_named(self, tmp_path: Path) -> None:
        hea = self._record(tmp_path)
        (tmp_path / "rec.dat").unlink()
        with pytest.raises(MissingSidecarError, match=r"'rec\.dat'") as info:
            Recording.from_file(hea)
        assert isinstance(info.value, FileNotFoundError)
        assert str(tmp_path / "rec.dat") in str(info.value)

    def test_missing_segment_header(self, tmp_path: Path, real_data: Path) -> None:
        src = real_data / "wfdb" / "multi-segment" / "041s"
        for f in src.iterdir():
            if f.name != "041s02.hea":
                (tmp_path / f.name).write_bytes(f.read_bytes())
        with pytest.raises(MissingSidecarError, match=r"041s02\.hea"):
            Recording.from_file(tmp_path / "041s.hea")

    def test_truncated_signal_file(self, tmp_path: Path) -> None:
        hea = self._record(tmp_path)
        dat = tmp_path / "rec.dat"
        dat.write_bytes(dat.read_bytes()[:1001])
        with pytest.raises(TruncatedFileError, match="promises 500") as info:
            Recording.from_file(hea)
        assert str(dat) in str(info.value)
        with pytest.raises(TruncatedFileError):
            next(iter_blocks(hea, block_seconds=1.0))

    def test_corrupt_annotation_file(self, tmp_path: Path) -> None:
        hea = self._record(tmp_path)
        (tmp_path / "rec.atr").write_bytes(b"\x01\x02\x03")
        with pytest.raises(CorruptFileError, match="annotation file") as info:
            Recording.from_file(hea)
        assert "rec.atr" in str(info.value)
        assert len(Recording.from_file(hea, annotations=False).labels) == 2

    def test_wrong_extension(self, tmp_path: Path) -> None:
        hea = self._record(tmp_path)
        other = tmp_path / "notes.txt"
        other.write_text(hea.read_text())
        with pytest.raises(UnsupportedFormatError, match=r"\.hea"):
            Recording.from_file(other, importer="wfdb")

    def test_missing_header(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            Recording.from_file(tmp_path / "nope.hea", importer="wfdb")

    def test_remote_url_is_staged(self, tmp_path: Path, real_data: Path) -> None:
        import fsspec

        fs = fsspec.filesystem("memory")
        for f in (real_data / "wfdb").glob("100.*"):
            fs.pipe(f"/wfdb-test/{f.name}", f.read_bytes())
        rec = Recording.from_file("memory://wfdb-test/100.hea")
        want = Recording.from_file(real_data / "wfdb" / "100.hea")
        assert _bits(rec.channel_data("V5"), want.channel_data("V5"))
        assert len(rec.events) == len(want.events) == 2274
        assert rec.metadata["source_file"] == "memory://wfdb-test/100.hea"
