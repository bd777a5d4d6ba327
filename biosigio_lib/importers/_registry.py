"""The importer registry: each format is a small class that declares how to recognise it.

Dispatch (``guess_importer``): an explicit name always wins; then magic bytes; then the file
name's suffix (double suffixes such as ``.edf.gz`` included). Importers whose optional extra
is missing still match, so the error can say which extra to install.
"""

from __future__ import annotations

import importlib.util
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from .._fs import Location, resolve
from ..errors import (
    FileReadError,
    MissingDependencyError,
    UnsupportedFormatError,
    source_not_found,
)

if TYPE_CHECKING:
    from ..recording import Recording

__all__ = ["Importer", "get_importer", "guess_importer", "list_importers", "register"]

_REGISTRY: dict[str, Importer] = {}
_HEAD_BYTES = 512


class Importer(ABC):
    """Base class: a format's name, suffixes, magic bytes and the extra its reader needs."""

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    #: ``(offset, bytes)`` pairs; any one matching the file head selects this importer.
    magic: ClassVar[tuple[tuple[int, bytes], ...]] = ()
    #: The pip extra (``pip install biosigio-pipeline[<extra>]``) and the modules it provides.
    extra: ClassVar[str | None] = None
    #: Whether ``read(..., lazy=True)`` keeps the samples in the file (read when used).
    supports_lazy: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: Importers that open folders (Zarr stores, BIDS roots, archive folders).
    opens_directories: ClassVar[bool] = False

    def available(self) -> bool:
        """True when the modules this importer needs can be imported."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    def require(self) -> None:
        """Raise :class:`MissingDependencyError` naming the extra when it is not installed."""
        if not self.available():
            raise MissingDependencyError(
                f"the {self.name} importer needs {', '.join(self.requires)}: "
                f"pip install 'biosigio-pipeline[{self.extra}]'"
            )

    def match_suffix(self, name: str) -> bool:
        low = name.lower().rstrip("/")
        return any(low.endswith(ext) for ext in self.extensions)

    def match_magic(self, head: bytes) -> bool:
        return any(head[off : off + len(sig)] == sig for off, sig in self.magic)

    def can_open(self, loc: Location, head: bytes) -> bool:
        """Content check beyond magic/suffix (e.g. a folder layout); default: no opinion."""
        return False

    @abstractmethod
    def read(self, loc: Location, **kwargs: Any) -> Recording:
        """Read the whole recording."""

    def iter_blocks(self, loc: Location, block_seconds: float = 60.0,
                    **kwargs: Any) -> Iterator[Recording]:
        """Yield ``[k, k + 1) * block_seconds`` windows of the whole read; the first block also
        holds anything before 0 s and the last anything after the end (events too)."""
        if not (block_seconds > 0 and math.isfinite(block_seconds)):
            raise ValueError(f"block_seconds must be a positive number, got {block_seconds!r}")
        rec = self.read(loc, **kwargs)
        n = max(1, math.ceil(rec.duration / block_seconds - 1e-9))
        for k in range(n):
            yield rec.select(tmin=None if k == 0 else k * block_seconds,
                             tmax=None if k == n - 1 else (k + 1) * block_seconds)


def register(importer: type[Importer]) -> type[Importer]:
    """Register an importer class (usable as a decorator); a later name replaces an earlier."""
    _REGISTRY[importer.name] = importer()
    return importer


def list_importers() -> dict[str, dict[str, Any]]:
    """Name -> suffixes, extra and whether it is usable here."""
    return {
        name: {"extensions": imp.extensions, "extra": imp.extra,
               "available": imp.available(), "description": imp.description}
        for name, imp in _REGISTRY.items()
    }


def get_importer(name: str) -> Importer:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnsupportedFormatError(
            f"no importer named {name!r}; known: {sorted(_REGISTRY)}"
        ) from None


def _head(loc: Location) -> bytes:
    try:
        if loc.fs.isdir(loc.path):
            return b""
        with loc.fs.open(loc.path, "rb") as fh:
            return bytes(fh.read(_HEAD_BYTES))
    except (FileNotFoundError, IsADirectoryError):
        return b""
    except OSError as exc:  # not "empty": permission denied (mode 000, S3 AccessDenied), EIO...
        raise FileReadError(f"cannot read the file: {exc}; check its permissions or that the "
                            "device or server can serve it", path=loc.url) from exc


def guess_importer(where: str | os.PathLike[str] | Location, **storage: Any) -> Importer:
    """The importer for a path: content check, magic bytes, then suffix."""
    loc = resolve(where, storage.get("storage_options"))
    if not loc.exists():
        raise source_not_found(loc.url)
    is_dir = bool(loc.fs.isdir(loc.path))
    head = b"" if is_dir else _head(loc)
    name = loc.path.rstrip("/").rsplit("/", 1)[-1]
    candidates = [imp for imp in _REGISTRY.values() if imp.opens_directories or not is_dir]
    tests: tuple[Callable[[Importer], bool], ...] = (
        lambda i: i.can_open(loc, head),
        lambda i: bool(head) and i.match_magic(head),
        lambda i: i.match_suffix(name))
    for test in tests:
        found = [imp for imp in candidates if test(imp)]
        if found:
            return found[0]
    usable = [n for n, imp in _REGISTRY.items() if imp.available()]
    if not is_dir and not head:
        raise UnsupportedFormatError("the file is empty", path=loc.url)
    raise UnsupportedFormatError(
        f"no importer recognises this {'folder' if is_dir else 'file'} (by content or "
        f"suffix); installed importers: {usable}. Pass importer='<name>' to force one.",
        path=loc.url,
    )
