"""The assets, one partition per recording: source -> Recording -> archives -> serving store.

Thin by design: each asset takes its resources, calls one step of
:mod:`biosigio_pipeline.steps` (which calls :mod:`biosigio_lib`) and returns metadata. The
store's ``code_version`` is the hash of the serving parameters, so new parameters mark every
store stale and nothing else.

The archives and the store are *batched* in backfills: their ``BackfillPolicy.multi_run``
lets one run build up to ``$BIOSIGIO_BACKFILL_BATCH`` partitions (a range of the partitions),
so the per-run overhead does not dominate small recordings. Their bodies loop over
``context.partition_keys`` (one key in the sensor's and the UI's single-partition runs, which
behave as before); each partition gets its own metadata. A partition that fails does not lose
the others: every partition is built, the built ones are recorded as materialized (with their
code and data versions), then the step fails naming the failed keys (``dg.Failure``), so a
retry of the backfill rebuilds only those.
"""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import dagster as dg

import biosigio_lib
from biosigio_lib import Recording

from .. import settings, steps
from .automation import store_rebuild_condition
from .partitions import RECORDINGS
from .resources import PipelineStorage, RecordingIOManager, SourceRoots

if TYPE_CHECKING:
    from biosigio_lib.serving import ServingParams


__all__ = ["ASSET_KEYS", "GROUP", "LIB_CODE_VERSION", "NO_PREVIEW", "build_assets",
           "build_batch", "build_each"]

GROUP = "biosigio"
#: Code version of the assets whose bytes depend only on the library (not on parameters).
LIB_CODE_VERSION = f"biosigio_lib-{biosigio_lib.__version__}"
NO_PREVIEW = "annotation-only recording: no signal channels, so no preview (events only)"
ASSET_KEYS = {name: dg.AssetKey(name) for name in
              ("source_recording", "recording", "parquet_archive", "feather_archive",
               "zarr_store")}


def _recording_metadata(rec: Recording) -> dict[str, Any]:
    s = steps.summarise(rec)
    return {
        "channels": s["channels"],
        "rates_hz": dg.MetadataValue.json(s["rates_hz"]),
        "grids": dg.MetadataValue.json(s["grids"]),
        "duration_s": s["duration_s"],
        "events": s["events"],
        "source_checksum": s["source_checksum"],
        "source_file": dg.MetadataValue.path(s["source_file"]),
    }


def _archive_metadata(storage: PipelineStorage, key: str, rec: Recording,
                      container: str) -> dict[str, Any]:
    out = storage.outputs(key)
    target = out.parquet if container == "parquet" else out.feather
    url = steps.write_archive(rec, target, container, storage.storage_options)
    return {"uri": dg.MetadataValue.path(url), "bytes": storage.size_of(url),
            "format": container, **_recording_metadata(rec)}


def _version_tags(context: dg.AssetExecutionContext, key: str, code_version: str,
                  upstream: dg.AssetKey | None) -> dict[str, str]:
    """The code/data version tags Dagster puts on a materialization of partition ``key``
    (from the ``upstream`` partition it read, if any), for one recorded by hand."""
    from dagster._core.definitions.data_version import (  # the tag names Dagster reads
        CODE_VERSION_TAG,
        DATA_VERSION_TAG,
        DEFAULT_DATA_VERSION,
        NULL_EVENT_POINTER,
        compute_logical_data_version,
        extract_data_version_from_entry,
        get_input_data_version_tag,
        get_input_event_pointer_tag,
    )

    if upstream is None:
        return {CODE_VERSION_TAG: code_version,
                DATA_VERSION_TAG: compute_logical_data_version(code_version, {}).value}
    record = context.instance.get_latest_data_version_record(upstream, False, key)
    version = (extract_data_version_from_entry(record.event_log_entry) if record else None)
    version = version or DEFAULT_DATA_VERSION
    return {CODE_VERSION_TAG: code_version,
            get_input_data_version_tag(upstream): version.value,
            get_input_event_pointer_tag(upstream):
                str(record.storage_id) if record else NULL_EVENT_POINTER,
            DATA_VERSION_TAG: compute_logical_data_version(code_version,
                                                           {upstream: version}).value}


def build_each(context: dg.AssetExecutionContext, recording: Any, code_version: str,
               build: Callable[[str, Recording], dict[str, Any]]) -> dg.MaterializeResult:
    """Run ``build(key, recording)`` (-> metadata) for every partition of the run.

    One partition (``recording`` a Recording): its metadata, as a plain asset would. Several
    (``recording`` a mapping key -> Recording, opened one at a time): each partition's own
    metadata; if any fails, the others are recorded as materialized and the step then fails
    with ``dg.Failure`` naming the failed keys and their errors.
    """
    keys = list(context.partition_keys)
    if not isinstance(recording, Mapping):
        return dg.MaterializeResult(metadata=build(keys[0], recording))
    return build_batch(context, keys, code_version, lambda key: build(key, recording[key]),
                       upstream=ASSET_KEYS["recording"])


