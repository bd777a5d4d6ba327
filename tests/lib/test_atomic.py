"""Complete-or-absent writes under races, kills and odd names, on local disk, memory:// and S3.

The S3 cases run against a real S3-compatible server on loopback (the ``s3_server`` fixture).
Races use separate processes (spawn) released together by a barrier; kills are real SIGKILLs
of a child process at a chosen point of the write.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

from biosigio_lib import StoreExistsError
from biosigio_lib._fs import resolve

REPO = Path(__file__).resolve().parents[2]
KINDS = ["parquet", "arrow", "folder", "zarr"]


# ------------------------------------------------------------------------------ helpers
def _recording(kind: str, tag: str, seed: int) -> Any:
    from biosigio_lib.testing import synthetic_recording

    extra = (50.0,) if kind == "folder" else ()
    rec = synthetic_recording(2, 1.0, 100.0, extra_rates=extra, seed=seed)
    rec.metadata["writer_tag"] = tag
    return rec


def _write(kind: str, rec: Any, url: str, opts: dict[str, Any] | None,
           overwrite: bool = False) -> str:
    kw: dict[str, Any] = {"overwrite": overwrite}
    if opts:
        kw["storage_options"] = opts
    if kind in ("parquet", "folder"):
        return str(rec.to_parquet(url, **kw))
    if kind == "arrow":
        return str(rec.to_arrow(url, **kw))
    return str(rec.to_zarr(url, dtype="float32", **kw))


def _read(kind: str, url: str, opts: dict[str, Any] | None) -> Any:
    from biosigio_lib.archive import read_archive
    from biosigio_lib.serving import read_zarr

    if kind == "zarr":
        return read_zarr(url, storage_options=opts)
    return read_archive(url, storage_options=opts)


def _url(base: str, kind: str, name: str) -> str:
    suffix = {"parquet": ".parquet", "folder": ".parquet", "arrow": ".arrow", "zarr": ".zarr"}
    return f"{base}/{name}{suffix[kind]}"


def _check(kind: str, url: str, opts: dict[str, Any] | None, tag: str, seed: int) -> None:
    """The output at ``url`` reads back complete and is the one ``tag`` wrote."""
    got = _read(kind, url, opts)
    assert got.metadata["writer_tag"] == tag
    want = _recording(kind, tag, seed)
    for lab in want.channels:
        a, b = _channel(got, lab), _channel(want, lab)
        if kind == "zarr":
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
        else:
            np.testing.assert_array_equal(a, b)


def _channel(rec: Any, label: str) -> np.ndarray:
    for g in rec.grids.values():
        if label in g.labels:
            return np.asarray(g.channel(label))
    raise KeyError(label)


def _siblings(fs: fsspec.AbstractFileSystem, url_path: str) -> list[str]:
    """Hidden ``.name.*`` entries beside ``url_path``."""
    parent, _, name = url_path.rstrip("/").rpartition("/")
    fs.invalidate_cache()
    return [p for p in fs.ls(parent, detail=False)
            if p.rstrip("/").rpartition("/")[2].startswith(f".{name}.")]


# ----------------------------------------------------------------- 1. glob characters
@pytest.mark.parametrize("backend", ["memory", "s3"])
@pytest.mark.parametrize("kind", ["zarr", "folder"])
def test_overwrite_with_brackets_deletes_only_its_own_target(backend, kind, request):
    if backend == "s3":
        srv = request.getfixturevalue("s3_server")
        base, opts = srv.url("glob"), srv.storage_options
    else:
        base, opts = f"memory://glob-{uuid.uuid4().hex}", None
    plain, odd = _url(base, kind, "x1"), _url(base, kind, "x[1]")
    _write(kind, _recording(kind, "plain", 1), plain, opts)
    _write(kind, _recording(kind, "odd-1", 2), odd, opts)
    _write(kind, _recording(kind, "odd-2", 3), odd, opts, overwrite=True)
    _check(kind, plain, opts, "plain", 1)
    _check(kind, odd, opts, "odd-2", 3)
    with pytest.raises(StoreExistsError):
        _write(kind, _recording(kind, "odd-3", 4), odd, opts)
    loc = resolve(odd, opts)
    assert _siblings(loc.fs, loc.path) == []


# ------------------------------------------------------------- 2. concurrent creators
def _race_worker(wid: int, jobs: list[tuple[str, str, Any]], barrier: Any, out: Any) -> None:
    from biosigio_lib import StoreExistsError

    for kind, url, opts in jobs:
        rec = _recording(kind, f"w{wid}", 100 + wid)
        barrier.wait(120)
        try:
            _write(kind, rec, url, opts)
            out.put((url, wid, "ok"))
        except StoreExistsError:
            out.put((url, wid, "exists"))
        except BaseException as exc:  # report, don't hang the barrier
            out.put((url, wid, f"{type(exc).__name__}: {exc}"))


def _race(jobs: list[tuple[str, str, Any]], n_workers: int,
          monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[int, str]]:
    monkeypatch.syspath_prepend(str(REPO))
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(n_workers), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(w, jobs, barrier, out))
             for w in range(n_workers)]
    for p in procs:
        p.start()
    results: dict[str, dict[int, str]] = {}
    try:
        for _ in range(n_workers * len(jobs)):
            url, wid, status = out.get(timeout=180)
            results.setdefault(url, {})[wid] = status
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    return results


def _assert_one_winner(results: dict[str, dict[int, str]], jobs: list[tuple[str, str, Any]],
                       n_workers: int) -> None:
    for kind, url, opts in jobs:
        status = results[url]
        winners = [w for w, s in status.items() if s == "ok"]
        assert len(winners) == 1, (url, status)
        assert sorted(status.values()) == ["exists"] * (n_workers - 1) + ["ok"], (url, status)
        _check(kind, url, opts, f"w{winners[0]}", 100 + winners[0])
        loc = resolve(url, opts)
        assert _siblings(loc.fs, loc.path) == []


ROUNDS = 3


def test_concurrent_creators_local_exactly_one_wins(tmp_path, monkeypatch):
    jobs = [(k, _url(str(tmp_path), k, f"r{r}-{k}"), None) for r in range(ROUNDS) for k in KINDS]
    results = _race(jobs, 3, monkeypatch)
    _assert_one_winner(results, jobs, 3)


def test_concurrent_creators_s3_exactly_one_wins(s3_server, monkeypatch):
    opts = s3_server.storage_options
    jobs = [(k, _url(s3_server.url("race"), k, f"r{r}-{k}"), opts)
            for r in range(1) for k in KINDS]
    results = _race(jobs, 2, monkeypatch)
    _assert_one_winner(results, jobs, 2)


def test_concurrent_creators_memory_threads_exactly_one_wins():
    base = f"memory://race-{uuid.uuid4().hex}"
    jobs = [(k, _url(base, k, f"r{r}-{k}"), None) for r in range(ROUNDS) for k in KINDS]
    n = 3
    results: dict[str, dict[int, str]] = {}
    lock = threading.Lock()

    class Q:
        def put(self, item: tuple[str, int, str]) -> None:
            with lock:
                results.setdefault(item[0], {})[item[1]] = item[2]

    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=_race_worker, args=(w, jobs, barrier, Q()))
               for w in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    _assert_one_winner(results, jobs, n)


# -------------------------------------------------- 3./4. kills in the middle of a write
def _killed_child(kind: str, url: str, opts: Any, point: str, after: int) -> None:
    """Write ``url`` (overwrite) and SIGKILL this process at ``point`` of the switch."""
    from biosigio_lib import _atomic

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "remote-copy":  # after ``after`` files copied into place
        real = _atomic._copy_into_place
        count = [0]

        def copy(fs: Any, src: str, dst: str) -> None:
            if count[0] >= after:
                die()
            count[0] += 1
            real(fs, src, dst)

        _atomic._copy_into_place = copy
    elif point == "between-renames":  # no atomic exchange here: the two-rename fallback
        def no_exchange(src: str, dst: str) -> None:
            raise OSError(22, "exchange not supported (simulated)")

        real_noreplace = _atomic._rename_noreplace

        def second(src: str, dst: str) -> None:
            if ".tmp-" in src:
                die()
            real_noreplace(src, dst)

        _atomic._rename_exchange = no_exchange
        _atomic._rename_noreplace = second
    elif point == "writing":
        import biosigio_lib.archive.tabular as tab

        real_w = tab._WRITERS[kind if kind != "folder" else "parquet"]

        def half(table: Any, loc: Any, *a: Any) -> None:
            real_w(table, loc, *a)
            die()

        tab._WRITERS[kind if kind != "folder" else "parquet"] = half
    _write(kind, _recording(kind, "new", 7), url, opts, overwrite=True)


def _run_killed(*args: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    p = mp.get_context("spawn").Process(target=_killed_child, args=args)
    p.start()
    p.join(120)
    assert p.exitcode == -signal.SIGKILL, p.exitcode


@pytest.mark.parametrize(("kind", "points"), [("zarr", ("middle",)),
                                              ("folder", ("marker",))])
def test_remote_overwrite_killed_mid_switch_keeps_a_complete_store(s3_server, kind, points,
                                                                    monkeypatch):
    opts = s3_server.storage_options
    for trial, point in enumerate(points):
        url = _url(s3_server.url("kill"), kind, f"t{trial}")
        _write(kind, _recording(kind, "old", 5), url, opts)
        loc = resolve(url, opts)
        n = len(loc.fs.find(loc.path))  # the new output has as many files; the marker is last
        after = {"first": 0, "middle": n // 2, "marker": n - 1}[point]
        _run_killed(kind, url, opts, "remote-copy", after, monkeypatch=monkeypatch)
        # the next write finds the complete old store (restored), never a mix
        with pytest.raises(StoreExistsError):
            _write(kind, _recording(kind, "other", 6), url, opts)
        _check(kind, url, opts, "old", 5)
        _write(kind, _recording(kind, "newer", 8), url, opts, overwrite=True)
        _check(kind, url, opts, "newer", 8)
        loc = resolve(url, opts)
        assert _siblings(loc.fs, loc.path) == []


@pytest.mark.parametrize("kind", ["zarr", "folder"])
def test_local_kill_between_renames_is_restored(tmp_path, kind, monkeypatch):
    url = _url(str(tmp_path), kind, "rec")
    _write(kind, _recording(kind, "old", 5), url, None)
    _run_killed(kind, url, None, "between-renames", 0, monkeypatch=monkeypatch)
    names = sorted(p.name for p in tmp_path.iterdir())  # (files use one rename: no gap)
    assert Path(url).name not in names and any(".old-" in n for n in names), names
    _check(kind, url, None, "old", 5)  # reading puts the old output back
    with pytest.raises(StoreExistsError):
        _write(kind, _recording(kind, "other", 6), url, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [Path(url).name]


@pytest.mark.parametrize("kind", ["parquet", "folder"])
def test_killed_writer_leftovers_are_cleaned_on_next_write(tmp_path, kind, monkeypatch):
    url = _url(str(tmp_path), kind, "rec")
    _run_killed(kind, url, None, "writing", 0, monkeypatch=monkeypatch)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and ".tmp-" in left[0], left
    _write(kind, _recording(kind, "next", 9), url, None)
    assert [p.name for p in tmp_path.iterdir()] == [Path(url).name]
    _check(kind, url, None, "next", 9)


def test_only_stale_temporaries_are_removed(tmp_path):
    from biosigio_lib import _atomic

    target = tmp_path / "rec.parquet"
    host = _atomic._HOST
    live = tmp_path / f".rec.parquet.tmp-{host}-{os.getpid()}-0123456789aa"  # this process: alive
    other_fresh = tmp_path / ".rec.parquet.tmp-otherhost-1-0123456789bb"  # another host, recent
    other_old = tmp_path / ".rec.parquet.tmp-otherhost-1-0123456789cc"  # another host, days old
    dead = tmp_path / f".rec.parquet.tmp-{host}-{_dead_pid()}-0123456789dd"  # this host, pid gone
    for p in (live, other_fresh, other_old, dead):
        p.write_bytes(b"partial")
    week = time.time() - 7 * 86400
    os.utime(other_old, (week, week))
    _write("parquet", _recording("parquet", "x", 1), str(target), None)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([target.name, live.name, other_fresh.name]), left


def _dead_pid() -> int:
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=int)
    p.start()
    p.join()
    return int(p.pid or 0)


def test_host_tag_is_a_plain_token():
    from biosigio_lib import _atomic

    assert _atomic._HOST and "-" not in _atomic._HOST and "." not in _atomic._HOST
    assert socket.gethostname()  # the tag is derived from it


@pytest.mark.parametrize("kind", KINDS)
def test_long_local_names_fit_their_temporary_siblings(tmp_path, kind):
    """A legal 240-byte name failed: ``.<name>.tmp-<host>-<pid>-<hex>`` exceeded NAME_MAX."""
    name = "é" * 115 + " [1]*"  # 235 bytes + suffix: legal on every common file system
    url = _url(str(tmp_path), kind, name)
    assert len(Path(url).name.encode()) <= 255
    _write(kind, _recording(kind, "first", 1), url, None)
    _check(kind, url, None, "first", 1)
    with pytest.raises(StoreExistsError):
        _write(kind, _recording(kind, "second", 2), url, None)
    _write(kind, _recording(kind, "third", 3), url, None, overwrite=True)
    _check(kind, url, None, "third", 3)
    assert [p.name for p in tmp_path.iterdir()] == [Path(url).name]


def test_remote_siblings_are_listed_by_prefix_among_many_outputs(s3_server):
    """On S3 a target's siblings come from a prefix listing (a write costs the same beside
    any number of outputs) and are exactly those a full listing of the folder would give."""
    from biosigio_lib._atomic import _parse, _sibling_entries
    from biosigio_lib._atomic import _siblings as siblings

    loc = resolve(s3_server.url("many"), s3_server.storage_options)
    fs, root = loc.fs, loc.path
    hexes = iter(f"{i:012x}" for i in range(100))
    names = ["a[1].zarr", "a[1].zarr2", "b.parquet", "a"]
    for name in names:
        fs.pipe_file(f"{root}/{name}", b"x")
        fs.pipe_file(f"{root}/.{name}.tmp-host-1-{next(hexes)}/zarr.json", b"{}")
        fs.pipe_file(f"{root}/.{name}.old-{next(hexes)}", b"old")
        fs.pipe_file(f"{root}/.{name}.lock", b"{}")
    for i in range(30):  # other outputs in the same folder
        fs.pipe_file(f"{root}/rec{i}.zarr/zarr.json", b"{}")
    everything = [p.rstrip("/") for p in fs.ls(root, detail=False)]
    for name in names:
        expected = sorted(p for p in everything
                          if _parse(p.rpartition("/")[2], name) is not None)
        got = sorted(p.rstrip("/") for p in _sibling_entries(fs, root, name)
                     if _parse(p.rstrip("/").rpartition("/")[2], name) is not None)
        assert got == expected and len(got) == 2, (name, got)
        assert len(_sibling_entries(fs, root, name)) <= 4  # not the folder's 40+ entries
        assert sorted(s[0] for s in siblings(fs, f"{root}/{name}")) == expected
