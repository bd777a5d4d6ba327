"""Asset checks, one rule each, returning their evidence (the failing values) as metadata.

- the Parquet and the Feather archives read back bit-exactly as the canonical Recording;
- the store's level 0 matches the Recording within the bound its attrs state;
- no channel or event of the Recording is missing from the store, events compared bit-exactly
  (the archives' round-trip checks already list any missing channel or event). An
  annotation-only recording has an events-only store: its level-0 check checks 0 channels.

In a batched backfill run (several partitions, see :mod:`.assets`) Dagster would record one
check result without a partition; each check instead records one evaluation per partition
(with the partition's own materialization as its target), as single-partition runs do.
"""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

from biosigio_lib import BiosigIOError, Recording

from .. import verify
from .partitions import RECORDINGS
from .resources import PipelineStorage

__all__ = ["build_checks", "check_each", "complete_result", "level0_result",
           "round_trip_result"]

_REC = {"recording": dg.AssetIn("recording")}
#: A store that cannot be read fails its check (with the error as evidence), not the run.
_UNREADABLE = (BiosigIOError, KeyError, OSError, ValueError)


def _unreadable(url: str, exc: BaseException) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={
        "uri": dg.MetadataValue.path(url), "error": f"{type(exc).__name__}: {exc}"})


def _latest_uri(context: dg.AssetCheckExecutionContext, asset: str, key: str,
                fallback: str) -> str:
    """The URI the asset's latest materialization of partition ``key`` recorded."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1)
    for rec in records.records:
        mat = rec.asset_materialization
        uri = mat.metadata.get("uri") if mat else None
        if uri is not None:
            return str(uri.value)
    return fallback


def _target(context: dg.AssetCheckExecutionContext, asset: dg.AssetKey,
            key: str) -> Any:
    """The materialization of partition ``key`` a check evaluation refers to (None: none)."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,  # no public API yet
    )

    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[key]), limit=1).records
    if not records:
        return None
    rec = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=rec.storage_id, run_id=rec.event_log_entry.run_id, timestamp=rec.timestamp)


def check_each(context: dg.AssetCheckExecutionContext, recording: Any,
               result: Callable[[str, Recording], dg.AssetCheckResult]
               ) -> dg.AssetCheckResult | Iterator[Any]:
    """``result(key, recording)`` for the run's partition; in a batched run (``recording`` a
    mapping key -> Recording) one evaluation per partition, a failure to open one included."""
    if not isinstance(recording, Mapping):
        return result(context.op_execution_context.partition_key, recording)
    return _evaluations(context, recording, result)


def _evaluations(context: dg.AssetCheckExecutionContext, recordings: Mapping[str, Recording],
                 result: Callable[[str, Recording], dg.AssetCheckResult]) -> Iterator[Any]:
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluation,  # a result for a chosen partition: no public API yet
    )

    spec = context.check_specs[0]
    for key in context.op_execution_context.partition_keys:
        try:
            res = result(key, recordings[key])
        except Exception as exc:  # the recording cannot be reopened: this partition fails
            res = dg.AssetCheckResult(passed=False,
                                      metadata={"error": f"{type(exc).__name__}: {exc}"})
        yield AssetCheckEvaluation(
            asset_key=spec.asset_key, check_name=spec.name, passed=res.passed,
            metadata=res.metadata, target_materialization_data=_target(context, spec.asset_key,
                                                                       key),
            severity=res.severity, description=res.description, blocking=spec.blocking,
            partition=key)
    yield dg.Output(None)


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
    def url_of(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
               asset: str, key: str) -> str:
        o = storage.outputs(key)
        fallback = {"parquet_archive": o.parquet, "feather_archive": o.feather,
                    "zarr_store": o.store}[asset]
        return _latest_uri(context, asset, key, fallback)

    # ``recording: Any``: a Recording, or key -> Recording in a batched run (see check_each);
    # the return is an AssetCheckResult, or one evaluation per partition in a batched run.
    @dg.asset_check(asset="parquet_archive", additional_ins=_REC, partitions_def=RECORDINGS,
                    description="The Parquet archive reads back bit-exactly.")
    def parquet_round_trip(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
                           recording: Any) -> Any:
        return check_each(context, recording, lambda key, rec: round_trip_result(
            url_of(context, storage, "parquet_archive", key), rec, storage.storage_options))

    @dg.asset_check(asset="feather_archive", additional_ins=_REC, partitions_def=RECORDINGS,
                    description="The Feather archive reads back bit-exactly.")
    def feather_round_trip(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
                           recording: Any) -> Any:
        return check_each(context, recording, lambda key, rec: round_trip_result(
            url_of(context, storage, "feather_archive", key), rec, storage.storage_options))

    @dg.asset_check(asset="zarr_store", additional_ins=_REC, partitions_def=RECORDINGS,
                    description="Level 0 matches the Recording within the bound in its attrs.")
    def store_level0_within_bound(context: dg.AssetCheckExecutionContext,
                                  storage: PipelineStorage, recording: Any) -> Any:
        return check_each(context, recording, lambda key, rec: level0_result(
            url_of(context, storage, "zarr_store", key), rec, storage.storage_options))

    @dg.asset_check(asset="zarr_store", additional_ins=_REC, partitions_def=RECORDINGS,
                    description="Every channel and event (bit-exact) of the Recording is in "
                                "the store.")
    def store_complete(context: dg.AssetCheckExecutionContext, storage: PipelineStorage,
                       recording: Any) -> Any:
        return check_each(context, recording, lambda key, rec: complete_result(
            url_of(context, storage, "zarr_store", key), rec, storage.storage_options))

    return [parquet_round_trip, feather_round_trip, store_level0_within_bound, store_complete]