def build_batch(context: dg.AssetExecutionContext, keys: list[str], code_version: str,
                build: Callable[[str], dict[str, Any]], *, upstream: dg.AssetKey | None,
                result: Callable[[list[str]], Any] = lambda _keys: dg.MaterializeResult()
                ) -> Any:
    """``build(key)`` (-> metadata) for each of ``keys`` (a run over a partition range), each
    partition with its own metadata; then ``result(keys)`` (the step's output). If any fails,
    the others are recorded as materialized (with their code/data versions from ``upstream``)
    and the step fails with ``dg.Failure`` naming the failed keys and their errors."""
    # a generator of events (Dagster accepts one returned by a plain function), typed as the
    # asset's result so the assets keep their `-> MaterializeResult` annotation
    return cast("dg.MaterializeResult",
                _build_batch(context, keys, code_version, build, upstream, result))


def _build_batch(context: dg.AssetExecutionContext, keys: list[str], code_version: str,
                 build: Callable[[str], dict[str, Any]], upstream: dg.AssetKey | None,
                 result: Callable[[list[str]], Any]) -> Iterator[Any]:
    built: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for key in keys:
        try:
            built[key] = build(key)
        except Exception as exc:  # one bad recording must not lose the others' outputs
            failed[key] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"{context.asset_key.to_user_string()} {key} failed: "
                              f"{failed[key]}")
    if failed:  # yielded (not context.log_event, which a failing step drops), then fail
        for key, meta in built.items():
            yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key,
                                          metadata=meta,
                                          tags=_version_tags(context, key, code_version,
                                                             upstream))
        raise dg.Failure(
            description=f"{len(failed)} of {len(keys)} partition(s) failed: "
                        f"{', '.join(sorted(failed))}; the other {len(built)} are materialized",
            metadata={"failed_partitions": dg.MetadataValue.json(failed)})
    _add_partition_metadata(context, built)
    yield result(keys)


def _add_partition_metadata(context: dg.AssetExecutionContext,
                            metadata: dict[str, dict[str, Any]]) -> None:
    """``context.add_asset_metadata(meta, partition_key=key)`` for each partition, without
    its per-call listing of the dynamic partitions (~30 ms a call on SQLite): the keys here
    are the run's own. Falls back to the public call if Dagster's internals change."""
    step = getattr(context.op_execution_context, "_step_execution_context", None)
    acc = getattr(step, "_metadata_accumulator", None)
    if acc is None or not hasattr(acc, "with_additional_asset_metadata"):
        for key, meta in metadata.items():
            context.add_asset_metadata(meta, partition_key=key)
        return
    for key, meta in metadata.items():
        acc = acc.with_additional_asset_metadata(asset_key=context.asset_key, metadata=meta,
                                                 partition_key=key)
    step._metadata_accumulator = acc  # type: ignore[union-attr]


def build_assets(params: "ServingParams", batch: int = 1) -> list[dg.AssetsDefinition]:
    """The five assets; ``params`` are fixed here and their hash is the store's version;
    a backfill builds up to ``batch`` archives or stores per run."""
    with warnings.catch_warnings():  # `backfill_policy` is a Dagster "beta" parameter
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _build_assets(params, batch)


