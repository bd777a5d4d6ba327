"""Per-partition overhead of the Dagster pipeline against calling the library directly.

Source: a size-M recording (64 ch x 600 s x 1000 Hz EEG, the harness's array) written once as
an EDF+ file with pyedflib (cached under the bench work dir; not timed). Every op runs in a
fresh process (``bench/_harness.py``):

- ``direct``: checksum + import + Parquet + Feather + Zarr + preview (what ``convert`` does);
- ``direct_verified``: ``direct`` plus what the checks do (both archives read back and
  compared bit for bit, level-0 verification, store inventory);
- ``pipeline_assets``: the five assets of one partition materialized by Dagster (in process,
  ephemeral instance), no checks: adds the canonical Arrow copy and Dagster's orchestration;
- ``pipeline_full``: the ``convert_recording`` job with its four checks.

Run: ``uv run python bench/bench_pipeline.py [S|M|L] [--repeat N]``; writes
``bench/results_pipeline.md``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _harness import SIZES, WORK, Op, dataset_file, measure, table  # noqa: E402

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def source_file(size: str) -> Path:
    """The size's recording as an EDF+ file (written once, then reused by every process)."""
    import numpy as np

    path = WORK / f"pipeline_src_{size}" / "bench" / f"rec_{size}.edf"
    if path.exists():
        return path
    import pyedflib

    n_ch, _, fs, kind = SIZES[size]
    data = np.load(dataset_file(size))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp.edf")
    w = pyedflib.EdfWriter(str(tmp), n_ch, file_type=pyedflib.FILETYPE_EDFPLUS)
    lim = float(np.ceil(np.abs(data).max() * 1.05))
    w.setSignalHeaders([{"label": f"{kind}{i + 1:03d}", "dimension": "uV",
                         "sample_frequency": fs, "physical_max": lim, "physical_min": -lim,
                         "digital_max": 32767, "digital_min": -32768} for i in range(n_ch)])
    w.writeSamples([np.ascontiguousarray(row) for row in data])
    for t in range(10, int(data.shape[1] / fs), 30):
        w.writeAnnotation(float(t), 1.0, f"marker {t}")
    w.close()
    os.replace(tmp, path)
    return path


def _source(ctx: Any) -> Any:
    from biosigio_lib.discovery import list_sources

    root = source_file(ctx.size).parent.parent
    (src,) = list_sources(root)
    return root, src


def _setup_direct(ctx: Any) -> Any:
    from biosigio_lib.serving import ServingParams

    _, src = _source(ctx)
    return src, ServingParams()


def _direct(state: Any, out: Path, verify_too: bool = False) -> Any:
    from dataclasses import replace

    from biosigio_lib.discovery import checksum
    from biosigio_pipeline import steps, verify

    src, params = state
    src = replace(src, checksum=checksum(src))
    o = steps.Outputs(str(out), src.key)
    rec = steps.load_source(src)
    pq = steps.write_archive(rec, o.parquet, "parquet")
    fe = steps.write_archive(rec, o.feather, "feather")
    st = steps.write_store(rec, o.store, params)
    steps.write_preview(st, o.preview)
    if verify_too:
        from biosigio_lib import Recording

        for url in (pq, fe):
            assert not verify.diff_recordings(Recording.from_file(url), rec)
        assert all(r["passed"] for r in verify.level0_reports(rec, st))
        assert not verify.missing_in_store(rec, st)["missing_channels"]
    return st


def _setup_pipeline(ctx: Any) -> Any:
    import dagster as dg

    from biosigio_pipeline.definitions import build_defs

    root, src = _source(ctx)
    out = ctx.work / "out"
    defs = build_defs(storage_root=str(out), source_roots=[str(root)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recordings", [src.key])
    job = defs.resolve_job_def("convert_recording")
    return defs, instance, src.key, job


def _pipeline_assets(state: Any, out: Path) -> Any:
    import dagster as dg

    defs, instance, key, _ = state
    res = dg.materialize(list(defs.assets), partition_key=key, instance=instance,
                         resources=defs.resources, run_config=QUIET)
    assert res.success
    return res


def _pipeline_full(state: Any, out: Path) -> Any:
    _, instance, key, job = state
    res = job.execute_in_process(partition_key=key, instance=instance, run_config=QUIET)
    assert res.success and all(e.passed for e in res.get_asset_check_evaluations())
    return res


OPS = {
    "direct": Op(_setup_direct, _direct, "out"),
    "direct_verified": Op(_setup_direct, lambda s, o: _direct(s, o, True), "out"),
    "pipeline_assets": Op(_setup_pipeline, _pipeline_assets, "out"),
    "pipeline_full": Op(_setup_pipeline, _pipeline_full, "out"),
}


def main(argv: list[str]) -> None:
    size = argv[0] if argv and not argv[0].startswith("-") else "M"
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 1
    src = source_file(size)
    script = str(Path(__file__).resolve())
    rows = []
    for name in OPS:
        res = measure(script, name, size, repeat=repeat)
        rows.append({"op": name, "size": size, **res})
        print(rows[-1], flush=True)
    base = {r["op"]: r["wall_s"] for r in rows}
    for r in rows:
        ref = "direct_verified" if r["op"] == "pipeline_full" else "direct"
        if r["op"].startswith("pipeline"):
            r["overhead_s"] = r["wall_s"] - base[ref]
            r["overhead_pct"] = 100.0 * r["overhead_s"] / base[ref]
            r["vs"] = ref
    n_ch, secs, fs, kind = SIZES[size]
    text = "\n".join([
        "# Pipeline overhead per partition",
        "",
        f"Source: one EDF+ file, size {size} ({n_ch} ch x {secs:.0f} s x {fs:.0f} Hz {kind}, "
        f"{src.stat().st_size / 2**20:.0f} MiB, 20 annotations). Fresh process per op "
        f"(`bench/_harness.py`), best of {repeat}; peak = RSS above the process baseline; "
        "out = bytes written under the storage root.",
        "",
        table(rows, ["op", "size", "wall_s", "peak_mb", "out_mb", "vs", "overhead_s",
                     "overhead_pct"]),
        "",
        "- `direct`: checksum, import, Parquet, Feather, Zarr, preview via "
        "`biosigio_pipeline.steps` (the `convert` CLI path, no Dagster).",
        "- `direct_verified`: `direct` + the checks' work (both archives read back and "
        "compared bit for bit, level-0 verification, store inventory).",
        "- `pipeline_assets`: the 5 assets of one partition by `dagster.materialize` (in-process, "
        "ephemeral instance), no checks; compared with `direct`. The extra work is the "
        "canonical Recording written as uncompressed Arrow (so a later run can load it) plus "
        "Dagster's run bookkeeping.",
        "- `pipeline_full`: the `convert_recording` job with its 4 checks; compared with "
        "`direct_verified`.",
        "",
        f"Command: `uv run python bench/bench_pipeline.py {size} --repeat {repeat}`",
        "",
    ])
    (HERE / "results_pipeline.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
