"""Resolving where outputs go, and complete-or-absent writes on local and fsspec targets."""

from __future__ import annotations

import uuid

import pytest

from biosigio_lib import StoreExistsError
from biosigio_lib._fs import atomic_target, resolve


def test_local_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="storage_options"):
        resolve(tmp_path / "x", {"anon": True})


@pytest.mark.parametrize("name", ["plain", "with [brackets] and *star?"])
@pytest.mark.parametrize("folder", [False, True])
def test_atomic_target_on_memory_fs_with_glob_characters(name, folder):
    loc = resolve(f"memory://fs-tests/{uuid.uuid4().hex}/{name}.out")
    with atomic_target(loc) as tmp:
        if folder:
            tmp.fs.pipe_file(f"{tmp.path}/a/b.bin", b"1")
            tmp.fs.pipe_file(f"{tmp.path}/c.bin", b"2")
        else:
            tmp.fs.pipe_file(tmp.path, b"payload")
    if folder:
        assert loc.fs.cat_file(f"{loc.path}/a/b.bin") == b"1"
        assert loc.fs.cat_file(f"{loc.path}/c.bin") == b"2"
    else:
        assert loc.fs.cat_file(loc.path) == b"payload"
    parent = loc.path.rsplit("/", 1)[0]
    assert [p for p in loc.fs.ls(parent, detail=False) if ".tmp-" in p] == []
    with pytest.raises(StoreExistsError):
        with atomic_target(loc):
            pass
    with atomic_target(loc, overwrite=True) as tmp:
        tmp.fs.pipe_file(tmp.path if not folder else f"{tmp.path}/new.bin", b"new")
    if folder:
        assert loc.fs.cat_file(f"{loc.path}/new.bin") == b"new"
        assert not loc.fs.exists(f"{loc.path}/c.bin")
    else:
        assert loc.fs.cat_file(loc.path) == b"new"


def test_failed_write_leaves_nothing(tmp_path):
    loc = resolve(tmp_path / "out.bin")
    with pytest.raises(RuntimeError):
        with atomic_target(loc) as tmp:
            (tmp_path / tmp.path.rsplit("/", 1)[-1]).write_bytes(b"half")
            raise RuntimeError("killed halfway")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fallback", [False, True])
def test_failed_swap_restores_the_previous_output(tmp_path, monkeypatch, fallback):
    import errno
    import os

    from biosigio_lib import WriteError, _atomic

    target = tmp_path / "store"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    loc = resolve(target)
    real_noreplace = _atomic._rename_noreplace

    def exchange(src, dst):  # the atomic swap fails, or is not supported (two renames then)
        raise OSError(errno.EINVAL if fallback else errno.EIO, "swap failed")

    def noreplace(src, dst):
        if ".tmp-" in str(src):  # the new output cannot be moved in
            raise OSError(errno.ENOSPC, "disk full")
        return real_noreplace(src, dst)

    monkeypatch.setattr(_atomic, "_rename_exchange", exchange)
    monkeypatch.setattr(_atomic, "_rename_noreplace", noreplace)
    with pytest.raises(WriteError):
        with atomic_target(loc, overwrite=True) as tmp:
            os.makedirs(tmp.path)
            (tmp_path / tmp.path.rsplit("/", 1)[-1] / "new.bin").write_bytes(b"new")
    assert (target / "old.bin").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
