"""The sensor: discover new or changed recordings, register partitions, request their runs."""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

import json

import dagster as dg

from ..status import DATA_VERSION_TAG, latest_tags
from ..tracking import parse_cursor, plan_tick
from .assets import ASSET_KEYS
from .jobs import CONVERT_JOB
from .partitions import RECORDINGS, RECORDINGS_NAME
from .resources import SourceRoots

__all__ = ["HEAVY", "WEIGHT_TAG", "build_sensor", "recordings_sensor"]

#: Run tag telling heavy conversions from light ones; the run queue limits heavy runs by it.
WEIGHT_TAG = "biosigio/weight"
HEAVY = "heavy"


def build_sensor(minimum_interval_seconds: int = 60,
                 heavy_bytes: int = 256 * 2**20) -> dg.SensorDefinition:
    """The sensor, ticking at most every ``minimum_interval_seconds``; recordings of at least
    ``heavy_bytes`` get the run tag ``biosigio/weight=heavy`` (else ``light``)."""

    @dg.sensor(name="recordings_sensor", job_name=CONVERT_JOB,
               minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED)
    def _sensor(context: dg.SensorEvaluationContext,
                sources: SourceRoots) -> dg.SensorResult | dg.SkipReason:
        """Scan the source roots (bounded slice a tick) and convert what is new or changed."""
        return _tick(context, sources, heavy_bytes)

    return _sensor


def _tick(context: dg.SensorEvaluationContext, sources: SourceRoots,
          heavy_bytes: int) -> dg.SensorResult:
    """One evaluation of the sensor."""
    cursor, problem = parse_cursor(context.cursor)
    if problem:
        context.log.warning(problem)
    built_cache: dict[str, str] = {}

    def built(key: str) -> str | None:
        """The checksum a complete earlier conversion of ``key`` was built from, if any."""
        if not built_cache:
            tags = {a: latest_tags(context.instance, a) for a in ASSET_KEYS}
            complete = set.intersection(*(set(t) for t in tags.values()))
            built_cache.update({k: tags["source_recording"][k].get(DATA_VERSION_TAG, "")
                                for k in complete})
            built_cache.setdefault("", "")
        return built_cache.get(key) or None

    plan = plan_tick(sources.roots, cursor, max_per_tick=sources.max_per_tick,
                     storage_options=sources.storage_options or None,
                     materialized_checksum=built)
    for root in plan.missing_roots:
        context.log.warning(f"source root {root} does not exist; skipped")
    for what, error in plan.unreadable:  # reported and skipped; the tick goes on
        context.log.warning(f"cannot read {what} ({error}): skipped this tick, tried again "
                            "on the next")
    for key in plan.removed:
        context.log.warning(f"recording {key} is gone from the source roots; its partition "
                            "and outputs are kept")
    existing = set(context.instance.get_dynamic_partitions(RECORDINGS_NAME))
    new_keys = [s.key for s in plan.new if s.key not in existing]
    new_keys += [k for k in plan.up_to_date if k not in existing]
    runs = [dg.RunRequest(partition_key=s.key, run_key=f"{s.key}@{s.checksum}",
                          tags={"biosigio/source_checksum": str(s.checksum),
                                "biosigio/reason": "new" if s in plan.new else "changed",
                                WEIGHT_TAG: HEAVY if s.size >= heavy_bytes else "light"})
            for s in plan.to_run]
    context.log.info(f"{len(plan.new)} new, {len(plan.changed)} changed, "
                     f"{len(plan.removed)} removed, {len(plan.unreadable)} unreadable, "
                     f"{plan.pending} left for later ticks")
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[RECORDINGS.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(plan.cursor, sort_keys=True))


recordings_sensor = build_sensor()
