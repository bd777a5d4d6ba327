"""One place that turns "where" (str, Path, fsspec URL + storage_options) into a filesystem.

Also the atomic-write helpers: outputs are written under a temporary sibling name and renamed
into place, so a failed or killed write never leaves something that looks complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from . import _atomic
from .errors import StoreExistsError, WriteError

__all__ = ["Location", "atomic_target", "list_folder", "resolve"]


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
    """Resolve a local path or fsspec URL; ``storage_options`` only make sense for URLs.

    A missing local path whose overwrite was killed between its two renames (fallback only)
    is put back from its complete ``.old`` sibling here, so the next read finds it.
    """
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
        if not os.path.lexists(path):  # cheap: only a missing path looks for a killed swap
            _atomic.recover_local(path)
        return Location(LocalFileSystem(), path, path)
    fs, path = fsspec.core.url_to_fs(text, **dict(storage_options or {}))
    return Location(fs, path, text)


def list_folder(fs: fsspec.AbstractFileSystem, folder: str) -> list[tuple[str, bool]]:
    """``(name, is_folder)`` of the entries directly in ``folder``, sorted; [] if none.

    Listed, never globbed: fsspec's ``glob``/``get``/``rm`` expand ``[``, ``*`` and ``?``, so a
    pattern built from a file or folder name matches other files or none. Callers filter the
    names (``startswith``, ``fnmatchcase(name, constant_pattern)``) instead.
    """
    base = folder.rstrip("/")
    try:
        infos = fs.ls(base, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = set()
    for info in infos:
        path = str(info["name"]).rstrip("/")
        name = path.rpartition("/")[2]
        if path == base or not name:  # ``ls`` of a file lists the file itself
            continue
        out.add((name, info.get("type") == "directory"))
    return sorted(out)


def _sibling(loc: Location, tag: str) -> Location:
    """A hidden sibling of ``loc`` (``.<name>.<tag>-<host>-<pid>-<hex>``) on the same fs."""
    parent, _, name = loc.path.rstrip("/").rpartition("/")
    sib = _atomic.sibling_name(name, tag)
    return Location(loc.fs, f"{parent}/{sib}" if parent else sib,
                    loc.url.rstrip("/").rpartition("/")[0] + "/" + sib)


def _remove(loc: Location, path: str) -> None:
    if loc.is_local:
        _atomic.remove_local(path)
    else:
        _atomic.remove_remote(loc.fs, path)


def _exists_error(loc: Location) -> StoreExistsError:
    return StoreExistsError("already exists; pass overwrite=True to replace it", path=loc.url)


@contextlib.contextmanager
def atomic_target(loc: Location, *, overwrite: bool = False,
                  marker: str | None = None) -> Iterator[Location]:
    """Yield a temporary sibling of ``loc`` to write into; move it into place on success.

    An existing target raises :class:`StoreExistsError` unless ``overwrite`` -- also when
    another writer finishes the same target first (checked again, atomically, at the end).
    On failure the temporary output is removed and the target is left as it was. ``marker``
    names the file that makes a folder output complete (``zarr.json``, the manifest): on
    object stores it is copied last. Stale leftovers of killed writes are recovered first.
    See :mod:`biosigio_lib._atomic` and docs/archive.md ("Write guarantees").
    """
    if loc.is_local:
        _atomic.recover_local(loc.path)
        if os.path.lexists(loc.path) and not overwrite:
            raise _exists_error(loc)
        parent = os.path.dirname(loc.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
    else:
        _atomic.sweep_remote(loc.fs, loc.path)
        if not overwrite and _atomic.complete(loc.fs, loc.path, marker):
            raise _exists_error(loc)
    tmp = _sibling(loc, "tmp")
    try:
        yield tmp
    except BaseException:
        _remove(loc, tmp.path)
        raise
    try:
        if loc.is_local:
            try:
                _atomic.commit_local(tmp.path, loc.path, overwrite=overwrite)
            except FileExistsError:
                raise StoreExistsError("already exists (another writer finished it first); "
                                       "pass overwrite=True to replace it",
                                       path=loc.url) from None
        else:
            _atomic.commit_remote(loc.fs, tmp.path, loc.path, loc.url, marker,
                                  overwrite=overwrite)
    except StoreExistsError:
        _remove(loc, tmp.path)
        raise
    except (OSError, ValueError) as exc:
        _remove(loc, tmp.path)
        if isinstance(exc, WriteError):
            raise
        raise WriteError(f"could not move the finished output into place: {exc}; the "
                         "previous output (if any) is unchanged", path=loc.url) from exc
    if not loc.is_local:
        _remove(loc, tmp.path)
