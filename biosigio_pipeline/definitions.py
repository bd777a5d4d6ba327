"""The code location: ``defs`` (loaded by ``workspace.yaml``), built late by :func:`build_defs`.

Settings (storage root, source roots, serving parameters) are read when the definitions load,
not when a module is imported; the serving parameters' hash becomes the store's code_version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from . import settings
from .defs.assets import build_assets
from .defs.checks import build_checks
from .defs.jobs import build_jobs
from .defs.resources import PipelineStorage, RecordingIOManager, SourceRoots
from .defs.schedules import build_schedule
from .defs.sensors import recordings_sensor

if TYPE_CHECKING:
    from biosigio_lib.serving import ServingParams

__all__ = ["build_defs", "defs"]


def build_defs(*, storage_root: str | None = None, source_roots: Sequence[str] | None = None,
               serving_params: ServingParams | None = None,
               storage_options: Mapping[str, Any] | None = None,
               source_options: Mapping[str, Any] | None = None,
               max_per_tick: int = 25) -> dg.Definitions:
    """Assemble the definitions; unset arguments come from :mod:`biosigio_pipeline.settings`."""
    params = serving_params if serving_params is not None else settings.load_serving_params()
    root = storage_root or settings.default_storage_root()
    roots = list(source_roots) if source_roots is not None else settings.default_source_roots()
    so = dict(storage_options or {})
    return dg.Definitions(
        assets=build_assets(params),
        asset_checks=build_checks(),
        jobs=build_jobs(),
        sensors=[recordings_sensor],
        schedules=[build_schedule(params.version())],
        resources={
            "storage": PipelineStorage(root=root, storage_options=so),
            "sources": SourceRoots(roots=roots, storage_options=dict(source_options or {}),
                                   max_per_tick=max_per_tick),
            "recording_io": RecordingIOManager(root=root, storage_options=so,
                                               source_options=dict(source_options or {})),
        },
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location's definitions, from the environment and project config."""
    return build_defs()
