"""Rebuild exactly the serving stores that are stale (built with other serving parameters).

The archives are left alone: only ``zarr_store`` (and its checks) runs. Two ways:

- :func:`submit_store_backfill`: a Dagster asset backfill of ``zarr_store`` over the stale
  partitions, stored in the instance (the UI's Backfills list); the daemon launches its runs
  through the run queue, as a backfill started from the UI would be. The store's
  ``BackfillPolicy.multi_run`` (``$BIOSIGIO_BACKFILL_BATCH`` of the code location) makes each
  run build a range of up to that many partitions.
- :func:`backfill_stores`: the same batched runs, in this process (no daemon needed: the local
  demo, and the benchmark): ranges of consecutive stale partitions, as the daemon forms them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import dagster as dg

from .defs.jobs import STORES_JOB
from .defs.partitions import RECORDINGS_NAME
from .status import stale_stores

__all__ = ["BACKFILL_REASON", "backfill_stores", "partition_batches", "submit_store_backfill"]

_QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
BACKFILL_REASON = {"biosigio/reason": "serving-params-backfill"}
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def partition_batches(keys: Sequence[str], selected: Sequence[str], size: int,
                      weight: Callable[[str], int] | None = None,
                      max_weight: int | None = None) -> list[list[str]]:
    """The ``selected`` keys as runs of consecutive keys (in the order of ``keys``, the
    partitions' order) of at most ``size``: each batch is one partition range. With
    ``weight`` and ``max_weight``, a batch's weights also sum below ``max_weight`` (a key of
    that weight or more is alone)."""
    chosen = set(selected)
    batches: list[list[str]] = []
    current: list[str] = []
    total = 0
    for key in keys:
        w = weight(key) if weight is not None and key in chosen else 0
        heavy = max_weight is not None and w >= max_weight
        fits = (key in chosen and len(current) < max(1, size) and not heavy
                and (max_weight is None or total + w < max_weight))
        if fits:
            current.append(key)
            total += w
            continue
        if current:
            batches.append(current)
        current, total = ([key], w) if key in chosen else ([], 0)
        if heavy:
            batches.append(current)
            current, total = [], 0
    if current:
        batches.append(current)
    return batches


def submit_store_backfill(defs: dg.Definitions, instance: dg.DagsterInstance,
                          store_version: str) -> tuple[str | None, list[str]]:
    """Submit an asset backfill of ``zarr_store`` over the stale partitions; returns its id
    (None when nothing is stale) and the partitions. The daemon executes it."""
    from dagster._core.execution.backfill import PartitionBackfill  # no public API yet
    from dagster._core.utils import make_new_backfill_id

    stale = stale_stores(instance, store_version, instance.get_dynamic_partitions(RECORDINGS_NAME))
    if not stale:
        return None, []
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(), asset_graph=defs.resolve_asset_graph(),
        partition_names=stale, asset_selection=[dg.AssetKey("zarr_store")],
        backfill_timestamp=time.time(), tags=BACKFILL_REASON, dynamic_partitions_store=instance,
        all_partitions=False, title="rebuild stale serving stores",
        description=f"zarr_store of {len(stale)} partition(s) to serving params {store_version}",
        run_config=None)
    instance.add_backfill(backfill)
    return backfill.backfill_id, stale


def backfill_stores(defs: dg.Definitions, instance: dg.DagsterInstance, store_version: str, *,
                    dry_run: bool = False, batch_size: int = 1,
                    report: Callable[[str, bool], None] | None = None) -> dict[str, bool]:
    """Partition -> success, for every partition whose store is stale; runs of up to
    ``batch_size`` partitions (a partition range each, as a batched Dagster backfill runs)."""
    keys = instance.get_dynamic_partitions(RECORDINGS_NAME)
    stale = stale_stores(instance, store_version, keys)
    if dry_run:
        return dict.fromkeys(stale, True)
    job = defs.resolve_job_def(STORES_JOB)
    done = {}
    for batch in partition_batches(keys, stale, batch_size):
        if len(batch) == 1:
            res = job.execute_in_process(partition_key=batch[0], instance=instance,
                                         run_config=_QUIET, tags=BACKFILL_REASON,
                                         raise_on_error=False)
        else:
            res = job.execute_in_process(
                instance=instance, run_config=_QUIET, raise_on_error=False,
                tags={**BACKFILL_REASON, RANGE_START: batch[0], RANGE_END: batch[-1]})
        built = {e.partition for e in res.get_asset_materialization_events()
                 if e.asset_key == dg.AssetKey("zarr_store")}
        for key in batch:
            done[key] = res.success or key in built
            if report:
                report(key, done[key])
    return done
