"""Asset checks, one rule each, returning their evidence (the failing values) as metadata.

- the Parquet and the Feather archives read back bit-exactly as the canonical Recording;
- the store's level 0 matches the Recording within the bound its attrs state;
- no channel or event of the Recording is missing from the store, events compared bit-exactly
  (the archives' round-trip checks already list any missing channel or event). An
  annotation-only recording has an events-only store: its level-0 check checks 0 channels.

In a batched backfill run (several partitions, see :mod:`.assets`) Dagster would record one
check result without a partition; each check instead records one evaluation per partition
(with the partition's own materialization as its target), as single-partition runs do.
The store's two checks run in one step (``store_checks``), each with its own evaluations.
"""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

from biosigio_lib import BiosigIOError, Recording

from .. import verify
from ..status import latest_records
from .partitions import RECORDINGS
from .resources import PipelineStorage

__all__ = ["CHECK_NAMES", "build_checks", "check_each", "complete_result", "level0_result",
           "round_trip_result"]

_REC = {"recording": dg.AssetIn("recording")}
#: The checks of every partition (function names, and the store's two spec names, below).
CHECK_NAMES = ("parquet_round_trip", "feather_round_trip", "store_level0_within_bound",
               "store_complete")
#: A store that cannot be read fails its check (with the error as evidence), not the run.
_UNREADABLE = (BiosigIOError, KeyError, OSError, ValueError)


def _unreadable(url: str, exc: BaseException) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={
        "uri": dg.MetadataValue.path(url), "error": f"{type(exc).__name__}: {exc}"})


def _uri(record: Any) -> str | None:
    """The URI a materialization record names (None: no record, or no ``uri``)."""
    mat = record.asset_materialization if record is not None else None
    uri = mat.metadata.get("uri") if mat is not None else None
    return str(uri.value) if uri is not None else None


def _target(record: Any) -> Any:
    """The materialization a check evaluation refers to (None: none)."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,  # no public API yet
    )

    if record is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.event_log_entry.run_id,
        timestamp=record.timestamp)


Result = Callable[[str, Recording, str | None], dg.AssetCheckResult]


def check_each(context: dg.AssetCheckExecutionContext, recording: Any,
               results: Mapping[str, Result]) -> Iterator[Any]:
    """For each check of the step (``results``: its name -> ``result(key, recording, uri)``,
    ``uri`` what the asset's latest materialization of the partition recorded), the run's
    partition's result; in a batched run (``recording`` a mapping key -> Recording) one
    evaluation per partition and check, a failure to open one included."""
    specs = list(context.check_specs)
    keys = list(context.op_execution_context.partition_keys)
    latest = {a: latest_records(context.instance, a, keys) for a in {s.asset_key for s in specs}}
    if not isinstance(recording, Mapping):
        for spec in specs:
            res = _safely(results[spec.name], keys[0], recording,
                          _uri(latest[spec.asset_key].get(keys[0])))
            yield dg.AssetCheckResult(
                passed=res.passed, metadata=res.metadata, severity=res.severity,
                description=res.description, asset_key=spec.asset_key, check_name=spec.name)
        return
    yield from _evaluations(context, recording, results, latest)


def _safely(result: Result, key: str, recording: Recording | Mapping[str, Recording],
            uri: str | None) -> dg.AssetCheckResult:
    """``result``, or a failed result naming the error (one check's crash, or a recording
    that cannot be reopened, must not keep the step's other checks from being recorded)."""
    try:
        rec = recording[key] if isinstance(recording, Mapping) else recording
        return result(key, rec, uri)
    except Exception as exc:
        return dg.AssetCheckResult(passed=False,
                                   metadata={"error": f"{type(exc).__name__}: {exc}"})


def _evaluations(context: dg.AssetCheckExecutionContext, recordings: Mapping[str, Recording],
                 results: Mapping[str, Result], latest: Mapping[dg.AssetKey, Mapping[str, Any]]
                 ) -> Iterator[Any]:
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluation,  # a result for a chosen partition: no public API yet
    )

    specs = list(context.check_specs)
    for key in context.op_execution_context.partition_keys:
        for spec in specs:
            target = latest[spec.asset_key].get(key)
            res = _safely(results[spec.name], key, recordings, _uri(target))
            yield AssetCheckEvaluation(
                asset_key=spec.asset_key, check_name=spec.name, passed=res.passed,
                metadata=res.metadata, target_materialization_data=_target(target),
                severity=res.severity, description=res.description, blocking=spec.blocking,
                partition=key)
    assets_def = context.op_execution_context.assets_def
    for spec in specs:  # every selected check's output, so that the step succeeds
        yield dg.Output(None, output_name=assets_def.get_output_name_for_asset_check_key(spec.key))


def round_trip_result(url: str, recording: Recording,
                      storage_options: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    """Passed when the archive at ``url`` reads back bit-exactly; else the differences."""
    kw: dict[str, Any] = {"storage_options": storage_options} if storage_options else {}
    try:
        back = Recording.from_file(url, lazy=True, **kw)  # compared a window at a time
    except _UNREADABLE as exc:
        return _unreadable(url, exc)
    problems = verify.diff_recordings(back, recording)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"uri": dg.MetadataValue.path(url), "problems": dg.MetadataValue.json(problems),
                  "channels_compared": recording.n_channels,
                  "events_compared": len(recording.events)})


