"""Overhead of a batched Dagster backfill of the serving stores against the library directly.

Source: N small EDF+ recordings (default 500; 4 channels x 10 s x 256 Hz, one annotation),
copies of one file under ``bench/_work/backfill_<N>/sources/`` (written once, not timed).
Untimed setup, as a first build would leave it: every recording's manifest and canonical
reference (``steps.write_manifest``, ``write_canonical``), a store built with the default
serving parameters, and the ``recording`` and ``zarr_store`` materializations recorded in a
persistent SQLite Dagster instance (``DagsterInstance.local_temp``; ``--memory``: an
in-memory one, the floor of Dagster's own cost; ``--postgres URL``: a PostgreSQL database, as
the deployment uses, through dagster-postgres's storage or, with ``--pooled``, the pooled
storage of ``deploy/dagster.yaml``). The definitions set ``DAGSTER_EVENT_BATCH_SIZE`` as the
code location does (export ``DAGSTER_EVENT_BATCH_SIZE=0`` to measure without). Then, for each
repeat,
new serving parameters (another ``chunk_seconds``) and, in this process, timed:

- ``direct``: for every recording, reopen the canonical Recording, write the store and its
  preview (``steps.read_canonical``, ``write_store``, ``write_preview``) in one loop;
- ``direct+checks``: the same plus what the two store checks compute (``verify.level0_reports``,
  ``verify.missing_in_store``);
- ``dagster B=<n>``: :func:`biosigio_pipeline.backfill.backfill_stores`: the stale stores
  rebuilt by in-process runs of up to n partitions each (partition ranges, as the backfill
  daemon launches them under the store's ``BackfillPolicy.multi_run``), without the checks;
- ``dagster+checks B=<n>``: the same job with its two checks (what ``backfill-stores`` runs).

Overhead = (dagster - direct) / direct, each pair compared like for like, in wall time and
in this process's CPU time (less sensitive to other jobs on a shared machine). Run:
``uv run python bench/bench_backfill.py [--n 500] [--batch 25,50] [--repeat 2] [--memory |
--postgres URL [--pooled]]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _harness import WORK  # noqa: E402

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _edf(path: Path) -> None:
    """One small EDF+ file: 4 channels x 10 s x 256 Hz, an annotation."""
    import numpy as np
    import pyedflib

    fs, n_ch, seconds = 256, 4, 10
    rng = np.random.default_rng(0)
    t = np.arange(fs * seconds) / fs
    data = [np.sin(2 * np.pi * (5 + i) * t) * 50 + rng.standard_normal(t.size) for i in
            range(n_ch)]
    w = pyedflib.EdfWriter(str(path), n_ch, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([{"label": f"EEG{i + 1}", "dimension": "uV", "sample_frequency": fs,
                         "physical_max": 100.0, "physical_min": -100.0, "digital_max": 32767,
                         "digital_min": -32768} for i in range(n_ch)])
    w.writeSamples([np.ascontiguousarray(d) for d in data])
    w.writeAnnotation(2.0, 1.0, "marker")
    w.close()


def _instance(home: Path, memory: bool, postgres: str | None, pooled: bool = False) -> Any:
    """The Dagster instance: in memory, SQLite files under ``home``, or a PostgreSQL database
    (``postgres``: a SQLAlchemy URL such as ``postgresql+psycopg2://user@host:port/db``),
    through dagster-postgres's storage or, ``pooled``, the deployment's pooled one."""
    import dagster as dg

    if memory:
        return dg.DagsterInstance.ephemeral()
    if postgres:
        storage = ("  custom:\n    module: biosigio_pipeline.pg_storage\n"
                   "    class: PooledPostgresStorage\n    config:\n" if pooled else
                   "  postgres:\n")
        (home / "dagster.yaml").write_text(
            f"telemetry:\n  enabled: false\nstorage:\n{storage}"
            f"{'      ' if pooled else '    '}postgres_url: {postgres}\n")
        return dg.DagsterInstance.from_config(str(home))
    return dg.DagsterInstance.local_temp(str(home))


def setup(n: int, work: Path, memory: bool = False, postgres: str | None = None,
          pooled: bool = False) -> tuple[Any, list[str], str, str]:
    """Sources, canonical references, first stores and their records (untimed)."""
    import dagster as dg

    from biosigio_lib.discovery import checksum, list_sources
    from biosigio_lib.serving import ServingParams
    from biosigio_pipeline import steps

    if work.exists():
        shutil.rmtree(work)
    src_dir = work / "sources" / "bench"
    src_dir.mkdir(parents=True)
    _edf(src_dir / "rec_00000.edf")
    for i in range(1, n):
        shutil.copyfile(src_dir / "rec_00000.edf", src_dir / f"rec_{i:05d}.edf")
    storage = str(work / "storage")
    home = work / "dagster_home"
    home.mkdir()
    instance = _instance(home, memory, postgres, pooled)
    params = ServingParams()
    sources = [replace(s, checksum=checksum(s)) for s in list_sources(str(work / "sources"))]
    keys = [s.key for s in sources]
    instance.add_dynamic_partitions("recordings", keys)
    for src in sources:
        out = steps.Outputs(storage, src.key)
        steps.write_manifest(src, out.manifest)
        rec = steps.load_source(src)
        steps.write_canonical(rec, out.canonical)
        url = steps.write_store(rec, out.store, params)
        steps.write_preview(url, out.preview)
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "recording", partition=src.key, tags={"dagster/code_version": "setup",
                                                  "dagster/data_version": str(src.checksum)}))
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "zarr_store", partition=src.key, metadata={"uri": dg.MetadataValue.path(url)},
            tags={"dagster/code_version": params.version()}))
    return instance, keys, storage, str(work / "sources")


def direct(keys: list[str], storage: str, params: Any, checks: bool) -> tuple[float, float]:
    """The library directly, one loop over the recordings; returns wall and CPU seconds."""
    from biosigio_pipeline import steps, verify

    t0, c0 = time.perf_counter(), time.process_time()
    for key in keys:
        out = steps.Outputs(storage, key)
        rec = steps.read_canonical(out.canonical)
        url = steps.write_store(rec, out.store, params)
        steps.write_preview(url, out.preview)
        if checks:
            assert all(r["passed"] for r in verify.level0_reports(rec, url))
            assert not verify.missing_in_store(rec, url)["missing_channels"]
    return time.perf_counter() - t0, time.process_time() - c0


def dagster_backfill(instance: Any, keys: list[str], storage: str, sources: str, params: Any,
                     batch: int, checks: bool) -> tuple[float, float, int]:
    """The stale stores rebuilt by batched in-process runs; returns wall and CPU seconds
    and the number of runs."""
    import dagster as dg

    from biosigio_pipeline import backfill
    from biosigio_pipeline.definitions import build_defs

    defs = build_defs(storage_root=storage, source_roots=[sources], serving_params=params,
                      backfill_batch=batch)
    if not checks:  # the same store-only job without its checks
        job = dg.define_asset_job(backfill.STORES_JOB,
                                  selection=dg.AssetSelection.assets("zarr_store").without_checks())
        defs = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job],
                              resources=defs.resources, executor=defs.executor)
    runs0 = len(instance.get_runs(limit=100000))
    t0, c0 = time.perf_counter(), time.process_time()
    done = backfill.backfill_stores(defs, instance, params.version(), batch_size=batch)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(done) == len(keys) and all(done.values()), "some stores failed"
    return wall, cpu, len(instance.get_runs(limit=100000)) - runs0


def main(argv: list[str] | None = None) -> int:
    """Set up once, then time the direct loop and the batched backfill per repeat."""
    from biosigio_lib.serving import ServingParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="recordings (default 500)")
    ap.add_argument("--batch", default="25,50", help="partitions per run, comma-separated")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (new params each)")
    ap.add_argument("--no-checks", action="store_true", help="skip the with-checks pairs")
    ap.add_argument("--memory", action="store_true",
                    help="an in-memory Dagster instance instead of SQLite files (a floor)")
    ap.add_argument("--postgres", metavar="URL",
                    help="a PostgreSQL instance (SQLAlchemy URL of an empty database; the "
                         "deployment's storage) instead of SQLite files")
    ap.add_argument("--pooled", action="store_true",
                    help="with --postgres: the pooled storage of deploy/dagster.yaml "
                         "(biosigio_pipeline.pg_storage) instead of dagster-postgres's own")
    args = ap.parse_args(argv)
    batches = [int(b) for b in args.batch.split(",")]
    work = WORK / f"backfill_{args.n}"
    t0 = time.perf_counter()
    instance, keys, storage, sources = setup(args.n, work, args.memory, args.postgres,
                                            args.pooled)
    print(f"setup: {len(keys)} recordings in {time.perf_counter() - t0:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    modes = [False] if args.no_checks else [False, True]
    version = 0
    seen: dict[tuple[bool, int], list[tuple[float, float]]] = {}
    for r in range(args.repeat):
        for checks in modes:
            for batch in batches:
                version += 1
                params = ServingParams.from_dict({**ServingParams().to_dict(),
                                                  "chunk_seconds": 1.0 + version})
                load = os.getloadavg()[0]
                a, a_cpu = direct(keys, storage, params, checks)
                b, b_cpu, runs = dagster_backfill(instance, keys, storage, sources, params,
                                                  batch, checks)
                seen.setdefault((checks, batch), []).append(((b - a) / a, (b_cpu - a_cpu) / a_cpu))
                label = "+checks" if checks else ""
                print(f"round {r + 1} B={batch:>3}{label:8s} wall: direct {a:7.2f} s, dagster "
                      f"{b:7.2f} s in {runs} runs, overhead {(b - a) / a:+6.1%}; CPU: direct "
                      f"{a_cpu:7.2f} s, dagster {b_cpu:7.2f} s, overhead "
                      f"{(b_cpu - a_cpu) / a_cpu:+6.1%} (load {load:.2f} -> "
                      f"{os.getloadavg()[0]:.2f})", flush=True)
    if args.repeat > 1:  # single rounds swing with the machine: the median is the figure
        for (checks, batch), ovh in seen.items():
            wall, cpu = (statistics.median(o[i] for o in ovh) for i in (0, 1))
            print(f"median of {len(ovh)} rounds, B={batch}{' +checks' if checks else ''}: "
                  f"overhead wall {wall:+.1%}, CPU {cpu:+.1%}")
    instance.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
