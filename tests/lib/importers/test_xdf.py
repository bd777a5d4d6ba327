"""XDF importer: the contract, values against pyxdf, the oracle, and hand-written tiny files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.calibration import IDENTITY
from biosigio_lib.errors import BiosigIOError, CorruptFileError, TruncatedFileError
from biosigio_lib.importers import guess_importer, iter_blocks
from tests.conftest import requires
from tests.lib.importers.contract import ImporterContract

pyxdf = pytest.importorskip("pyxdf")

FILES = ["minimal.xdf", "clock_resets.xdf"]
# Oracle timestamps after clock sync + dejitter are least-squares fits whose last bits vary
# between CPUs/BLAS builds; MANIFEST.md states they compare within 1e-6 s.
XDF_FIT_ATOL = 1e-6


# ---------------------------------------------------------------- a tiny XDF writer
def _varlen(n: int) -> bytes:
    return bytes([1, n]) if n < 256 else b"\x04" + struct.pack("<I", n)


def _chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return _varlen(len(body)) + body


def write_xdf(path: Path, streams: list[dict[str, Any]]) -> Path:
    """Write a minimal XDF 1.0 file: header, then per stream header/samples/offsets/footer.

    Each stream: ``id, name, type, srate, fmt, samples`` (an ``(n, ch)`` array, or a list of
    lists of str), ``stamps`` and optionally ``labels``/``units``, ``offsets`` [(t, v)].
    """
    out = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    for s in streams:
        n_ch = len(s["samples"][0]) if len(s["samples"]) else s.get("n_ch", 1)
        chans = "".join(
            f"<channel><label>{lab}</label><unit>{u}</unit></channel>"
            for lab, u in zip(s.get("labels", []), s.get("units", [""] * n_ch)))
        xml = (f'<?xml version="1.0"?><info><name>{s["name"]}</name><type>{s["type"]}</type>'
               f"<channel_count>{n_ch}</channel_count><nominal_srate>{s['srate']}"
               f"</nominal_srate><channel_format>{s['fmt']}</channel_format>"
               f"<source_id>src{s['id']}</source_id><desc><channels>{chans}</channels></desc>"
               "</info>")
        out.append(_chunk(2, struct.pack("<I", s["id"]) + xml.encode()))
    for s in streams:
        if len(s["stamps"]):
            body = [struct.pack("<I", s["id"]), b"\x04", struct.pack("<I", len(s["stamps"]))]
            for stamp, row in zip(s["stamps"], s["samples"]):
                body.append(b"\x08" + struct.pack("<d", stamp))
                if s["fmt"] == "string":
                    body.extend(_varlen(len(v.encode())) + v.encode() for v in row)
                else:
                    body.append(np.asarray(row, dtype=s["samples"].dtype).tobytes())
            out.append(_chunk(3, b"".join(body)))
        for t, v in s.get("offsets", []):
            out.append(_chunk(4, struct.pack("<I", s["id"]) + struct.pack("<dd", t, v)))
    for s in streams:
        if not s.get("footer", True):
            continue
        count = s.get("footer_count", len(s["stamps"]))
        xml = f'<?xml version="1.0"?><info><sample_count>{count}</sample_count></info>'
        out.append(_chunk(6, struct.pack("<I", s["id"]) + xml.encode()))
    path.write_bytes(b"".join(out))
    return path


def _bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """Two regular streams sharing a rate, an irregular numeric one, markers, an empty one."""
    eeg = np.arange(40, dtype=np.int16).reshape(20, 2)
    acc = np.linspace(-1, 1, 30, dtype=np.float32).reshape(10, 3)
    return write_xdf(tmp_path / "tiny.xdf", [
        {"id": 1, "name": "EEGamp", "type": "EEG", "srate": 100, "fmt": "int16",
         "samples": eeg, "stamps": 10.0 + np.arange(20) / 100, "labels": ["Fz", "Cz"],
         "units": ["uV", "uV"]},
        {"id": 2, "name": "Motion", "type": "ACC", "srate": 100, "fmt": "float32",
         "samples": acc, "stamps": 10.05 + np.arange(10) / 100, "labels": ["x", "Fz", ""]},
        {"id": 3, "name": "Triggers", "type": "Markers", "srate": 0, "fmt": "int32",
         "samples": np.array([[5], [7]], dtype=np.int32), "stamps": np.array([10.02, 10.1])},
        {"id": 4, "name": "Words", "type": "Markers", "srate": 0, "fmt": "string",
         "samples": [["go"], ["stop, now"]], "stamps": np.array([9.5, 10.15])},
        {"id": 5, "name": "Silent", "type": "EEG", "srate": 50, "fmt": "float32",
         "samples": np.zeros((0, 2), dtype=np.float32), "n_ch": 2, "stamps": np.array([])},
    ])


@pytest.fixture(scope="module", params=FILES)
def real_xdf(request: pytest.FixtureRequest, real_data: Path) -> tuple[str, Path, Recording]:
    path = real_data / "xdf" / request.param
    return request.param, path, Recording.from_file(path)


@requires("pyxdf")
class TestXdfContract(ImporterContract):
    source_format = "xdf"

    @pytest.fixture
    def recording(self, real_xdf: tuple[str, Path, Recording]) -> Recording:
        return real_xdf[2]


@requires("pyxdf")
class TestXdfRealFiles:
    def test_values_bit_exact_to_pyxdf(self, real_xdf: tuple[str, Path, Recording]) -> None:
        _, path, rec = real_xdf
        streams, _ = pyxdf.load_xdf(str(path))
        zero = min(s["time_stamps"][0] for s in streams if len(s["time_stamps"]))
        assert rec.metadata["time_zero"] == zero
        n_events = 0
        for s in streams:
            name = s["info"]["name"][0]
            ts = s["time_stamps"]
            if s["info"]["channel_format"][0] == "string" or \
                    float(s["info"]["nominal_srate"][0]) == 0:
                ev = rec.events[rec.events["stream"] == name]
                assert _bits(ev["onset"].to_numpy(), ts - zero)
                assert ev["description"].tolist() == [row[0] for row in s["time_series"]]
                n_events += len(ts)
                continue
            g = rec.grid(name)
            assert g.rate == float(s["info"]["nominal_srate"][0])
            assert g.t0 == ts[0] - zero
            assert g.n_samples == len(ts)
            for i in range(s["time_series"].shape[1]):
                want = np.ascontiguousarray(s["time_series"][:, i])
                # integer streams are kept as their integers (identity calibration)
                assert _bits(g.stored(f"{name}_{i}"), want)
                if want.dtype.kind in "iu":
                    assert _bits(rec.channel_data(f"{name}_{i}"), want.astype(np.float64))
            assert _bits(rec.channel_data(f"{name}_timestamps"), ts - zero)
        assert len(rec.events) == n_events

    def test_matches_oracle(self, real_xdf: tuple[str, Path, Recording], oracle: dict) -> None:
        name, _, rec = real_xdf
        facts = oracle[f"xdf/{name}"]
        infos = {s["stream_id"]: s for s in rec.metadata["streams"]}
        assert len(infos) == facts["n_streams"]
        for fs in facts["streams"]:
            info = infos[fs["stream_id"]]
            for key in ("name", "type", "channel_count", "nominal_srate",
                        "channel_format", "n_samples", "uid", "created_at",
                        "n_clock_offsets"):
                assert info[key] == fs[key], key
            # pyxdf derives effective_srate from the dejittered (fitted) timestamps
            np.testing.assert_allclose(info["effective_srate"], fs["effective_srate"],
                                       rtol=1e-9, atol=0, err_msg="effective_srate")
            # *_synced_dejittered come from pyxdf's least-squares clock fit: the last bits
            # vary with CPU/BLAS (MANIFEST.md), so compare within 1e-6 s, never exactly.
            for key in ("first_timestamp", "last_timestamp"):
                np.testing.assert_allclose(info[key], fs[f"{key}_synced_dejittered"],
                                           rtol=0, atol=XDF_FIT_ATOL, err_msg=key)
            assert rec.metadata["stream_offsets"][fs["name"]] == info["first_timestamp"]
            if info["kind"] == "grid":
                for ch in (0, 1):
                    got = rec.channel_data(f"{fs['name']}_{ch}")[:5].tolist()
                    assert got == fs[f"first5_ch{ch}"]
            else:
                ev = rec.events[rec.events["stream_id"] == fs["stream_id"]]
                assert ev["description"].head(5).tolist() == fs["first5_ch0"]

    def test_clock_resets_segments_and_alignment(self, real_data: Path) -> None:
        rec = Recording.from_file(real_data / "xdf" / "clock_resets.xdf")
        bio = next(s for s in rec.metadata["streams"] if s["name"] == "BioSemi")
        assert bio["segments"] == [[0, 12875], [12876, 27814]]
        assert rec.grids["BioSemi"].t0 == 0.0  # BioSemi starts first: it is time zero
        first_marker = rec.events["onset"].iloc[0]
        # both stamps come from the least-squares clock fit (CPU/BLAS dependent last bits)
        assert first_marker == pytest.approx(812.9279042048147 - 810.0297917608109,
                                             rel=0, abs=XDF_FIT_ATOL)
        times = rec.channel_data("BioSemi_timestamps")
        assert times[12876] - times[12875] > 200  # the gap is kept in the timestamps
        assert rec.channels["BioSemi_0"]["effective_srate"] == bio["effective_srate"]
        assert rec.channels["BioSemi_0"]["channel_type"] == "EEG"

    def test_raw_timestamps_option(self, real_data: Path) -> None:
        path = real_data / "xdf" / "minimal.xdf"
        rec = Recording.from_file(path, synchronize_clocks=False, dejitter_timestamps=False)
        assert rec.metadata["stream_offsets"]["SendDataC"] == 5.1
        assert rec.metadata["xdf_options"]["dejitter_timestamps"] is False

    def test_dispatch_by_magic(self, real_data: Path, tmp_path: Path) -> None:
        odd = tmp_path / "recording.bin"
        odd.write_bytes((real_data / "xdf" / "minimal.xdf").read_bytes())
        assert guess_importer(odd).name == "xdf"
        assert Recording.from_file(odd).labels[:1] == ["SendDataC_0"]

    def test_gzip_and_fsspec_url(self, real_data: Path, tmp_path: Path) -> None:
        raw = (real_data / "xdf" / "minimal.xdf").read_bytes()
        want = Recording.from_file(real_data / "xdf" / "minimal.xdf")
        gz = tmp_path / "minimal.xdf.gz"
        gz.write_bytes(gzip.compress(raw))
        with fsspec.open("memory://xdf-test/minimal.xdf", "wb") as fh:
            fh.write(raw)
        for where in (gz, "memory://xdf-test/minimal.xdf"):
            rec = Recording.from_file(where)
            for label in want.channels:
                assert _bits(rec.channel_data(label), want.channel_data(label))
            assert rec.events.equals(want.events)


@requires("pyxdf")
class TestXdfGenerated:
    def test_streams_grids_events_and_labels(self, tiny: Path) -> None:
        rec = Recording.from_file(tiny, dejitter_timestamps=False)
        assert list(rec.grids) == ["EEGamp", "Motion"]  # same rate, separate grids
        assert rec.metadata["time_zero"] == 9.5  # the earliest sample (a marker)
        assert rec.grids["EEGamp"].t0 == 10.0 - 9.5
        assert rec.grids["Motion"].t0 == 10.05 - 9.5
        assert rec.labels == ["Fz", "Cz", "EEGamp_timestamps", "x", "Fz-1", "Motion_2",
                              "Motion_timestamps"]
        assert rec.channels["Fz-1"]["original_label"] == "Fz"
        assert rec.channels["Fz"]["physical_dimension"] == "uV"
        assert rec.channels["x"]["channel_type"] == "ACC"
        assert rec.channels["EEGamp_timestamps"]["channel_type"] == "SYSCLOCK"
        assert rec.grid_of("Fz").stored("Fz").dtype == np.int16
        assert rec.calibration("Fz") == IDENTITY
        assert rec.channel_data("x").dtype == np.float32
        ev = rec.events
        assert ev["description"].tolist() == ["go", "5", "7", "stop, now"]
        assert ev["stream"].tolist() == ["Words", "Triggers", "Triggers", "Words"]
        assert ev["stream_id"].tolist() == [4, 3, 3, 4]
        assert ev["onset"].tolist() == [0.0, 10.02 - 9.5, 10.1 - 9.5, 10.15 - 9.5]
        kinds = {s["name"]: s["kind"] for s in rec.metadata["streams"]}
        assert kinds == {"EEGamp": "grid", "Motion": "grid", "Triggers": "events",
                         "Words": "events", "Silent": "empty"}
        assert "Silent" not in rec.metadata["stream_offsets"]

    def test_without_timestamp_channels(self, tiny: Path) -> None:
        rec = Recording.from_file(tiny, timestamps=False)
        assert not any(lab.endswith("_timestamps") for lab in rec.labels)

    def test_multichannel_irregular_values_as_exact_text(self, tmp_path: Path) -> None:
        vals = np.array([[0.1, 2.0], [np.float32(1 / 3), -4.5]], dtype=np.float32)
        path = write_xdf(tmp_path / "irr.xdf", [
            {"id": 1, "name": "Gaze", "type": "Gaze", "srate": 0, "fmt": "float32",
             "samples": vals, "stamps": np.array([1.0, 2.0])}])
        ev = Recording.from_file(path).events
        back = np.array([[np.float32(x) for x in d.split(",")] for d in ev["description"]])
        assert _bits(back.astype(np.float32), vals)

    def test_duplicate_stream_names_get_the_stream_id(self, tmp_path: Path) -> None:
        one = {"type": "EEG", "srate": 10, "fmt": "float32",
               "samples": np.ones((3, 1), np.float32), "stamps": np.arange(3) / 10}
        path = write_xdf(tmp_path / "dup.xdf", [{"id": 7, "name": "Amp", **one},
                                                {"id": 9, "name": "Amp", **one}])
        rec = Recording.from_file(path)
        assert list(rec.grids) == ["Amp#7", "Amp#9"]
        assert set(rec.metadata["stream_offsets"]) == {"Amp#7", "Amp#9"}

    def test_iter_blocks_default_slices_the_whole(self, tiny: Path) -> None:
        blocks = list(iter_blocks(tiny, block_seconds=0.3))
        total = sum(b.grids["EEGamp"].n_samples for b in blocks if "EEGamp" in b.grids)
        assert total == 20


@requires("pyxdf")
class TestXdfBadInput:
    @pytest.fixture
    def minimal(self, real_data: Path) -> bytes:
        return (real_data / "xdf" / "minimal.xdf").read_bytes()

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.xdf"
        path.write_bytes(b"")
        with pytest.raises(BiosigIOError, match="empty") as info:
            Recording.from_file(path)
        assert str(path) in str(info.value)
        with pytest.raises(TruncatedFileError, match="empty"):
            Recording.from_file(path, importer="xdf")

    def test_wrong_magic(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.xdf"
        path.write_text("these are my notes, not a recording")
        with pytest.raises(CorruptFileError, match="not an XDF file") as info:
            Recording.from_file(path)
        assert str(path) in str(info.value)

    @pytest.mark.parametrize("cut", [7, 40, 500, 1200, -3])
    def test_truncated_file(self, tmp_path: Path, minimal: bytes, cut: int) -> None:
        path = tmp_path / "cut.xdf"
        path.write_bytes(minimal[:cut])
        with pytest.raises(TruncatedFileError, match=r"truncated|ends inside") as info:
            Recording.from_file(path)
        assert str(path) in str(info.value)

    def test_truncated_file_lenient_keeps_what_is_there(self, tmp_path: Path,
                                                        minimal: bytes) -> None:
        path = tmp_path / "cut.xdf"
        path.write_bytes(minimal[:-3])
        rec = Recording.from_file(path, strict=False)
        assert rec.metadata["warnings"]
        assert rec.grids["SendDataC"].n_samples == 9

    def test_corrupt_length_field(self, tmp_path: Path, minimal: bytes) -> None:
        bad = bytearray(minimal)
        bad[4] = 3  # the first chunk's NumLengthBytes must be 1, 4 or 8
        path = tmp_path / "bad.xdf"
        path.write_bytes(bytes(bad))
        with pytest.raises(CorruptFileError, match="length-field"):
            Recording.from_file(path)

    def test_footer_count_mismatch(self, tmp_path: Path) -> None:
        path = write_xdf(tmp_path / "lie.xdf", [
            {"id": 1, "name": "A", "type": "EEG", "srate": 10, "fmt": "float32",
             "samples": np.ones((3, 1), np.float32), "stamps": np.arange(3) / 10,
             "footer_count": 5}])
        with pytest.raises(CorruptFileError, match="footer says 5 samples, 3 were read"):
            Recording.from_file(path)
        rec = Recording.from_file(path, strict=False)
        assert any("footer says 5" in w for w in rec.metadata["warnings"])

    def test_missing_footer_is_reported(self, tmp_path: Path) -> None:
        path = write_xdf(tmp_path / "cut.xdf", [
            {"id": 1, "name": "A", "type": "EEG", "srate": 10, "fmt": "float32",
             "samples": np.ones((3, 1), np.float32), "stamps": np.arange(3) / 10,
             "footer": False}])
        rec = Recording.from_file(path)
        assert any("no footer" in w for w in rec.metadata["warnings"])

    def test_unknown_option(self, real_data: Path) -> None:
        with pytest.raises(TypeError, match="unknown XDF read option"):
            Recording.from_file(real_data / "xdf" / "minimal.xdf", dejitter=True)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            Recording.from_file(tmp_path / "nope.xdf", importer="xdf")