def level0_result(url: str, recording: Recording,
                  storage_options: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    """Passed when every group's level 0 is within its stated bound; else the failing groups."""
    try:
        reports = verify.level0_reports(recording, url, storage_options or None)
    except _UNREADABLE as exc:
        return _unreadable(url, exc)
    failing = [r for r in reports if not r["passed"]]
    return dg.AssetCheckResult(
        passed=not failing,
        metadata={"uri": dg.MetadataValue.path(url), "groups": len(reports),
                  "channels_checked": sum(int(r.get("channels", 0)) for r in reports),
                  "failing": dg.MetadataValue.json(failing),
                  "reports": dg.MetadataValue.json(reports)})


def complete_result(url: str, recording: Recording,
                    storage_options: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    """Passed when the store carries every channel and exactly the Recording's events (an
    annotation-only recording: its events-only store); else what is missing or differs."""
    try:
        found = verify.missing_in_store(recording, url, storage_options or None)
    except _UNREADABLE as exc:
        return _unreadable(url, exc)
    ok = not (found["missing_channels"] or found["missing_events"]
              or found["unexpected_events"] or found["differing_event_columns"])
    return dg.AssetCheckResult(passed=ok, metadata={
        "uri": dg.MetadataValue.path(url),
        **{k: dg.MetadataValue.json(v) if isinstance(v, list) else v for k, v in found.items()}})


def build_checks() -> list[dg.AssetChecksDefinition]:
    """The asset checks of the archive and store assets (partitioned like their assets)."""
    with warnings.catch_warnings():  # partitioned checks are a Dagster "preview" feature
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build_checks()


def _build_checks() -> list[dg.AssetChecksDefinition]:
    def url_of(storage: PipelineStorage, asset: str, key: str, uri: str | None) -> str:
        """The output's URI: as its materialization recorded it, else where it goes."""
        o = storage.outputs(key)
        return uri or {"parquet_archive": o.parquet, "feather_archive": o.feather,
                       "zarr_store": o.store}[asset]

    # ``recording: Any``: a Recording, or key -> Recording in a batched run (see check_each);
    # each yields an AssetCheckResult per check, or one evaluation per partition and check in a
    # batched run.
    @dg.asset_check(asset="parquet_archive", additional_ins=_REC, partitions_def=RECORDINGS,
                    description="The Parquet archive reads back bit-exactly.")
    def parquet_round_trip(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
                           recording: Any) -> Any:
        yield from check_each(context, recording, {"parquet_round_trip": lambda key, rec, uri:
                          round_trip_result(url_of(storage, "parquet_archive", key, uri), rec,
                                            storage.storage_options)})

    @dg.asset_check(asset="feather_archive", additional_ins=_REC, partitions_def=RECORDINGS,
                    description="The Feather archive reads back bit-exactly.")
    def feather_round_trip(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
                           recording: Any) -> Any:
        yield from check_each(context, recording, {"feather_round_trip": lambda key, rec, uri:
                          round_trip_result(url_of(storage, "feather_archive", key, uri), rec,
                                            storage.storage_options)})

    def store_spec(name: str, description: str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(name, asset="zarr_store", additional_deps=["recording"],
                                 partitions_def=RECORDINGS, description=description)

    # The store's two checks run in one step: one load of the Recording, one step (one task
    # on Celery) fewer per run; each still records its own evaluation.
    @dg.multi_asset_check(specs=[
        store_spec("store_level0_within_bound",
                   "Level 0 matches the Recording within the bound in its attrs."),
        store_spec("store_complete",
                   "Every channel and event (bit-exact) of the Recording is in the store.")],
        ins=_REC, can_subset=True, description="The store's level 0 and its completeness.")
    def store_checks(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
                     recording: Any) -> Iterator[Any]:
        def url(key: str, uri: str | None) -> str:
            return url_of(storage, "zarr_store", key, uri)

        opts = storage.storage_options
        yield from check_each(context, recording, {
            "store_level0_within_bound": lambda key, rec, uri: level0_result(url(key, uri), rec,
                                                                             opts),
            "store_complete": lambda key, rec, uri: complete_result(url(key, uri), rec, opts)})

    return [parquet_round_trip, feather_round_trip, store_checks]
