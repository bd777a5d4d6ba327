"""The nightly batch: convert every registered recording that is missing or stale."""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

import dagster as dg

from ..status import plan_batch
from .assets import ASSET_KEYS
from .jobs import CONVERT_JOB
from .partitions import RECORDINGS_NAME

__all__ = ["build_schedule"]


def build_schedule(store_version: str, cron: str = "0 2 * * *") -> dg.ScheduleDefinition:
    """A schedule requesting full runs for incomplete partitions and store-only runs for
    partitions whose store was built with other serving parameters."""

    @dg.schedule(name="nightly_conversion", cron_schedule=cron, job_name=CONVERT_JOB,
                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED)
    def nightly_conversion(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        keys = context.instance.get_dynamic_partitions(RECORDINGS_NAME)
        plan = plan_batch(context.instance, store_version, keys, list(ASSET_KEYS))
        stamp = context.scheduled_execution_time.strftime("%Y%m%d")
        return [dg.RunRequest(
            partition_key=key, run_key=f"nightly-{stamp}-{key}",
            asset_selection=[ASSET_KEYS["zarr_store"]] if what == "stores" else None,
            tags={"biosigio/reason": "stale-store" if what == "stores" else "missing"})
            for key, what in sorted(plan.items())]

    return nightly_conversion
