"""Declarative automation: a store built with other serving parameters is rebuilt by Dagster.

The store's code version is the hash of the serving parameters (:mod:`.assets`). When a
deployment loads new parameters, the ``stale_store_automation`` sensor (evaluated by the
daemon) sees the code version change and requests every store that existed then, once,
each as soon as no run of it is in progress. Several partitions go out as one asset backfill
(the UI's Backfills list), whose runs the store's ``BackfillPolicy`` batches; a single one as
a run. Missing partitions are not its business: the recordings sensor converts new
recordings whole, with the parameters of the moment.
"""

from __future__ import annotations

import dagster as dg

__all__ = ["AUTOMATION_SENSOR", "build_automation_sensor", "store_rebuild_condition"]

AUTOMATION_SENSOR = "stale_store_automation"


def store_rebuild_condition() -> dg.AutomationCondition:
    """True for a store that existed when its code version (serving parameters) changed,
    until it is requested; held back while a run of it is in progress (that run may use the
    old parameters, so finishing it does not count as handled). A store missing at the
    change is left to the recordings sensor, which builds it with the new parameters."""
    changed = dg.AutomationCondition.code_version_changed() & ~dg.AutomationCondition.missing()
    handled = (dg.AutomationCondition.newly_requested()
               | dg.AutomationCondition.initial_evaluation())
    return (changed.since(handled) & ~dg.AutomationCondition.in_progress()).with_label(
        "stale store (new serving params)")


def build_automation_sensor(minimum_interval_seconds: int = 30) -> dg.SensorDefinition:
    """The automation sensor of the store, running by default; requests go out as backfills."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR, target=dg.AssetSelection.assets("zarr_store"),
        default_status=dg.DefaultSensorStatus.RUNNING, emit_backfills=True,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Rebuilds the serving stores when the serving parameters (the store's code "
                    "version) change, as one batched asset backfill.")
