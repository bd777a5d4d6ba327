"""What the instance says was built: per partition, the latest materialization of each asset.

Used by the sensor (skip what is already built from the same checksum), the nightly schedule
(missing or stale partitions) and the ``backfill-stores`` command (stale stores only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import dagster as dg

__all__ = [
    "CODE_VERSION_TAG",
    "DATA_VERSION_TAG",
    "latest_materializations",
    "latest_records",
    "latest_tags",
    "plan_batch",
    "source_checksum",
    "stale_stores",
]

CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
_PAGE = 1000


def latest_records(instance: dg.DagsterInstance, asset: str | dg.AssetKey,
                   partitions: Sequence[str] | None = None) -> dict[str, dg.EventLogRecord]:
    """Partition -> the record of the asset's latest materialization of it (absent: never
    built), paged; stops as soon as every one of ``partitions`` (if given) is found.

    With ``partitions``, the first page holds as many records as partitions (all of them when
    they were last built together, as a batched run builds them), and pages double from there:
    older materializations are not read (nor deserialized) when they are not needed."""
    out: dict[str, dg.EventLogRecord] = {}
    cursor = None
    key = asset if isinstance(asset, dg.AssetKey) else dg.AssetKey(asset)
    wanted = set(partitions) if partitions else set()
    page = min(_PAGE, len(wanted)) if wanted else _PAGE
    while True:
        res = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key,
                                  asset_partitions=list(partitions) if partitions else None),
            limit=page, cursor=cursor, ascending=False)
        for rec in res.records:
            if rec.partition_key is not None and rec.partition_key not in out:
                out[rec.partition_key] = rec
        if not res.has_more or (wanted and len(out) == len(wanted)):
            return out
        cursor, page = res.cursor, min(_PAGE, page * 2)


def latest_materializations(instance: dg.DagsterInstance, asset: str,
                            partitions: Sequence[str] | None = None
                            ) -> dict[str, dg.AssetMaterialization]:
    """Partition -> the asset's latest materialization of it (absent: never built)."""
    return {k: r.asset_materialization
            for k, r in latest_records(instance, asset, partitions).items()
            if r.asset_materialization is not None}


def latest_tags(instance: dg.DagsterInstance, asset: str,
                partitions: Sequence[str] | None = None) -> dict[str, Mapping[str, str]]:
    """Partition -> tags of the asset's latest materialization of it (absent: never built)."""
    return {k: dict(m.tags or {}) for k, m in
            latest_materializations(instance, asset, partitions).items()}


def source_checksum(mat: dg.AssetMaterialization) -> str:
    """The source checksum a ``source_recording`` materialization recorded: its
    ``source_checksum`` metadata (every run), else its data version (older single runs)."""
    meta = mat.metadata.get("source_checksum")
    if meta is not None:
        return str(meta.value)
    return (mat.tags or {}).get(DATA_VERSION_TAG, "")


def stale_stores(instance: dg.DagsterInstance, store_version: str,
                 partitions: Iterable[str]) -> list[str]:
    """Partitions whose store was built, but with other serving parameters.

    (A partition never built is not stale but missing: it needs the whole chain.)
    """
    keys = list(partitions)
    tags = latest_tags(instance, "zarr_store", keys) if keys else {}
    return [k for k in keys if k in tags and tags[k].get(CODE_VERSION_TAG) != store_version]


def plan_batch(instance: dg.DagsterInstance, store_version: str,
               partitions: Iterable[str], assets: Sequence[str]) -> dict[str, str]:
    """Partition -> ``"all"`` (an output is missing) or ``"stores"`` (only the store is stale)."""
    keys = list(partitions)
    if not keys:
        return {}
    built = {a: latest_tags(instance, a, keys) for a in assets}
    stale = set(stale_stores(instance, store_version, keys))
    plan = {}
    for k in keys:
        if any(k not in built[a] for a in assets):
            plan[k] = "all"
        elif k in stale:
            plan[k] = "stores"
    return plan
