"""Rebuild exactly the serving stores that are stale (built with other serving parameters).

The archives are left alone: only ``zarr_store`` (and its checks) runs. Two ways:

- :func:`submit_store_backfill`: a Dagster asset backfill of ``zarr_store`` over the stale
  partitions, stored in the instance (the UI's Backfills list); the daemon launches its runs
  through the run queue, as a backfill started from the UI would be.
- :func:`backfill_stores`: one in-process run per stale partition, in this process (no daemon
  needed: the local demo).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

from .defs.jobs import STORES_JOB
from .defs.partitions import RECORDINGS_NAME
from .status import stale_stores

__all__ = ["BACKFILL_REASON", "backfill_stores", "submit_store_backfill"]

_QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
BACKFILL_REASON = {"biosigio/reason": "serving-params-backfill"}


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
                    dry_run: bool = False,
                    report: Callable[[str, bool], None] | None = None) -> dict[str, bool]:
    """Partition -> success, for every partition whose store is stale."""
    keys = instance.get_dynamic_partitions(RECORDINGS_NAME)
    stale = stale_stores(instance, store_version, keys)
    if dry_run:
        return dict.fromkeys(stale, True)
    job = defs.resolve_job_def(STORES_JOB)
    done = {}
    for key in stale:
        res = job.execute_in_process(partition_key=key, instance=instance, run_config=_QUIET,
                                     tags=BACKFILL_REASON,
                                     raise_on_error=False)
        done[key] = res.success
        if report:
            report(key, res.success)
    return done
