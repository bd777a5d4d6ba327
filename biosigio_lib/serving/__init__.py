"""The Zarr v3 serving store: level 0 per (modality, grid) plus a min/max view pyramid.

Layout and attributes follow the biosigio 1.2 Zarr format (``format="biosigio-zarr"``,
``format_version=2``) so either side reads the other's stores; see ``docs/serving.md``.
"""

from __future__ import annotations

from .params import DEFAULT_RATE_CAPS, ServingParams
from .reader import (
    PROVENANCE_KEYS,
    ViewData,
    list_groups,
    pick_view_level,
    read_events,
    read_view,
    read_zarr,
    view_level_for,
)
from .verify import verify_level0
from .writer import write_zarr

__all__ = [
    "DEFAULT_RATE_CAPS",
    "PROVENANCE_KEYS",
    "ServingParams",
    "ViewData",
    "list_groups",
    "pick_view_level",
    "read_events",
    "read_view",
    "read_zarr",
    "verify_level0",
    "view_level_for",
    "write_zarr",
]
