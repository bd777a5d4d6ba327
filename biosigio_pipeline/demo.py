"""The main job, runnable on a fresh machine: sample data -> sensor -> runs -> outputs.

``biosigio-pipeline demo`` writes the sample dataset under ``.biosigio/sources`` (once),
evaluates the sensor on a persistent Dagster instance (SQLite under
``.biosigio/dagster_home``), registers the partitions it finds, executes the requested runs in
this process with a progress bar, and prints where everything is and how to open the UI on the
same instance.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from . import settings

__all__ = ["run_demo"]

_QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


def run_demo(*, scale: float = 1.0, fresh: bool = False, out: TextIO | None = None) -> int:
    """Run the whole pipeline on the sample dataset; returns a process exit code."""
    out = out or sys.stdout
    t_start = time.perf_counter()
    state = settings.state_dir()
    sources = state / "sources"
    storage = state / "storage"
    home = settings.dagster_home()
    if fresh:
        import shutil

        for folder in (sources, storage, home):
            shutil.rmtree(folder, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"  # default storage: SQLite under this folder
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)

    if not any(sources.glob("*")):
        from biosigio_lib.samples import make_sample_dataset

        _say(out, f"1/4 writing the sample dataset to {sources}")
        files = make_sample_dataset(sources, seconds_scale=scale)
        _say(out, f"    {len(files)} recordings (BIDS EDF+, WFDB, XDF)")
    else:
        _say(out, f"1/4 using the sample dataset in {sources}")

    _say(out, "2/4 loading the Dagster definitions and instance")
    import dagster as dg

    from .definitions import build_defs
    from .defs.jobs import CONVERT_JOB
    from .defs.partitions import RECORDINGS_NAME
    from .defs.sensors import build_sensor

    defs = build_defs(storage_root=str(storage), source_roots=[str(sources)])
    instance = dg.DagsterInstance.get()

    _say(out, "3/4 scanning the sources (the recordings_sensor, one tick)")
    # one run per recording here, for the progress lines (the daemon's sensor batches them)
    recordings_sensor = build_sensor(batch=1)
    resources = {"sources": (defs.resources or {})["sources"]}
    with dg.build_sensor_context(instance=instance, resources=resources,
                                 definitions=defs) as ctx:
        result = recordings_sensor(ctx)
    if not isinstance(result, dg.SensorResult):
        raise TypeError(f"recordings_sensor returned {type(result).__name__}, not a SensorResult")
    for preq in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(RECORDINGS_NAME, list(preq.partition_keys or []))
    runs = list(result.run_requests or [])
    keys = instance.get_dynamic_partitions(RECORDINGS_NAME)
    _say(out, f"    {len(keys)} partitions registered; {len(runs)} to convert"
              + ("" if runs else " (everything is up to date; use --fresh to redo)"))

    _say(out, f"4/4 converting (archive: Parquet + Feather; serving: Zarr) into {storage}")
    job = defs.resolve_job_def(CONVERT_JOB)
    failed = []
    for i, req in enumerate(runs, start=1):
        t0 = time.perf_counter()
        res = job.execute_in_process(partition_key=req.partition_key, instance=instance,
                                     tags=dict(req.tags), run_config=_QUIET,
                                     raise_on_error=False)
        checks = [e.asset_check_evaluation_data for e in res.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        ok_checks = sum(bool(c.passed) for c in checks)
        errors = [c for c in checks if not c.passed and c.severity != dg.AssetCheckSeverity.WARN]
        status = "ok" if res.success and not errors else "FAILED"
        if status != "ok":
            failed.append(req.partition_key)
        bar = "#" * round(20 * i / len(runs))
        _say(out, f"    [{bar:<20}] {i}/{len(runs)} {req.partition_key:<40} {status} "
                  f"({time.perf_counter() - t0:.1f} s, checks {ok_checks}/{len(checks)})")

    _say(out)
    _say(out, f"Done in {time.perf_counter() - t_start:.1f} s. Outputs:")
    for sub in ("archive/parquet", "archive/feather", "serving", "previews"):
        _say(out, f"  {storage / sub}")
    _say(out, "Open the UI on the same instance (graph, partitions, metadata, previews):")
    cwd = Path.cwd()
    if (cwd / "workspace.yaml").is_file():  # the repository: dg reads [tool.dg]
        _say(out, f"  cd {cwd} && DAGSTER_HOME={home} uv run dg dev")
        _say(out, f"  (or: DAGSTER_HOME={home} uv run dagster dev -w workspace.yaml)")
    else:
        _say(out, f"  cd {cwd} && DAGSTER_HOME={home} uv run dagster dev "
                  "-m biosigio_pipeline.definitions")
    if failed:
        _say(out, f"{len(failed)} recording(s) failed: {failed}")
        return 1
    return 0