def _build_assets(params: "ServingParams", batch: int) -> list[dg.AssetsDefinition]:
    store_version = params.version()
    # Every asset builds a range of partitions in one run: a backfill's runs (up to ``batch``
    # partitions each) and the sensor's runs over the small recordings one tick discovered.
    batched = dg.BackfillPolicy.multi_run(max_partitions_per_run=max(1, batch))

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              kinds={"file"}, backfill_policy=batched)
    def source_recording(context: dg.AssetExecutionContext, sources: SourceRoots,
                         storage: PipelineStorage) -> dg.MaterializeResult:
        """The discovered source: its files, total size and SHA-256 (its data version; in a
        run over several partitions, each one's ``source_checksum`` metadata)."""

        keys = list(context.partition_keys)
        find = sources.find_many(keys) if len(keys) > 1 else sources.find

        def build(key: str) -> dict[str, Any]:
            src = find(key)
            url = steps.write_manifest(src, storage.outputs(src.key).manifest,
                                       storage.storage_options)
            return {"uri": dg.MetadataValue.path(src.url),
                    "manifest": dg.MetadataValue.path(url), "format": src.format,
                    "files": len(src.files), "bytes": src.size,
                    "source_checksum": str(src.checksum),
                    "entities": dg.MetadataValue.json(dict(src.entities))}

        if len(keys) > 1:
            return build_batch(context, keys, LIB_CODE_VERSION, build, upstream=None)
        meta = build(keys[0])
        return dg.MaterializeResult(metadata=meta,
                                    data_version=dg.DataVersion(meta["source_checksum"]))

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              deps=[source_recording], io_manager_key="recording_io", kinds={"python"},
              backfill_policy=batched)
    def recording(context: dg.AssetExecutionContext, storage: PipelineStorage,
                  sources: SourceRoots,
                  recording_io: dg.ResourceParam[RecordingIOManager]) -> dg.Output[Any]:
        """The canonical Recording, imported from the source and stamped with its lineage.
        Over several partitions, each is imported and persisted in turn (a reference each,
        so memory stays bounded) and the output is the lazy mapping key -> Recording."""

        def load(key: str) -> Recording:
            src = steps.read_manifest(storage.outputs(key).manifest, storage.storage_options)
            return steps.load_source(src, sources.storage_options or None)

        def build(key: str) -> dict[str, Any]:
            rec = load(key)
            return {**_recording_metadata(rec), **recording_io.persist(key, rec)}

        keys = list(context.partition_keys)
        if len(keys) > 1:
            return build_batch(context, keys, LIB_CODE_VERSION, build,
                               upstream=ASSET_KEYS["source_recording"],
                               result=lambda ks: dg.Output(recording_io.lazy(ks)))
        rec = load(keys[0])
        return dg.Output(rec, metadata=_recording_metadata(rec))

    # ``recording: Any``: a Recording, or key -> Recording in a batched run (see build_each).
    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              kinds={"parquet"}, backfill_policy=batched)
    def parquet_archive(context: dg.AssetExecutionContext, storage: PipelineStorage,
                        recording: Any) -> dg.MaterializeResult:
        """Lossless Parquet archive (biosigio-tabular), naming its source file and checksum."""
        return build_each(context, recording, LIB_CODE_VERSION,
                          lambda key, rec: _archive_metadata(storage, key, rec, "parquet"))

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              kinds={"arrow"}, backfill_policy=batched)
    def feather_archive(context: dg.AssetExecutionContext, storage: PipelineStorage,
                        recording: Any) -> dg.MaterializeResult:
        """Lossless Feather (Arrow IPC) archive, naming its source file and checksum."""
        return build_each(context, recording, LIB_CODE_VERSION,
                          lambda key, rec: _archive_metadata(storage, key, rec, "feather"))

    def store_metadata(context: dg.AssetExecutionContext, storage: PipelineStorage, key: str,
                       recording: Recording) -> dict[str, Any]:
        out = storage.outputs(key)
        url = steps.write_store(recording, out.store, params, storage.storage_options)
        meta: dict[str, Any] = {"uri": dg.MetadataValue.path(url), "bytes": storage.size_of(url),
                                "params_version": store_version,
                                "dtype": params.dtype, **_recording_metadata(recording)}
        if viewer := settings.viewer_url():  # the store's page in `biosigio-pipeline view <root>`
            meta["viewer"] = dg.MetadataValue.url(steps.viewer_link(viewer, storage.root, url))
        if recording.n_channels == 0:  # annotation-only: an events-only store, nothing to draw
            meta["preview"] = dg.MetadataValue.md(f"_{NO_PREVIEW}_")
            return meta
        try:
            png = steps.write_preview(url, out.preview, storage.storage_options)
        except (ValueError, KeyError, OSError) as exc:  # a preview never fails the store
            context.log.warning(f"no preview for {url}: {exc}")
        else:
            from biosigio_lib.preview import preview_markdown

            meta["preview"] = dg.MetadataValue.md(preview_markdown(png, key))
            meta["preview_uri"] = dg.MetadataValue.path(out.preview)
        return meta

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=store_version,
              kinds={"zarr"}, metadata={"serving_params": dg.MetadataValue.json(params.to_dict())},
              backfill_policy=batched, automation_condition=store_rebuild_condition())
    def zarr_store(context: dg.AssetExecutionContext, storage: PipelineStorage,
                   recording: Any) -> dg.MaterializeResult:
        """Zarr v3 serving store (level 0 + min/max pyramid + events) built with the serving
        params; an annotation-only recording gets an events-only store and no preview."""
        return build_each(context, recording, store_version,
                          lambda key, rec: store_metadata(context, storage, key, rec))

    return [source_recording, recording, parquet_archive, feather_archive, zarr_store]
