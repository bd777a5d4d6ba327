"""One place that turns "where" (str, Path, fsspec URL + storage_options) into a filesystem.

Also the atomic-write helpers: outputs are written under a temporary sibling name and renamed
into place, so a failed or killed write never leaves something that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import StoreExistsError, WriteError

__all__ = ["Location", "atomic_target", "resolve"]


@dataclass(frozen=True)
class Location:
    """A resolved output/input place: the fsspec filesystem and the path inside it."""

    fs: fsspec.AbstractFileSystem
    path: str
    url: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def child(self, name: str) -> Location:
        sep = "" if self.path.endswith("/") else "/"
        url_sep = "" if self.url.endswith("/") else "/"
        return Location(self.fs, f"{self.path}{sep}{name}", f"{self.url}{url_sep}{name}")


def resolve(
    where: str | os.PathLike[str] | Location,
    storage_options: Mapping[str, Any] | None = None,
) -> Location:
    """Resolve a local path or fsspec URL; ``storage_options`` only make sense for URLs."""
    if isinstance(where, Location):
        if storage_options:
            raise ValueError("storage_options cannot be combined with a resolved Location")
        return where
    text = os.fspath(where)
    if "://" not in text and "::" not in text:
        if storage_options:
            raise ValueError(
                f"storage_options were given for the local path {text!r}; they would be "
                "ignored. Pass an fsspec URL (e.g. 's3://bucket/key') to use them."
            )
        path = str(Path(text).expanduser().absolute())
        return Location(LocalFileSystem(), path, path)
    fs, path = fsspec.core.url_to_fs(text, **dict(storage_options or {}))
    return Location(fs, path, text)


def _files_under(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Every file at or below ``path``, listed without glob expansion (names may hold ``[``)."""
    if not fs.isdir(path):
        return [path] if fs.exists(path) else []
    return list(fs.find(path, withdirs=False))


def _remove(loc: Location, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if loc.is_local:
            if loc.fs.isdir(path):
                loc.fs.rm(path, recursive=True)
            elif loc.fs.exists(path):
                loc.fs.rm(path)
            return
        for f in _files_under(loc.fs, path):  # rm_file never globs, unlike rm
            loc.fs.rm_file(f)
        with contextlib.suppress(OSError, NotImplementedError):
            if loc.fs.isdir(path):
                loc.fs.rmdir(path)


def _move_remote(fs: fsspec.AbstractFileSystem, src: str, dst: str) -> None:
    """Copy file by file then delete: ``fs.mv`` would glob-expand names holding ``[`` or ``*``."""
    src = src.rstrip("/")
    dst = dst.rstrip("/")
    files = _files_under(fs, src)
    for f in files:
        rel = f[len(src):].lstrip("/")
        fs.cp_file(f, f"{dst}/{rel}" if rel else dst)
    for f in files:
        fs.rm_file(f)


def _sibling(loc: Location, tag: str) -> Location:
    """A hidden sibling of ``loc`` (``.<name>.<tag>-<random>``) on the same filesystem."""
    parent, _, name = loc.path.rstrip("/").rpartition("/")
    sib = f".{name}.{tag}-{uuid.uuid4().hex[:12]}"
    return Location(loc.fs, f"{parent}/{sib}" if parent else sib,
                    loc.url.rstrip("/").rpartition("/")[0] + "/" + sib)


def _move(loc: Location, src: str, dst: str) -> None:
    if loc.is_local:
        os.replace(src, dst)
    else:
        _move_remote(loc.fs, src, dst)


@contextlib.contextmanager
def atomic_target(loc: Location, *, overwrite: bool = False) -> Iterator[Location]:
    """Yield a temporary sibling of ``loc`` to write into; rename it into place on success.

    An existing target raises :class:`StoreExistsError` unless ``overwrite``; on failure the
    temporary output is removed and the target is left as it was. When overwriting, the old
    output is first moved aside and deleted only once the new one is in place (restored if
    the swap fails), so no moment leaves neither on disk.
    """
    if loc.exists() and not overwrite:
        raise StoreExistsError("already exists; pass overwrite=True to replace it", path=loc.url)
    tmp = _sibling(loc, "tmp")
    parent = loc.path.rstrip("/").rpartition("/")[0]
    if loc.is_local and parent:
        os.makedirs(parent, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        _remove(loc, tmp.path)
        raise
    old = _sibling(loc, "old") if loc.exists() else None
    try:
        if old is not None:
            _move(loc, loc.path, old.path)
        _move(loc, tmp.path, loc.path)
    except OSError as exc:
        _remove(loc, tmp.path)
        if old is not None and not loc.exists() and old.exists():
            _move(loc, old.path, loc.path)
        raise WriteError(f"could not move the finished output into place: {exc}",
                         path=loc.url) from exc
    if old is not None:
        _remove(loc, old.path)
