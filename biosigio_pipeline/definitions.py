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
from .defs.automation import build_automation_sensor
from .defs.checks import build_checks
from .defs.jobs import build_jobs
from .defs.resources import PipelineStorage, RecordingIOManager, SourceRoots
from .defs.schedules import build_schedule
from .defs.sensors import build_sensor, build_split_sensor

if TYPE_CHECKING:
    from biosigio_lib.serving import ServingParams

__all__ = ["build_defs", "build_executor", "defs"]

def build_executor(name: str | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``name`` or ``$BIOSIGIO_EXECUTOR``: in-process by default (the
    steps share the decoded Recording), ``multiprocess``, or ``celery`` (steps on Celery
    workers; broker and backend are read from the environment when a run starts)."""
    name = name or settings.executor_name()
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        from dagster_celery import celery_executor  # the optional extra `deploy`

        return celery_executor.configured(
            {"broker": {"env": "BIOSIGIO_CELERY_BROKER"},
             "backend": {"env": "BIOSIGIO_CELERY_BACKEND"}}, name="celery")
    return dg.in_process_executor


def build_defs(*, storage_root: str | None = None, source_roots: Sequence[str] | None = None,
               serving_params: ServingParams | None = None,
               storage_options: Mapping[str, Any] | None = None,
               source_options: Mapping[str, Any] | None = None,
               max_per_tick: int = 25,
               backfill_batch: int | None = None,
               executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Assemble the definitions; unset arguments come from :mod:`biosigio_pipeline.settings`."""
    params = serving_params if serving_params is not None else settings.load_serving_params()
    root = storage_root or settings.default_storage_root()
    roots = list(source_roots) if source_roots is not None else settings.default_source_roots()
    so = dict(storage_options if storage_options is not None
              else settings.json_options("BIOSIGIO_STORAGE_OPTIONS"))
    source_so = dict(source_options if source_options is not None
                     else settings.json_options("BIOSIGIO_SOURCE_OPTIONS"))
    batch = backfill_batch or settings.backfill_batch()
    settings.batch_event_writes()  # in every process that loads the code location
    jobs = build_jobs()
    return dg.Definitions(
        assets=build_assets(params, batch),
        asset_checks=build_checks(),
        jobs=jobs,
        sensors=[build_sensor(settings.sensor_interval(), settings.heavy_bytes(), batch),
                 build_split_sensor(jobs[0]),
                 build_automation_sensor(settings.automation_interval())],
        schedules=[build_schedule(params.version())],
        resources={
            "storage": PipelineStorage(root=root, storage_options=so),
            "sources": SourceRoots(roots=roots, storage_options=source_so,
                                   max_per_tick=max_per_tick),
            "recording_io": RecordingIOManager(root=root, storage_options=so,
                                               source_options=source_so),
        },
        executor=executor or build_executor(),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location's definitions, from the environment and project config."""
    return build_defs()
