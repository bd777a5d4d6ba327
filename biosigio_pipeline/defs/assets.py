"""The assets, one partition per recording: source -> Recording -> archives -> serving store.

Thin by design: each asset takes its resources, calls one step of
:mod:`biosigio_pipeline.steps` (which calls :mod:`biosigio_lib`) and returns metadata. The
store's ``code_version`` is the hash of the serving parameters, so new parameters mark every
store stale and nothing else.
"""

# No ``from __future__ import annotations`` here: Dagster reads these annotations at runtime
# (the context type, resource and input types), so they must be real objects, not strings.

from typing import TYPE_CHECKING, Any

import dagster as dg

import biosigio_lib
from biosigio_lib import Recording

from .. import settings, steps
from .partitions import RECORDINGS
from .resources import PipelineStorage, SourceRoots

if TYPE_CHECKING:
    from biosigio_lib.serving import ServingParams


__all__ = ["ASSET_KEYS", "GROUP", "LIB_CODE_VERSION", "NO_PREVIEW", "build_assets"]

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


def _archive(context: dg.AssetExecutionContext, storage: PipelineStorage, rec: Recording,
             container: str) -> dg.MaterializeResult:
    out = storage.outputs(context.partition_key)
    target = out.parquet if container == "parquet" else out.feather
    url = steps.write_archive(rec, target, container, storage.storage_options)
    return dg.MaterializeResult(metadata={
        "uri": dg.MetadataValue.path(url), "bytes": storage.size_of(url),
        "format": container, **_recording_metadata(rec)})


def build_assets(params: "ServingParams") -> list[dg.AssetsDefinition]:
    """The five assets; ``params`` are fixed here and their hash is the store's version."""
    store_version = params.version()

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              kinds={"file"})
    def source_recording(context: dg.AssetExecutionContext, sources: SourceRoots,
                         storage: PipelineStorage) -> dg.MaterializeResult:
        """The discovered source: its files, total size and SHA-256 (its data version)."""
        src = sources.find(context.partition_key)
        url = steps.write_manifest(src, storage.outputs(src.key).manifest,
                                   storage.storage_options)
        return dg.MaterializeResult(
            metadata={"uri": dg.MetadataValue.path(src.url), "manifest": dg.MetadataValue.path(url),
                      "format": src.format, "files": len(src.files), "bytes": src.size,
                      "source_checksum": str(src.checksum),
                      "entities": dg.MetadataValue.json(dict(src.entities))},
            data_version=dg.DataVersion(str(src.checksum)))

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              deps=[source_recording], io_manager_key="recording_io", kinds={"python"})
    def recording(context: dg.AssetExecutionContext, storage: PipelineStorage,
                  sources: SourceRoots) -> dg.Output[Recording]:
        """The canonical Recording, imported from the source and stamped with its lineage."""
        src = steps.read_manifest(storage.outputs(context.partition_key).manifest,
                                  storage.storage_options)
        rec = steps.load_source(src, sources.storage_options or None)
        return dg.Output(rec, metadata=_recording_metadata(rec))

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              kinds={"parquet"})
    def parquet_archive(context: dg.AssetExecutionContext, storage: PipelineStorage,
                        recording: Recording) -> dg.MaterializeResult:
        """Lossless Parquet archive (biosigio-tabular), naming its source file and checksum."""
        return _archive(context, storage, recording, "parquet")

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=LIB_CODE_VERSION,
              kinds={"arrow"})
    def feather_archive(context: dg.AssetExecutionContext, storage: PipelineStorage,
                        recording: Recording) -> dg.MaterializeResult:
        """Lossless Feather (Arrow IPC) archive, naming its source file and checksum."""
        return _archive(context, storage, recording, "feather")

    @dg.asset(partitions_def=RECORDINGS, group_name=GROUP, code_version=store_version,
              kinds={"zarr"}, metadata={"serving_params": dg.MetadataValue.json(params.to_dict())})
    def zarr_store(context: dg.AssetExecutionContext, storage: PipelineStorage,
                   recording: Recording) -> dg.MaterializeResult:
        """Zarr v3 serving store (level 0 + min/max pyramid + events) built with the serving
        params; an annotation-only recording gets an events-only store and no preview."""
        out = storage.outputs(context.partition_key)
        url = steps.write_store(recording, out.store, params, storage.storage_options)
        meta: dict[str, Any] = {"uri": dg.MetadataValue.path(url), "bytes": storage.size_of(url),
                                "params_version": store_version,
                                "dtype": params.dtype, **_recording_metadata(recording)}
        if viewer := settings.viewer_url():  # the store's page in `biosigio-pipeline view <root>`
            meta["viewer"] = dg.MetadataValue.url(steps.viewer_link(viewer, storage.root, url))
        if recording.n_channels == 0:  # annotation-only: an events-only store, nothing to draw
            meta["preview"] = dg.MetadataValue.md(f"_{NO_PREVIEW}_")
            return dg.MaterializeResult(metadata=meta)
        try:
            png = steps.write_preview(url, out.preview, storage.storage_options)
        except (ValueError, KeyError, OSError) as exc:  # a preview never fails the store
            context.log.warning(f"no preview for {url}: {exc}")
        else:
            from biosigio_lib.preview import preview_markdown

            meta["preview"] = dg.MetadataValue.md(preview_markdown(png, context.partition_key))
            meta["preview_uri"] = dg.MetadataValue.path(out.preview)
        return dg.MaterializeResult(metadata=meta)

    return [source_recording, recording, parquet_archive, feather_archive, zarr_store]
