"""Long recordings, out of core: a 128-channel 1 kHz EDF+ of 2 h (1.8 GB) or 24 h (22 GB).

Generates the EDF+ under ``bench/_work/long/`` (ignored by git; written by numpy, records of
1 s, AR(1) noise so it compresses like EEG, an annotation every 30 s), then converts it with
``biosigio-pipeline convert`` and with the Dagster job in fresh processes and reports wall
time, peak RSS of the converting process, MB/s of source against ``cat file > /dev/null`` in
the same run, and every output's size against the source.

    uv run python bench/bench_long.py --hours 2          # 2 h: the issue's targets
    uv run python bench/bench_long.py --hours 24 --no-dagster
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("BIOSIGIO_BENCH_WORK", HERE / "_work")) / "long"
N_CH, FS, ANN_SAMPLES = 128, 1000, 60


def _field(text: str, width: int) -> bytes:
    return text.encode("ascii")[:width].ljust(width)


def write_edf(path: Path, hours: float, seed: int = 0) -> int:
    """Write the EDF+C; returns its size. A pool of 1 s records, each varied per record."""
    n_rec = int(hours * 3600)
    ns = N_CH + 1
    head = b"".join([
        _field("0", 8), _field("X X X X", 80),
        _field("Startdate 01-JAN-2024 X X bench", 80), _field("01.01.24", 8),
        _field("08.00.00", 8), _field(str(256 * (ns + 1)), 8), _field("EDF+C", 44),
        _field(str(n_rec), 8), _field("1", 8), _field(str(ns), 4)])
    labels = [f"EEG Ch{i:03d}" for i in range(N_CH)] + ["EDF Annotations"]
    cols = [
        [_field(x, 16) for x in labels],
        [_field("AgAgCl electrode", 80)] * N_CH + [_field("", 80)],
        [_field("uV", 8)] * N_CH + [_field("", 8)],
        [_field("-3276.8", 8)] * N_CH + [_field("-1", 8)],
        [_field("3276.7", 8)] * N_CH + [_field("1", 8)],
        [_field("-32768", 8)] * ns, [_field("32767", 8)] * ns,
        [_field("HP:0.1Hz LP:100Hz", 80)] * N_CH + [_field("", 80)],
        [_field(str(FS), 8)] * N_CH + [_field(str(ANN_SAMPLES), 8)],
        [_field("", 32)] * ns,
    ]
    header = head + b"".join(b"".join(c) for c in cols)
    rng = np.random.default_rng(seed)
    pool = 64
    from scipy.signal import lfilter

    noise = lfilter([1.0], [1.0, -0.97], rng.standard_normal((N_CH, pool * FS)), axis=1)
    base = np.clip(noise * 400, -32768, 32767).astype("<i2").reshape(N_CH, pool, FS)
    with open(path, "wb") as fh:
        fh.write(header)
        for r in range(n_rec):
            rec = np.empty(N_CH * FS * 2 + ANN_SAMPLES * 2, dtype=np.uint8)
            block = np.roll(base[:, r % pool], r % 97, axis=0) + np.int16(r % 7)
            rec[: N_CH * FS * 2] = block.view(np.uint8).reshape(-1)
            tal = f"+{r}\x14\x14\x00".encode()
            if r % 30 == 5:
                tal += f"+{r}.25\x15{0.5}\x14event {r}\x14\x00".encode()
            ann = np.zeros(ANN_SAMPLES * 2, dtype=np.uint8)
            ann[: len(tal)] = np.frombuffer(tal, dtype=np.uint8)
            rec[N_CH * FS * 2:] = ann
            fh.write(rec.tobytes())
    return path.stat().st_size


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and the peak RSS (MiB) of the child process tree's largest process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024.0


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() \
        else p.stat().st_size


def _dagster_script(src_root: Path, out: Path) -> str:
    return f"""
import dagster as dg
from biosigio_pipeline.definitions import build_defs
from biosigio_lib.discovery import list_sources
key = list_sources({str(src_root)!r})[0].key
defs = build_defs(storage_root={str(out)!r}, source_roots=[{str(src_root)!r}])
inst = dg.DagsterInstance.ephemeral()
inst.add_dynamic_partitions("recordings", [key])
res = defs.resolve_job_def("convert_recording").execute_in_process(
    partition_key=key, instance=inst,
    run_config={{"loggers": {{"console": {{"config": {{"log_level": "ERROR"}}}}}}}})
assert res.success, "job failed"
assert all(e.passed for e in res.get_asset_check_evaluations()), "a check failed"
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=2.0, help="recording length (default 2)")
    ap.add_argument("--no-dagster", action="store_true", help="skip the Dagster job run")
    ap.add_argument("--keep", action="store_true", help="keep the outputs")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    src_root = WORK / f"src_{args.hours:g}h"
    src_root.mkdir(exist_ok=True)
    edf = src_root / f"long_{args.hours:g}h.edf"
    if not edf.exists():
        t0 = time.perf_counter()
        size = write_edf(edf, args.hours)
        print(f"generated {edf.name}: {size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s")
    size = edf.stat().st_size
    t0 = time.perf_counter()
    subprocess.run(f"cat '{edf}' > /dev/null", shell=True, check=True)
    cat = time.perf_counter() - t0
    rows = [("cat > /dev/null", cat, float("nan"))]
    out = WORK / f"out_{args.hours:g}h"
    shutil.rmtree(out, ignore_errors=True)
    exe = [str(Path(sys.executable).with_name("biosigio-pipeline"))]
    wall, rss = _run([*exe, "convert", str(edf), "--out", str(out / "convert"), "--quiet"])
    rows.append(("convert (CLI)", wall, rss))
    if not args.no_dagster:
        script = _dagster_script(src_root, out / "dagster")
        wall, rss = _run([sys.executable, "-c", script],
                         {"DAGSTER_HOME": str(out / "dagster_home")})
        rows.append(("Dagster job (5 assets + 4 checks)", wall, rss))
    mb = size / 1e6
    print(f"\nsource: {edf.name}, {size / 1e9:.2f} GB ({N_CH} ch x {FS} Hz, int16, "
          f"{args.hours:g} h)\n")
    print("| run | wall s | MB/s of source | vs cat | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, rss in rows:
        rss_txt = "" if rss != rss else f"{rss:.0f}"
        print(f"| {name} | {wall:.1f} | {mb / wall:.0f} | {cat / wall:.2f}x | {rss_txt} |")
    conv = out / "convert"
    sizes = {p.name: _size(p) for sub in ("archive/parquet", "archive/feather", "serving")
             for p in (conv / sub).iterdir()} if conv.exists() else {}
    print("\n| output | bytes | x source |\n|---|---:|---:|")
    for name, n in sizes.items():
        print(f"| {name} | {n} | {n / size:.3f} |")
    print(json.dumps({"hours": args.hours, "source_bytes": size, "cat_s": cat,
                      "runs": [{"name": n, "wall_s": w, "peak_rss_mib": r} for n, w, r in rows],
                      "outputs": sizes}))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
