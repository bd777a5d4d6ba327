"""Rebuild exactly the serving stores that are stale (built with other serving parameters).

The archives are left alone: only ``zarr_store`` (and its checks) runs, one in-process run per
stale partition, on the instance given (``DAGSTER_HOME`` by default).
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from .defs.jobs import STORES_JOB
from .defs.partitions import RECORDINGS_NAME
from .status import stale_stores

__all__ = ["backfill_stores"]

_QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


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
                                     tags={"biosigio/reason": "serving-params-backfill"},
                                     raise_on_error=False)
        done[key] = res.success
        if report:
            report(key, res.success)
    return done
