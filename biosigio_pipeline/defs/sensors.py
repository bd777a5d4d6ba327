"""The sensors: discover new or changed recordings, register partitions and request their
runs; split a failed batch of small recordings into one run each.

Small recordings one tick discovers are converted in batches: one run over a range of up to
``batch`` consecutive partitions (their sizes summing below ``heavy_bytes``), so per-run
overhead (a run worker's start, the executor's per-step cost) does not dominate them. A
recording of ``heavy_bytes`` or more gets a run of its own, tagged heavy for the run queue.
If a batch's run fails for good (a bad source fails its step for the whole range), the
``split_failed_batches`` sensor requests one run per recording the batch left unbuilt, so a
failing source does not block the others.
"""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

import hashlib
import json
from collections.abc import Sequence

import dagster as dg

from biosigio_lib.discovery import SourceRecording

from ..backfill import RANGE_END, RANGE_START, partition_batches
from ..status import latest_materializations, source_checksum
from ..tracking import parse_cursor, plan_tick
from .assets import ASSET_KEYS
from .checks import CHECK_NAMES
from .jobs import CONVERT_JOB
from .partitions import RECORDINGS, RECORDINGS_NAME
from .resources import SourceRoots

__all__ = ["BATCH_TAG", "HEAVY", "WEIGHT_TAG", "build_sensor", "build_split_sensor",
           "recording_batches", "recordings_sensor"]

#: Run tag telling heavy conversions from light ones; the run queue limits heavy runs by it.
WEIGHT_TAG = "biosigio/weight"
HEAVY = "heavy"
#: Run tag of the sensor's runs over several recordings: how many it converts.
BATCH_TAG = "biosigio/batch"
_WILL_RETRY_TAG = "dagster/will_retry"
_ROOT_RUN_TAG = "dagster/root_run_id"
#: A batch whose step failed (a bad source) is split at once, not retried whole: run retries
#: then cover only a run whose process died.
_NO_STEP_RETRY_TAG = "dagster/retry_on_asset_or_op_failure"


def recording_batches(order: Sequence[str], to_run: Sequence[SourceRecording], size: int,
                      max_bytes: int) -> list[list[SourceRecording]]:
    """``to_run`` as runs of consecutive partitions (in ``order``, the partitions' order): at
    most ``size`` recordings and, unless alone, under ``max_bytes`` together; a recording of
    ``max_bytes`` or more is always alone (:func:`..backfill.partition_batches`)."""
    by_key = {s.key: s for s in to_run}
    groups = partition_batches(order, list(by_key), size, weight=lambda k: by_key[k].size,
                               max_weight=max_bytes)
    return [[by_key[k] for k in group] for group in groups]


def build_sensor(minimum_interval_seconds: int = 60, heavy_bytes: int = 256 * 2**20,
                 batch: int = 25) -> dg.SensorDefinition:
    """The sensor, ticking at most every ``minimum_interval_seconds``; recordings of at least
    ``heavy_bytes`` get a run of their own tagged ``biosigio/weight=heavy``, smaller ones are
    converted up to ``batch`` per run (tagged ``light``)."""

    @dg.sensor(name="recordings_sensor", job_name=CONVERT_JOB,
               minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED)
    def _sensor(context: dg.SensorEvaluationContext,
                sources: SourceRoots) -> dg.SensorResult | dg.SkipReason:
        """Scan the source roots (bounded slice a tick) and convert what is new or changed."""
        return _tick(context, sources, heavy_bytes, batch)

    return _sensor


