"""Importer ``tabular``: biosigio-tabular Parquet / Arrow IPC (Feather v2) files and folders.

Reads what :func:`biosigio_lib.archive.write_parquet` / ``write_arrow`` and biosigio 1.2 write;
an archive folder (several grids) is recognised by its manifest. ``channels``, ``tmin`` and
``tmax`` read a subset without decoding the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._fs import Location
from ._registry import Importer, register

if TYPE_CHECKING:
    from ..recording import Recording

__all__ = ["TabularImporter"]

_MANIFEST = "biosigio-archive.json"  # == biosigio_lib.archive.MANIFEST_NAME (lazy import)


@register
class TabularImporter(Importer):
    """biosigio-tabular archives: ``.parquet``, ``.feather``, ``.arrow`` and archive folders."""

    name = "tabular"
    extensions = (".parquet", ".feather", ".arrow")
    magic = ((0, b"PAR1"), (0, b"ARROW1"))
    requires = ("pyarrow",)
    description = "biosigio-tabular Parquet / Arrow IPC (Feather v2) archive"
    opens_directories = True
    supports_lazy = True

    def can_open(self, loc: Location, head: bytes) -> bool:
        """An archive folder: a directory holding the archive manifest."""
        return not head and bool(loc.fs.isdir(loc.path)) and loc.child(_MANIFEST).exists()

    def read(self, loc: Location, channels: Iterable[str] | None = None,
             tmin: float | None = None, tmax: float | None = None, lazy: bool = False,
             **kwargs: Any) -> Recording:
        """Read the archive (or the channels / ``[tmin, tmax)`` seconds asked for); ``lazy``
        decodes each window's row groups only when it is used."""
        if kwargs:
            raise TypeError(f"the tabular importer takes channels, tmin, tmax and lazy; got "
                            f"{sorted(kwargs)}")
        from ..archive import read_location

        return read_location(loc, channels, tmin, tmax, lazy=lazy)

    def iter_blocks(self, loc: Location, block_seconds: float = 60.0,
                    **kwargs: Any) -> Iterator[Recording]:
        """Yield ``block_seconds`` windows, each read from only its own row groups; the first
        also holds anything before 0 s and the last anything after the end (events too)."""
        from ..archive import archive_duration

        if not (block_seconds > 0 and math.isfinite(block_seconds)):
            raise ValueError(f"block_seconds must be a positive number, got {block_seconds!r}")
        channels = kwargs.pop("channels", None)
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)}")
        n = max(1, math.ceil(archive_duration(loc) / block_seconds - 1e-9))
        for k in range(n):
            yield self.read(loc, channels, tmin=None if k == 0 else k * block_seconds,
                            tmax=None if k == n - 1 else (k + 1) * block_seconds)
