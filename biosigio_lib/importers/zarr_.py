"""The ``zarr`` importer: biosigio serving stores (``.zarr`` folders and fsspec URLs).

Recognised by content: a folder whose root ``zarr.json`` has ``attributes.format ==
"biosigio-zarr"`` (a store whose write was interrupted has no such attribute and is refused).
Reading is :func:`biosigio_lib.serving.read_zarr` (``group=``, ``channels=``, ``tmin=``,
``tmax=``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._fs import Location
from ._registry import Importer, register

if TYPE_CHECKING:
    from ..recording import Recording

__all__ = ["ZarrImporter"]


@register
class ZarrImporter(Importer):
    """biosigio Zarr v3 serving stores (level 0 of one channel group)."""

    name = "zarr"
    extensions = (".zarr",)
    requires = ("zarr",)
    description = "biosigio Zarr v3 serving store (level 0 of one group)"
    opens_directories = True

    def can_open(self, loc: Location, head: bytes) -> bool:
        """True for a folder with a root ``zarr.json`` declaring the biosigio-zarr format."""
        if head:
            return False
        meta = loc.child("zarr.json")
        try:
            if not loc.fs.isdir(loc.path) or not meta.exists():
                return False
            doc = json.loads(loc.fs.cat_file(meta.path))
        except (OSError, ValueError):
            return False
        attrs = doc.get("attributes") if isinstance(doc, dict) else None
        return isinstance(attrs, dict) and attrs.get("format") == "biosigio-zarr"

    def read(self, loc: Location, **kwargs: Any) -> Recording:
        """Level 0 of a group; see :func:`biosigio_lib.serving.read_zarr` for the options."""
        from ..serving import read_zarr

        return read_zarr(loc, **kwargs)

    def iter_blocks(self, loc: Location, block_seconds: float = 60.0,
                    **kwargs: Any) -> Iterator[Recording]:
        """Level 0 a time window at a time, each window read on its own (only its chunks).

        An events-only store (no signal groups) gives one Recording: its events.
        """
        from ..serving import list_groups, read_zarr
        from ..serving.reader import open_group

        if block_seconds <= 0:
            raise ValueError(f"block_seconds must be > 0, got {block_seconds}")
        if kwargs.get("group") is None and not list_groups(loc):
            yield read_zarr(loc, **kwargs)
            return
        tmin, tmax = kwargs.pop("tmin", None), kwargs.pop("tmax", None)
        sg = open_group(loc, kwargs.get("group"))
        end = sg.t0 + sg.n_samples / sg.rate
        if tmax is not None:
            end = min(end, tmax)
        t = sg.t0 if tmin is None else max(sg.t0, tmin)
        while True:
            yield read_zarr(loc, tmin=t, tmax=min(t + block_seconds, end), **kwargs)
            t += block_seconds
            if t >= end:
                break
