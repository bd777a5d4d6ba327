"""WindowDataset: windows over stores and archives, events, targets, order, sharding, reads."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biosigio_lib import EmptyRecordingError, InvalidChannelError, Recording
from biosigio_lib.windows import WindowDataset, window_targets


def _rec(seconds: float = 120.0, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    rec = Recording({"subject": "s"})
    rec.add_channels([f"C{i}" for i in range(4)], rng.standard_normal((4, int(seconds * 100))),
                     100.0, "uV", "EEG")
    stages = ["W", "N1", "N2", "N2"]
    rec.add_events(np.arange(0.0, seconds, 30.0), np.full(int(seconds // 30), 30.0),
                   [stages[i % 4] for i in range(int(seconds // 30))])
    rec.add_events([12.5, 47.0], [0.0, 0.0], ["stim", "stim"], trial_type=["left", "right"])
    return rec


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Recording, str, str]:
    rec = _rec()
    store = rec.to_zarr(tmp_path / "r.zarr", dtype="float32", chunk_seconds=4.0,
                        shard_seconds=60.0)
    arch = rec.to_parquet(tmp_path / "r.parquet")
    return rec, store, arch


def test_importing_does_not_import_torch() -> None:
    code = "import sys, biosigio_lib.windows; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_windows_match_level0_in_stores_and_archives(sources: Any) -> None:
    rec, store, arch = sources
    ds = WindowDataset([store, arch], 10.0, 5.0)
    assert len(ds) == 2 * 23  # (120 - 10) / 5 + 1 per source
    x = rec.grid(100.0).data
    seen = list(ds)
    assert [w.index for w in seen] == list(range(len(ds)))
    for w in seen:
        i0 = round(w.start * 100)
        assert w.data.shape == (4, 1000) and w.data.dtype == np.float32
        np.testing.assert_allclose(w.data, x[:, i0: i0 + 1000], rtol=1e-6, atol=1e-6)
        assert w.stop - w.start == 10.0 and w.channels == ["C0", "C1", "C2", "C3"]
    # time-aligned: both sources give the same start times
    starts = [w.start for w in seen]
    assert starts[:23] == starts[23:]
    np.testing.assert_array_equal(ds[30].data, seen[30].data)  # map-style == iteration
    sel = WindowDataset(store, 10.0, channels=["C2", "C0"])
    np.testing.assert_allclose(sel[1].data, x[[2, 0], 1000:2000], rtol=1e-6)


def test_events_and_targets(sources: Any) -> None:
    _, store, arch = sources
    ds = WindowDataset(store, 30.0, 15.0)
    w = ds[0]
    assert w.events["description"].tolist() == ["W", "stim"]
    assert ds[1].events["description"].tolist() == ["W", "N1"]  # 15-45 s
    y = ds.targets(mapping={"W": 0, "N1": 1, "N2": 2}, default=-1)
    assert y.dtype == np.int64 and y.tolist()[:4] == [0, 0, 1, 1]  # ties: first label
    assert WindowDataset(arch, 30.0).targets().tolist() == ["W", "N1", "N2", "N2"]
    trials = WindowDataset(store, 10.0).targets(column="trial_type", rule="onset")
    assert trials[1] == "left" and trials[4] == "right" and trials[0] is None
    assert w.label(column="trial_type", rule="onset") == "left"
    # coverage: a 20 s window over 10 s of N1 and 10 s of W
    ev = ds[0]._events
    got = window_targets(ev, np.array([20.0]), np.array([40.0]), min_coverage=0.6)
    assert got.tolist() == [None]


def test_order_seed_and_sharding(sources: Any) -> None:
    _, store, arch = sources
    seq = WindowDataset([store, arch], 10.0)
    a = [w.index for w in WindowDataset([store, arch], 10.0, shuffle=True, seed=3)]
    b = [w.index for w in WindowDataset([store, arch], 10.0, shuffle=True, seed=3)]
    assert a == b and a != list(range(len(seq))) and sorted(a) == list(range(len(seq)))
    ds = WindowDataset([store, arch], 10.0, shuffle=True, seed=3)
    ds.set_epoch(1)
    assert [w.index for w in ds] != a
    parts = [[w.index for w in WindowDataset([store, arch], 10.0, shuffle=True, seed=3,
                                             worker_id=k, num_workers=3)] for k in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(len(seq)))
    assert all(len(p) >= len(seq) // 3 for p in parts)


def test_selection_and_errors(tmp_path: Path, sources: Any) -> None:
    _, store, _ = sources
    other = Recording()
    other.add_channel("ECG", np.zeros(3000), 100.0, "mV", "ECG")
    ecg = other.to_zarr(tmp_path / "e.zarr")
    ds = WindowDataset([store, ecg], 10.0, modality="eeg")
    assert {u.group for u in ds.units} == {"eeg_100hz"}
    assert {u.group for u in WindowDataset([store, ecg], 10.0, modality="ecg").units} == \
        {"ecg_100hz"}
    with pytest.raises(EmptyRecordingError, match="no group matches"):
        WindowDataset([store], 10.0, modality="meg")
    with pytest.raises(InvalidChannelError, match=r"missing \['NOPE'\]"):
        WindowDataset([store], 10.0, channels=["C1", "NOPE"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        WindowDataset([tmp_path / "absent.zarr"], 10.0)
    with pytest.raises(ValueError, match="positive"):
        WindowDataset([store], 0.0)


def test_reads_touch_only_the_window_chunks(sources: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.implementations.local import LocalFileSystem

    _, store, _ = sources
    calls: list[tuple[str, int | None, int | None]] = []
    real = LocalFileSystem.cat_file

    def cat_file(self: Any, path: str, start: int | None = None, end: int | None = None,
                 **kw: Any) -> bytes:
        if "/0/c/" in path:
            calls.append((path.split("eeg_100hz/0/")[-1], start, end))
        return real(self, path, start=start, end=end, **kw)

    ds = WindowDataset(store, 10.0, shuffle=True)
    idx = int(np.flatnonzero(ds.window_times()[0] == 70.0)[0])  # 70-80 s: chunks 68-80 s
    monkeypatch.setattr(LocalFileSystem, "cat_file", cat_file)
    ds[idx]
    monkeypatch.undo()
    # shard 1 (60-120 s): its index (a tail read), then one ranged read of inner chunks 2..4
    assert [c[0] for c in calls] == ["c/0/1", "c/0/1"], calls
    shard = Path(store) / "eeg_100hz" / "0" / "c" / "0" / "1"
    index = np.frombuffer(shard.read_bytes()[-(16 * 15 + 4):-4], "<u8").reshape(15, 2)
    assert calls[1][1:] == (int(index[2, 0]), int(index[4, 0] + index[4, 1]))


def test_torch_adapter() -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (the adapter is optional)")
    import torch
    from torch.utils.data import DataLoader

    rec = _rec(60.0)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        store = rec.to_zarr(Path(d) / "t.zarr")
        ds = WindowDataset(store, 10.0)
        batches = list(DataLoader(ds.as_torch(), batch_size=2, num_workers=2))
        assert sum(b.shape[0] for b in batches) == 6 and batches[0].dtype == torch.float32
        mapped = ds.as_torch(iterable=False)
        assert len(mapped) == 6 and tuple(mapped[0].shape) == (4, 1000)


def test_raw_windows_give_stored_codes_and_their_scale(tmp_path: Path, sources: Any) -> None:
    rec = _rec(60.0, seed=4)
    x = rec.grid(100.0).data.copy()
    rec.grid(100.0).data[1, 1500:1600] = np.nan
    store = rec.to_zarr(tmp_path / "q.zarr")  # int16 codes + per-channel scale/offset
    phys = list(WindowDataset(store, 10.0, dtype=np.float64))
    raw = list(WindowDataset(store, 10.0, raw=True))
    assert len(raw) == len(phys) == 6
    for r, p in zip(raw, phys):
        assert r.data.dtype == np.int16 and r.scale is not None and r.offset is not None
        assert r.scale.shape == r.offset.shape == (4, 1)
        back = r.data * r.scale + r.offset
        back[r.data == r.nan_code] = np.nan
        np.testing.assert_array_equal(np.isnan(back), np.isnan(p.data))
        np.testing.assert_allclose(back, p.data, rtol=1e-12, equal_nan=True)
    assert np.isnan(phys[1].data[1, 500:600]).all()
    np.testing.assert_allclose(phys[0].data, x[:, :1000], atol=float(raw[0].scale.max()))
    assert WindowDataset(store, 10.0)[0].scale is None  # only raw windows carry them
    # float stores and archives: their float samples, scale 1, offset 0
    _, fstore, arch = sources
    for src in (fstore, arch):
        w = WindowDataset(src, 10.0, raw=True)[2]
        assert w.data.dtype == np.float32 and np.all(w.scale == 1) and np.all(w.offset == 0)
        np.testing.assert_array_equal(w.data, WindowDataset(src, 10.0)[2].data)


def test_direct_opening_matches_the_zarr_path(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores opened from their zarr.json documents give the windows, events and raw
    codes that opening through zarr gives, bit for bit (int16 with NaN codes, float32,
    a channel subset, float64 output, a memory:// URL)."""
    import uuid

    import biosigio_lib.windows as W

    rec = _rec(60.0, seed=7)
    rec.grid(100.0).data[2, 2000:2100] = np.nan
    url = f"memory://{uuid.uuid4().hex}/m.zarr"
    stores = [rec.to_zarr(tmp_path / "q.zarr", chunk_seconds=1.0, shard_seconds=20.0),
              rec.to_zarr(tmp_path / "f.zarr", dtype="float32"), rec.to_zarr(url)]
    cases: list[dict[str, Any]] = [{}, {"channels": ["C3", "C1"]}, {"dtype": np.float64},
                                   {"raw": True}]

    def windows(store: str, kw: dict[str, Any]) -> list[Any]:
        ds = W.WindowDataset(store, 10.0, 5.0, **kw)
        return [*ds, ds[3]]

    for store in stores:
        for kw in cases:
            fast = windows(store, kw)
            with monkeypatch.context() as m:
                m.setattr(W, "_direct_groups", lambda loc: None)
                slow = windows(store, kw)
                assert not W.WindowDataset(store, 10.0)._cache.get(("loc", store))
            assert len(fast) == len(slow) == 12
            for a, b in zip(fast, slow):
                assert a.data.dtype == b.data.dtype
                np.testing.assert_array_equal(a.data.view(np.uint8), b.data.view(np.uint8))
                assert (a.start, a.channels, a.units, a.nan_code) == \
                    (b.start, b.channels, b.units, b.nan_code)
                np.testing.assert_array_equal(a.scale, b.scale)
                assert a.events.equals(b.events)
    assert np.isnan(W.WindowDataset(stores[0], 10.0)[2].data[2, :100]).all()
    import pickle  # DataLoader workers: an unpickled dataset opens directly again

    ds = pickle.loads(pickle.dumps(W.WindowDataset(stores[0], 10.0)))
    assert not ds._cache
    np.testing.assert_array_equal(ds[2].data, W.WindowDataset(stores[0], 10.0)[2].data)
    assert ds._cache[("loc", stores[0])] is not None and not any(k[0] == "root" for k in ds._cache)
