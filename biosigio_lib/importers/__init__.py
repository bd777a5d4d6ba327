"""Format importers behind one entry point, :func:`read`; each module registers itself."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._fs import Location, resolve
from ..errors import UnsupportedFormatError, source_not_found
from ._registry import Importer, get_importer, guess_importer, list_importers, register

if TYPE_CHECKING:
    from ..recording import Recording

__all__ = [
    "Importer",
    "get_importer",
    "guess_importer",
    "iter_blocks",
    "list_importers",
    "read",
    "register",
]

# Modules that register importers; a module missing from a partial checkout is skipped.
_BUILTIN = ("tabular", "zarr_", "edf", "wfdb_", "xdf", "bids")
for _mod in _BUILTIN:
    try:
        importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _exc:  # only tolerate the module itself being absent
        if _exc.name != f"{__name__}.{_mod}":
            raise


def _pick(where: str | os.PathLike[str] | Location, importer: str | None,
          storage_options: dict[str, Any] | None) -> tuple[Importer, Location]:
    loc = resolve(where, storage_options)
    if not loc.exists():
        raise source_not_found(loc.url)
    if not importer:
        imp = guess_importer(loc)
    else:
        try:
            imp = get_importer(importer)
        except UnsupportedFormatError as exc:
            raise UnsupportedFormatError(exc.message, path=loc.url) from None
        if not imp.opens_directories and loc.fs.isdir(loc.path):
            raise UnsupportedFormatError(
                f"the {imp.name} importer reads files and this is a folder; pass a file "
                "inside it, or leave importer unset to detect the folder's format",
                path=loc.url)
    imp.require()
    return imp, loc


def read(where: str | os.PathLike[str] | Location, importer: str | None = None, *,
         storage_options: dict[str, Any] | None = None, lazy: bool = False,
         **kwargs: Any) -> Recording:
    """Read a recording; ``importer`` forces a format by name (see :func:`list_importers`).

    ``lazy=True`` asks for a file-backed Recording (samples read a window at a time when
    used) from the importers that can give one (EDF/BDF, archives); the others read whole.
    """
    imp, loc = _pick(where, importer, storage_options)
    if lazy and imp.supports_lazy:
        kwargs["lazy"] = True
    rec = imp.read(loc, **kwargs)
    rec.origin = {"url": loc.url, "importer": imp.name,
                  "kwargs": {k: v for k, v in kwargs.items() if k != "lazy"
                             and isinstance(v, str | int | float | bool | None)},
                  "lazy": rec.is_lazy}
    return rec


def iter_blocks(where: str | os.PathLike[str] | Location, block_seconds: float = 60.0,
                importer: str | None = None, *,
                storage_options: dict[str, Any] | None = None,
                **kwargs: Any) -> Iterator[Recording]:
    """Yield a recording a time window at a time, for conversions larger than memory."""
    imp, loc = _pick(where, importer, storage_options)
    return imp.iter_blocks(loc, block_seconds=block_seconds, **kwargs)
