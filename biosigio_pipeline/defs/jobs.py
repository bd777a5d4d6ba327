"""Jobs: convert a recording end to end, or rebuild only its serving store (and its checks)."""

from __future__ import annotations

import dagster as dg

from .assets import GROUP

__all__ = ["CONVERT_JOB", "STORES_JOB", "build_jobs"]

CONVERT_JOB = "convert_recording"
STORES_JOB = "rebuild_stores"


def build_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    """The asset jobs (partitioned by recording, as their assets are)."""
    convert = dg.define_asset_job(
        CONVERT_JOB, selection=dg.AssetSelection.groups(GROUP),
        description="Discover, import, archive (Parquet + Feather) and serve (Zarr) a recording.")
    stores = dg.define_asset_job(
        STORES_JOB, selection=dg.AssetSelection.assets("zarr_store"),
        description="Rebuild only the serving store (after a change of serving parameters).")
    return [convert, stores]
