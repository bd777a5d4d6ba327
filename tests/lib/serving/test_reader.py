"""read_zarr / read_view: round trips, error bounds, NaN, triggers, partial reads, fsspec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import zarr

from biosigio_lib import MixedSamplingRateError, Recording, serving
from biosigio_lib.serving import PROVENANCE_KEYS
from biosigio_lib.testing import assert_recordings_equal

from .conftest import mixed_recording

_IGNORE_MD = ("source_file", "source_format", "original_source_file", "original_source_format",
              "zarr_group", "serving_version")


def test_lossless_round_trip_without_resampling(store: str) -> None:
    """float32 data on native-rate groups comes back bit for bit, with all channel info."""
    rec = Recording({"subject": "s1", "source_file": "x.edf", "note": b"\x00bytes"})
    rng = np.random.default_rng(0)
    rec.add_channels(["ECG1", "ECG2"], rng.standard_normal((2, 999)).astype(np.float32), 256.0,
                     "mV", "ECG", prefilters="HP:0.1Hz", infos=[{"transducer": "AgCl"}, {}],
                     t0=1.5)
    rec.add_channel("T", np.array([0, 1, 2, 3] * 25, dtype=np.float32), 10.0, "", "STIM")
    rec.add_events([0.5, 1.0], [0.0, 0.25], ["a", "b"], trial=[1, 2])
    out = rec.to_zarr(store, dtype="float32")
    for group, labels in (("ecg_256hz", ["ECG1", "ECG2"]), ("discrete_10hz", ["T"])):
        back = Recording.from_file(out, group=group)
        assert back.metadata["source_format"] == "zarr" and back.metadata["source_file"] == out
        assert back.metadata["original_source_file"] == "x.edf"
        assert_recordings_equal(back, rec.select(labels), ignore_channel_keys=PROVENANCE_KEYS,
                                ignore_metadata_keys=_IGNORE_MD)
    assert back.channels["T"]["channel_type"] == "STIM"  # exact type kept (biosigio: TRIG)


def test_int16_level0_within_the_stated_bound_and_provenance(tmp_path: Path) -> None:
    rec = mixed_recording()
    out = rec.to_zarr(tmp_path / "r.zarr")
    report = serving.verify_level0(rec, out)
    assert report["ok"], report["failures"]
    assert set(report["groups"]) == {"eeg_250hz", "ecg_500hz", "discrete_1000hz"}
    ecg = Recording.from_file(out, group="ecg_500hz")
    info = ecg.channels["ECG"]
    assert info["transducer"] == "Ag/AgCl" and info["original_rate"] == 500.0
    assert not info["anti_aliased"] and info["nonfinite_samples"] == 0
    assert info["scale"] > 0 and 0 < info["max_abs_error"] <= 0.51 * info["scale"]
    err = np.abs(ecg.channel_data("ECG") - rec.channel_data("ECG")).max()
    assert err <= info["max_abs_error"]
    eeg = Recording.from_file(out, group="eeg_250hz")
    assert eeg.rates == [250.0] and eeg.grid(250.0).n_samples == 3000
    assert all(eeg.channels[c]["anti_aliased"] for c in eeg.labels)
    assert eeg.channels["EEG001"]["sample_frequency"] == 250.0


def test_triggers_are_exact_and_never_filtered(tmp_path: Path) -> None:
    rec = mixed_recording()
    rec.set_channel_info("TRIG", modality="EEG")  # even inside a resampled group
    out = rec.to_zarr(tmp_path / "t.zarr")
    back = Recording.from_file(out, group="eeg_250hz")
    trig = back.channel_data("TRIG")
    np.testing.assert_array_equal(trig, rec.channel_data("TRIG")[::4])
    assert set(np.unique(trig)) == {0.0, 5.0, 255.0, 1000.0}
    assert not back.channels["TRIG"]["anti_aliased"] and back.channels["TRIG"]["exact"]
    plain = mixed_recording()
    native = Recording.from_file(plain.select(["TRIG"]).to_zarr(tmp_path / "n.zarr"))
    np.testing.assert_array_equal(native.channel_data("TRIG"), plain.channel_data("TRIG"))
    assert native.rates == [1000.0]


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_nan_and_inf_come_back_as_nan_without_smearing(tmp_path: Path, dtype: str) -> None:
    rec = mixed_recording(4.0)
    x = rec.channel_data("EEG002")  # a view: edit the source in place
    x[1001] = np.nan
    x[2000:2008] = np.inf
    ecg = rec.channel_data("ECG")
    ecg[100] = np.nan
    out = rec.to_zarr(tmp_path / f"{dtype}.zarr", dtype=dtype)
    eeg = Recording.from_file(out, group="eeg_250hz")
    y = eeg.channel_data("EEG002")
    assert np.flatnonzero(np.isnan(y)).tolist() == [250, 500, 501, 502]
    assert np.isfinite(eeg.grid(250.0).data[[0, 2, 3, 4, 5]]).all()
    info = eeg.channels["EEG002"]
    assert info["nonfinite_samples"] == 9 and info["nan_samples"] == 4
    assert not info["usable_for_inference"] and eeg.channels["EEG001"]["usable_for_inference"]
    back = Recording.from_file(out, group="ecg_500hz").channel_data("ECG")
    assert np.flatnonzero(np.isnan(back)).tolist() == [100]
    assert serving.verify_level0(rec, out)["ok"]


class _CountingStore:
    """Wrap a zarr store and record the key of every ``get`` (chunk and metadata reads)."""

    @staticmethod
    def wrap(inner: Any) -> Any:
        from zarr.storage import WrapperStore

        class Counting(WrapperStore):
            keys: ClassVar[list[str]] = []

            async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
                type(self).keys.append(key)
                return await super().get(key, prototype, byte_range)

        return Counting(inner)


def test_partial_reads_touch_only_the_needed_chunks(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.implementations.local import LocalFileSystem
    from zarr.storage import LocalStore

    rec = Recording()
    data = np.random.default_rng(0).standard_normal((8, 250 * 120))
    rec.add_channels([f"C{i}" for i in range(8)], data, 250.0, "uV", "ECG")
    out = rec.to_zarr(tmp_path / "p.zarr", chunk_seconds=4.0, shard_seconds=60.0)
    full = Recording.from_file(out)
    part = serving.read_zarr(out, channels=["C5", "C2"], tmin=30.0, tmax=38.0)
    assert part.labels == ["C5", "C2"] and part.grid(250.0).t0 == 30.0
    want = full.select(["C5", "C2"], 30.0, 38.0)
    for lab in ("C5", "C2"):
        np.testing.assert_array_equal(part.channel_data(lab), want.channel_data(lab))
    counting = _CountingStore.wrap(LocalStore(out, read_only=True))
    serving.read_zarr(counting, channels=["C1"], tmin=30.0, tmax=38.0)
    data_keys = [k for k in type(counting).keys if "/0/c/" in k]
    # 30-38 s at 4 s chunks lies in shard 0 (0-60 s): its index and 3 inner chunks (28-40 s)
    assert set(data_keys) == {"ecg_250hz/0/c/0/0"} and len(data_keys) <= 4, data_keys
    calls: list[tuple[str, int | None, int | None]] = []
    real_cat = LocalFileSystem.cat_file

    def cat_file(self: Any, path: str, start: int | None = None, end: int | None = None,
                 **kw: Any) -> bytes:
        calls.append((path.split("ecg_250hz/0/")[-1], start, end))
        return real_cat(self, path, start=start, end=end, **kw)

    monkeypatch.setattr(LocalFileSystem, "cat_file", cat_file)
    direct = serving.read_zarr(out, channels=["C1"], tmin=30.0, tmax=38.0)
    np.testing.assert_array_equal(direct.channel_data("C1"),
                                  full.select(["C1"], 30.0, 38.0).channel_data("C1"))
    # the direct reader: per worker the shard index and one ranged read of its chunks
    assert {c[0] for c in calls} == {"c/0/0"} and len(calls) <= 4, calls
    assert all(c[1] is not None for c in calls)  # ranged reads only, never a whole shard
    monkeypatch.undo()
    counting = _CountingStore.wrap(LocalStore(out, read_only=True))
    serving.read_zarr(counting)
    assert {k for k in type(counting).keys if "/0/c/" in k} == {
        "ecg_250hz/0/c/0/0", "ecg_250hz/0/c/0/1"}


def test_memory_url_round_trip(store: str) -> None:
    rec = mixed_recording(3.0)
    out = rec.to_zarr(store)
    assert out == store
    assert serving.list_groups(out) == ["eeg_250hz", "ecg_500hz", "discrete_1000hz"]
    back = Recording.from_file(out, group="ecg_500hz")
    assert back.metadata["subject"] == "sub-01" and len(back.events) == 5
    pd_ev = back.events
    assert pd_ev["description"].tolist() == rec.events["description"].tolist()
    assert serving.verify_level0(rec, out)["ok"]


def test_several_groups_need_a_group_name(tmp_path: Path) -> None:
    out = mixed_recording(1.0).to_zarr(tmp_path / "m.zarr")
    with pytest.raises(ValueError, match=r"eeg_250hz.*ecg_500hz.*discrete_1000hz") as info:
        Recording.from_file(out)
    assert isinstance(info.value, MixedSamplingRateError)
    with pytest.raises(KeyError, match="no group"):
        serving.read_zarr(out, group="emg_1000hz")
    with pytest.raises(KeyError, match="NOPE"):
        serving.read_zarr(out, group="eeg_250hz", channels=["NOPE"])


def test_views_are_min_max_of_the_stored_level0(tmp_path: Path) -> None:
    rec = mixed_recording(20.0)
    out = rec.to_zarr(tmp_path / "v.zarr")
    lvl0 = Recording.from_file(out, group="eeg_250hz").grid(250.0).data
    v1 = serving.read_view(out, "eeg_250hz", 1)
    assert v1.min.shape == (6, 1250) and v1.rate == 62.5 and v1.labels[0] == "EEG001"
    np.testing.assert_allclose(v1.min, lvl0.reshape(6, 1250, 4).min(axis=2), rtol=0, atol=0)
    np.testing.assert_allclose(v1.max, lvl0.reshape(6, 1250, 4).max(axis=2), rtol=0, atol=0)
    v2 = serving.read_view(out, "eeg_250hz", 2, tmin=4.0, tmax=8.0, channels=["EEG003"])
    # columns of 16 samples (0.064 s) overlapping [4, 8): the first starts at 3.968 s
    assert v2.times[0] <= 4.0 < v2.times[0] + 0.064 and v2.times[-1] < 8.0
    assert v2.n_points == 63 and v2.min.shape == (1, 63)
    assert (v2.min <= v2.max).all()
    v0 = serving.read_view(out, "eeg_250hz", 0, tmin=1.0, tmax=2.0)
    assert v0.n_points == 250 and (v0.min == v0.max).all()
    assert serving.view_level_for(5000, 1000, 4, 3) == 1
    assert serving.view_level_for(5000, 100, 4, 3) == 2
    assert serving.view_level_for(5000, 6000, 4, 3) == 0
    assert serving.pick_view_level(out, "eeg_250hz", 300, tmin=0.0, tmax=20.0) == 2
    with pytest.raises(ValueError, match="view levels"):
        serving.read_view(out, "eeg_250hz", 7)


def test_views_ignore_nan(tmp_path: Path) -> None:
    rec = Recording()
    x = np.arange(4096, dtype=float)
    x[100:104] = np.nan
    x[200] = np.nan
    rec.add_channel("M", x, 100.0, "", "MISC")
    out = rec.to_zarr(tmp_path / "n.zarr")
    v1 = serving.read_view(out, None, 1)
    assert np.isnan(v1.min[0, 25]) and np.isnan(v1.max[0, 25])
    assert v1.min[0, 50] == pytest.approx(201, abs=0.1) and v1.max[0, 50] == pytest.approx(
        203, abs=0.1)


def test_reads_a_store_written_by_plain_zarr_layout_defaults(tmp_path: Path) -> None:
    """A biosigio-1.2-style store (no info/t0/nan_code attrs) reads with defaults."""
    rec = mixed_recording(2.0).select(["ECG"])
    out = rec.to_zarr(tmp_path / "b.zarr")
    g = zarr.open_group(out, mode="r+")["ecg_500hz"]
    attrs = g.attrs.asdict()
    for ch in attrs["channels"]:
        ch.pop("info")
    attrs.pop("t0")
    g.attrs.put(attrs)
    back = Recording.from_file(out)
    assert back.channels["ECG"]["modality"] == "MISC"  # biosigio's vocabulary then
    assert back.channels["ECG"]["channel_type"] == "ECG"


def test_direct_level0_reader_matches_zarr(tmp_path: Path) -> None:
    """The direct shard reader and zarr's generic path give identical results."""
    from zarr.storage import LocalStore

    from biosigio_lib.errors import CorruptFileError

    rec = Recording()
    x = np.cumsum(np.random.default_rng(5).standard_normal((5, 1000)), axis=1)
    x[2, 333:340] = np.nan
    rec.add_channels([f"E{i}" for i in range(5)], x, 100.0, "uV", "ECG")
    out = rec.to_zarr(tmp_path / "d.zarr", chunk_seconds=1.0, shard_seconds=3.0)
    cases = [(None, None, None), (["E2", "E0"], 2.55, 7.05), (["E4"], 0.0, 0.01),
             (None, 2.99, 3.01), (None, 9.5, None), (["E1", "E2"], 5.0, 5.0)]
    for channels, tmin, tmax in cases:
        fast = serving.read_zarr(out, channels=channels, tmin=tmin, tmax=tmax)
        slow = serving.read_zarr(LocalStore(out, read_only=True), channels=channels,
                                 tmin=tmin, tmax=tmax)
        np.testing.assert_array_equal(fast.grid(100.0).data, slow.grid(100.0).data)
    shard = Path(out) / "ecg_100hz" / "0" / "c" / "0" / "1"
    shard.unlink()  # a missing shard reads as the fill value (NaN) on both paths
    fast = serving.read_zarr(out).grid(100.0).data
    np.testing.assert_array_equal(fast, serving.read_zarr(LocalStore(out)).grid(100.0).data)
    assert np.isnan(fast[:, 300:600]).all() and np.isfinite(fast[[0, 1, 3, 4], :300]).all()
    other = Path(out) / "ecg_100hz" / "0" / "c" / "0" / "0"
    raw = bytearray(other.read_bytes())
    raw[-10] ^= 0xFF
    other.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="checksum"):
        serving.read_zarr(out)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_edge_cases_empty_grid_offset_grid_and_inf(tmp_path: Path, dtype: str) -> None:
    rec = Recording()
    rec.add_channel("A", np.zeros(0), 1000.0, "uV", "EEG")
    rec.add_channel("B", np.arange(5.0), 100.0, "uV", "ECG", t0=2.5)
    rec.add_channel("C", np.array([1.0, np.inf, np.nan, 2.0]), 10.0, "", "MISC")
    rec.add_event(1.0, np.nan, "x")
    out = rec.to_zarr(tmp_path / "e.zarr", dtype=dtype)
    assert Recording.from_file(out, group="eeg_250hz").grid(250.0).n_samples == 0
    b = Recording.from_file(out, group="ecg_100hz")
    assert b.grid(100.0).t0 == 2.5 and b.channel_data("B").tolist() == [0, 1, 2, 3, 4]
    c = Recording.from_file(out, group="misc_10hz").channel_data("C")
    expect = [1.0, np.nan, np.nan, 2.0] if dtype == "int16" else [1.0, np.inf, np.nan, 2.0]
    np.testing.assert_array_equal(c, expect)
    assert np.isnan(b.events["duration"].iloc[0])
    assert serving.verify_level0(rec, out)["ok"]


