"""Benchmark: Zarr serving-store writes and reads, against biosigio 1.2 and plain zarr.

Run ``uv run python bench/bench_zarr.py [SIZE ...] [--repeat N]`` (default size M); each
operation runs in a fresh process (see ``_harness.py``); the table goes to stdout and, with
``--write``, to ``bench/results_zarr.md``.

Operations:
- ``plain_write_f32``: ``zarr.create_array`` + one write of the float32 level 0 (already
  resampled in setup), same chunks/shards/codec as the store: the floor for a write.
- ``biosigio_to_zarr``: biosigio 1.2 ``Recording.to_zarr`` (int16) of the same data.
- ``to_zarr_int16`` / ``to_zarr_f32``: ours, ``Recording.to_zarr(dtype=...)``.
- ``plain_read_int16``: ``zarr.open_array(<store>/<group>/0)[...]`` of our int16 level 0.
- ``read_zarr``: ours, ``Recording.from_file(store)`` (dequantised float64 Recording).
- ``biosigio_read``: biosigio 1.2 ``Recording.from_file(store, importer='zarr')``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _harness import SIZES, Ctx, Op, dataset_file, make_biosigio_recording, make_recording  # noqa: E402


def _level0_f32(size: str) -> Any:
    import numpy as np
    from scipy.signal import resample_poly

    data = np.load(dataset_file(size))
    fs, kind = SIZES[size][2], SIZES[size][3]
    cap = {"EEG": 250.0, "EMG": 1000.0}.get(kind, fs)
    if cap < fs:
        data = resample_poly(data, int(cap), int(fs), axis=1)
    return np.ascontiguousarray(data, dtype=np.float32), min(cap, fs)


def _setup_plain(ctx: Ctx) -> Any:
    import zarr  # noqa: F401
    from zarr.codecs import BloscCodec  # noqa: F401

    return _level0_f32(ctx.size)


def _run_plain(state: Any, out: Path) -> None:
    import zarr
    from zarr.codecs import BloscCodec

    y, rate = state
    chunk = round(4.0 * rate)
    shard = chunk * min(75, -(-y.shape[1] // chunk))
    a = zarr.create_array(str(out), shape=y.shape, chunks=(y.shape[0], chunk),
                          shards=(y.shape[0], shard), dtype="float32",
                          compressors=[BloscCodec(cname="zstd", clevel=5)])
    a[...] = y


def _setup_biosigio(ctx: Ctx) -> Any:
    import zarr  # noqa: F401
    from biosigio.exporters import zarr as _z  # noqa: F401

    return make_biosigio_recording(ctx.size)


def _run_biosigio(rec: Any, out: Path) -> None:
    rec.to_zarr(str(out))


def _setup_ours(ctx: Ctx) -> Any:
    import zarr  # noqa: F401
    from zarr.codecs import BloscCodec  # noqa: F401

    import biosigio_lib.serving  # noqa: F401

    return make_recording(ctx.size)


def _run_int16(rec: Any, out: Path) -> None:
    rec.to_zarr(str(out), dtype="int16")


def _run_f32(rec: Any, out: Path) -> None:
    rec.to_zarr(str(out), dtype="float32")


def _setup_store(ctx: Ctx) -> Any:
    import zarr  # noqa: F401

    import biosigio_lib.importers  # noqa: F401  (import time is not read time)
    from biosigio_lib import serving

    rec = make_recording(ctx.size)
    path = ctx.work / "store.zarr"
    rec.to_zarr(str(path), dtype="int16")
    del rec
    return path, serving.list_groups(str(path))[0]


def _run_plain_read(state: Any, out: Path) -> Any:
    import zarr

    path, group = state
    return zarr.open_array(str(path / group / "0"), mode="r")[...]


def _run_read(state: Any, out: Path) -> Any:
    from biosigio_lib import Recording

    return Recording.from_file(str(state[0]))


def _setup_store_biosigio(ctx: Ctx) -> Any:
    from biosigio import Recording as BRecording  # noqa: F401
    from biosigio.importers import zarr as _z  # noqa: F401

    return _setup_store(ctx)


def _run_biosigio_read(state: Any, out: Path) -> Any:
    from biosigio import Recording as BRecording

    return BRecording.from_file(str(state[0]), importer="zarr")


OPS = {
    "plain_write_f32": Op(_setup_plain, _run_plain, "out.zarr"),
    "biosigio_to_zarr": Op(_setup_biosigio, _run_biosigio, "out.zarr"),
    "to_zarr_int16": Op(_setup_ours, _run_int16, "out.zarr"),
    "to_zarr_f32": Op(_setup_ours, _run_f32, "out.zarr"),
    "plain_read_int16": Op(_setup_store, _run_plain_read),
    "read_zarr": Op(_setup_store, _run_read),
    "biosigio_read": Op(_setup_store_biosigio, _run_biosigio_read),
}


def main() -> None:
    from _harness import measure, table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", default=["M"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ops", nargs="*", default=list(OPS))
    ap.add_argument("--write", action="store_true", help="write bench/results_zarr.md")
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        res = {op: measure(__file__, op, size, repeat=args.repeat) for op in args.ops}
        base_w = res.get("plain_write_f32", {}).get("wall_s")
        bsio = res.get("biosigio_to_zarr", {})
        base_r = res.get("plain_read_int16", {}).get("wall_s")
        for op, r in res.items():
            row = {"size": size, "op": op, "wall_s": r["wall_s"], "peak_mb": r["peak_mb"],
                   "out_mb": r["out_mb"] or None}
            if base_w and op in ("biosigio_to_zarr", "to_zarr_int16", "to_zarr_f32"):
                row["x_plain_write"] = r["wall_s"] / base_w
            if bsio and op in ("to_zarr_int16", "to_zarr_f32"):
                row["x_biosigio"] = r["wall_s"] / bsio["wall_s"]
            if base_r and op in ("read_zarr", "biosigio_read"):
                row["x_plain_read"] = r["wall_s"] / base_r
            rows.append(row)
    cols = ["size", "op", "wall_s", "peak_mb", "out_mb", "x_plain_write", "x_biosigio",
            "x_plain_read"]
    text = table(rows, cols)
    print(text)
    if args.write:
        head = (f"# Zarr serving store benchmark\n\nMachine: {platform.machine()}, "
                f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}. "
                f"Fresh process per operation, best wall of {args.repeat} runs, largest peak "
                "RSS above the process baseline. Command: `uv run python bench/bench_zarr.py "
                f"{' '.join(args.sizes)} --repeat {args.repeat} --write`.\n\n")
        (HERE / "results_zarr.md").write_text(head + text + "\n")


if __name__ == "__main__":
    main()