def _tick(context: dg.SensorEvaluationContext, sources: SourceRoots,
          heavy_bytes: int, batch: int) -> dg.SensorResult:
    """One evaluation of the sensor."""
    cursor, problem = parse_cursor(context.cursor)
    if problem:
        context.log.warning(problem)
    built_cache: dict[str, str] = {}

    def built(key: str) -> str | None:
        """The checksum a complete earlier conversion of ``key`` was built from, if any."""
        if not built_cache:
            mats = {a: latest_materializations(context.instance, a) for a in ASSET_KEYS}
            complete = set.intersection(*(set(t) for t in mats.values()))
            built_cache.update({k: source_checksum(mats["source_recording"][k])
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
    existing = context.instance.get_dynamic_partitions(RECORDINGS_NAME)
    known = set(existing)
    # new recordings, and any requested or up-to-date one whose partition is gone (deleted
    # in the UI): registered, so that every run request below has its partition
    new_keys = [s.key for s in plan.to_run if s.key not in known]
    new_keys += [k for k in plan.up_to_date if k not in known]
    new = {s.key for s in plan.new}
    runs = [_run_request(group, new, heavy_bytes) for group in
            recording_batches([*existing, *new_keys], plan.to_run, batch, heavy_bytes)]
    context.log.info(f"{len(plan.new)} new, {len(plan.changed)} changed, "
                     f"{len(plan.removed)} removed, {len(plan.unreadable)} unreadable, "
                     f"{plan.pending} left for later ticks")
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[RECORDINGS.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(plan.cursor, sort_keys=True))



def _run_request(group: list[SourceRecording], new: set[str],
                 heavy_bytes: int) -> dg.RunRequest:
    """One recording's run, or one run over a range of consecutive partitions."""
    reasons = sorted({"new" if s.key in new else "changed" for s in group})
    tags = {"biosigio/reason": "+".join(reasons),
            WEIGHT_TAG: HEAVY if sum(s.size for s in group) >= heavy_bytes else "light"}
    if len(group) == 1:
        (src,) = group
        return dg.RunRequest(partition_key=src.key, run_key=f"{src.key}@{src.checksum}",
                             tags={"biosigio/source_checksum": str(src.checksum), **tags})
    digest = hashlib.sha256("\n".join(f"{s.key}@{s.checksum}" for s in group).encode())
    return dg.RunRequest(
        run_key=f"{group[0].key}..{group[-1].key}@{digest.hexdigest()[:16]}",
        tags={RANGE_START: group[0].key, RANGE_END: group[-1].key,
              BATCH_TAG: str(len(group)), _NO_STEP_RETRY_TAG: "false", **tags})


def build_split_sensor(convert_job: "dg.UnresolvedAssetJobDefinition") -> dg.SensorDefinition:
    """The sensor that splits a failed batch: for a failed run of the recordings sensor over
    several partitions that will not be retried, one run per partition it left unbuilt."""

    @dg.run_failure_sensor(name="split_failed_batches", request_job=convert_job,
                           monitored_jobs=[convert_job],
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           minimum_interval_seconds=10)
    def split_failed_batches(context: dg.RunFailureSensorContext
                             ) -> list[dg.RunRequest] | None:
        """One run per recording of a failed batch that is not built yet. Other failed runs
        give None, so the next failed run is looked at in the same tick."""
        run = context.dagster_run
        tags = run.tags
        if BATCH_TAG not in tags or tags.get(_WILL_RETRY_TAG) == "true":
            return None  # not a batch, or the daemon retries it (a run worker that died)
        root = tags.get(_ROOT_RUN_TAG, run.run_id)
        keys = _range_keys(context.instance, tags[RANGE_START], tags[RANGE_END])
        unbuilt = unbuilt_partitions(context.instance, root, keys)
        context.log.warning(f"batch run {run.run_id} failed: {len(unbuilt)} of {len(keys)} "
                            "recording(s) unbuilt, each requested in a run of its own")
        return [dg.RunRequest(partition_key=key, run_key=f"split-{root}-{key}",
                              tags={"biosigio/reason": "split-failed-batch",
                                    "biosigio/failed_batch_run": run.run_id,
                                    WEIGHT_TAG: tags.get(WEIGHT_TAG, "light")})
                for key in unbuilt]

    return split_failed_batches


def _range_keys(instance: dg.DagsterInstance, start: str, end: str) -> list[str]:
    keys = instance.get_dynamic_partitions(RECORDINGS_NAME)
    if start not in keys or end not in keys:
        return []
    return list(keys[keys.index(start):keys.index(end) + 1])


def unbuilt_partitions(instance: dg.DagsterInstance, root_run_id: str,
                       keys: Sequence[str]) -> list[str]:
    """The ``keys`` the run group of ``root_run_id`` (that run and its retries) did not
    build whole: an asset not materialized or a check not evaluated for them."""
    T = dg.DagsterEventType
    retries = instance.get_runs(dg.RunsFilter(tags={_ROOT_RUN_TAG: root_run_id}))
    done: dict[str, set[str]] = {}
    for run_id in [root_run_id, *(r.run_id for r in retries)]:
        for entry in instance.all_logs(run_id, of_type={T.ASSET_MATERIALIZATION,
                                                        T.ASSET_CHECK_EVALUATION}):
            ev = entry.dagster_event
            if ev is None:
                continue
            if ev.event_type == T.ASSET_MATERIALIZATION:
                name, part = ev.asset_key.to_user_string() if ev.asset_key else "", ev.partition
            else:
                data = ev.event_specific_data
                name = str(getattr(data, "check_name", ""))
                part = getattr(data, "partition", None)
            if part is not None:
                done.setdefault(part, set()).add(name)
    need = {*ASSET_KEYS, *CHECK_NAMES}
    return [k for k in keys if not need <= done.get(k, set())]


recordings_sensor = build_sensor()