def test_direct_metadata_reads_match_zarr(store: str) -> None:
    """Layouts and events read from the ``zarr.json`` documents alone equal zarr's."""
    from biosigio_lib._fs import resolve
    from biosigio_lib.serving import _fastread as F
    from biosigio_lib.serving.reader import _events, _events_direct, _open_root

    rec = mixed_recording(6.0)
    rec.add_events([1.0, 2.0], [0.5, float("nan")], ["a\udcff", "b"])  # surrogate, NaN
    for dtype in ("int16", "float32"):
        url = rec.to_zarr(f"{store}.{dtype}", dtype=dtype, chunk_seconds=1.0,
                          shard_seconds=3.0)
        loc = resolve(url)
        root, _ = _open_root(url, None)
        for name in serving.list_groups(url):
            a0 = root[f"{name}/0"]
            doc = F.read_json(loc.child(name).child("0"))
            got, want = F.ShardLayout.from_doc(doc), F.ShardLayout.of(a0)
            assert got is not None and want is not None
            assert (got.shape, got.shard, got.chunk, got.dtype) == \
                (want.shape, want.shard, want.chunk, want.dtype)
            assert got.fill == want.fill or (np.isnan(got.fill) and np.isnan(want.fill))
            assert [got.key(j) for j in range(3)] == [want.key(j) for j in range(3)]
            vloc = loc.child(name).child("view").child("1")
            view = F.read_json(vloc)
            assert F.ShardLayout.from_doc(view) is None  # 3-D, unsharded: zarr's
            lay = F.ChunkLayout.from_doc(view)  # ... read chunk by chunk: zarr's values
            arr = root[f"{name}/view/1"]
            assert lay is not None and lay.shape == arr.shape and lay.chunks == arr.chunks
            ct = lay.chunks[2]
            for c in range(-(-lay.shape[2] // ct)):  # the last one partial
                got = lay.read(vloc, (0, 0, c))
                want = arr[:, :, c * ct: (c + 1) * ct]
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        for col in ("onset", "duration", "code"):
            arr = F.read_small_array(loc.child("events").child(col),
                                     F.read_json(loc.child("events").child(col)))
            assert arr is not None
            np.testing.assert_array_equal(arr, root[f"events/{col}"][...])
        ok, ev = _events_direct(loc)
        assert ok
        pd_testing = pytest.importorskip("pandas").testing
        pd_testing.assert_frame_equal(ev, _events(root, None, None))
    empty = Recording()
    empty.add_channel("X", np.zeros(100), 10.0, "uV", "EEG")
    url = empty.to_zarr(f"{store}.noev")
    assert _events_direct(resolve(url)) == (True, None)
    assert F.read_json(resolve(url).child("absent")) is None


def test_plain_chunk_reader_fills_missing_chunks(tmp_path: Path) -> None:
    """A never-written chunk reads as the fill value, a damaged one as a typed error."""
    from biosigio_lib._fs import resolve
    from biosigio_lib.errors import CorruptFileError
    from biosigio_lib.serving._fastread import ChunkLayout, read_json

    rec = Recording()
    rec.add_channels(["A", "B"], np.random.default_rng(1).standard_normal((2, 20000)), 100.0,
                     "uV", "EEG")
    url = rec.to_zarr(tmp_path / "v.zarr")
    vloc = resolve(url).child("eeg_100hz").child("view").child("1")
    lay = ChunkLayout.from_doc(read_json(vloc))
    assert lay is not None
    chunk = Path(vloc.path) / "c" / "0" / "0" / "1"
    chunk.unlink()
    np.testing.assert_array_equal(lay.read(vloc, (0, 0, 1)),
                                  zarr.open_array(vloc.path, mode="r")[:, :, 1024:2048])
    (Path(vloc.path) / "c" / "0" / "0" / "0").write_bytes(b"not blosc")
    with pytest.raises(CorruptFileError, match="does not decode"):
        lay.read(vloc, (0, 0, 0))
