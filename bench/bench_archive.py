"""Benchmark the lossless archive: our Parquet/Feather writes and reads against plain pyarrow,
``np.load`` and the public biosigio 1.2 package, each op in a fresh process.

    uv run python bench/bench_archive.py M            # one size (S, M, L), prints the table
    uv run python bench/bench_archive.py S M L --write bench/results_archive.md
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import (
    SIZES,
    Ctx,
    Op,
    dataset_file,
    make_biosigio_recording,
    make_recording,
    measure,
    table,
)


def _warm(biosigio: bool = False) -> None:
    """Import everything an op uses before timing (imports are not the work measured)."""
    import pyarrow.feather
    import pyarrow.ipc
    import pyarrow.parquet  # noqa: F401

    import biosigio_lib.archive
    import biosigio_lib.importers  # noqa: F401

    if biosigio:
        import biosigio.exporters.tabular
        import biosigio.importers.tabular


def _plain_table(data: np.ndarray, fs: float) -> Any:
    import pyarrow as pa

    cols = [pa.array(row) for row in data] + [pa.array(np.arange(data.shape[1]) / fs)]
    return pa.Table.from_arrays(cols, names=[f"c{i}" for i in range(len(data))] + ["time"])


def _ours(ctx: Ctx) -> Any:
    _warm()
    return make_recording(ctx.size)


def _theirs(ctx: Ctx) -> Any:
    _warm(biosigio=True)
    return make_biosigio_recording(ctx.size)


def _array(ctx: Ctx) -> Any:
    _warm()
    return np.load(dataset_file(ctx.size)), SIZES[ctx.size][2]


def _ours_file(method: str, name: str):
    def setup(ctx: Ctx) -> Path:
        _warm()
        return Path(getattr(make_recording(ctx.size), method)(ctx.work / name))
    return setup


def _theirs_file(method: str, name: str):
    def setup(ctx: Ctx) -> str:
        _warm(biosigio=True)
        path = str(ctx.work / name)
        getattr(make_biosigio_recording(ctx.size), method)(path)
        return path
    return setup


def _read_ours(path: Path, out: Path) -> Any:
    from biosigio_lib import Recording

    rec = Recording.from_file(path)
    for g in rec.grids.values():  # materialised: touch every block
        for _labels, arr in g.blocks():
            arr[:, -1].sum()
    return rec


def _read_theirs(path: str, out: Path) -> Any:
    import biosigio

    rec = biosigio.Recording.from_file(path)
    rec.signals.to_numpy()[-1].sum()
    return rec


def _pq_plain(state: Any, out: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(_plain_table(*state), out, use_dictionary=False)


def _feather_plain(state: Any, out: Path) -> None:
    import pyarrow.feather as feather

    feather.write_feather(_plain_table(*state), out)


OPS: dict[str, Op] = {
    "ours to_parquet": Op(_ours, lambda rec, out: rec.to_parquet(out), "out.parquet"),
    "ours to_arrow": Op(_ours, lambda rec, out: rec.to_arrow(out), "out.arrow"),
    "biosigio to_parquet": Op(_theirs, lambda rec, out: rec.to_parquet(str(out)), "out.parquet"),
    "biosigio to_arrow": Op(_theirs, lambda rec, out: rec.to_arrow(str(out)), "out.feather"),
    "pyarrow parquet (no dict)": Op(_array, _pq_plain, "out.parquet"),
    "pyarrow feather": Op(_array, _feather_plain, "out.feather"),
    "ours read parquet": Op(_ours_file("to_parquet", "in.parquet"), _read_ours),
    "ours read arrow": Op(_ours_file("to_arrow", "in.arrow"), _read_ours),
    "biosigio read parquet": Op(_theirs_file("to_parquet", "in.parquet"), _read_theirs),
    "biosigio read arrow": Op(_theirs_file("to_arrow", "in.feather"), _read_theirs),
    "np.load": Op(lambda ctx: dataset_file(ctx.size), lambda path, out: np.load(path)),
}

#: For each op, the op its time (and size) is compared against.
_BASE = {
    "ours to_parquet": "biosigio to_parquet", "ours to_arrow": "biosigio to_arrow",
    "pyarrow parquet (no dict)": "biosigio to_parquet", "pyarrow feather": "biosigio to_arrow",
    "ours read parquet": "np.load", "ours read arrow": "np.load",
    "biosigio read parquet": "np.load", "biosigio read arrow": "np.load",
}


def run(size: str, repeat: int) -> list[dict[str, Any]]:
    """Measure every op for one size; add time/size ratios and peak memory / data size."""
    data_mb = dataset_file(size).stat().st_size / 2**20
    res = {}
    for name in OPS:
        res[name] = measure(__file__, name, size, repeat=repeat)
        print(f"{size} {name}: {res[name]}", file=sys.stderr, flush=True)
    rows = []
    for name, r in res.items():
        base = res.get(_BASE.get(name, ""))
        row = {"size": size, "op": name, "wall s": r["wall_s"], "peak MB": r["peak_mb"],
               "out MB": r["out_mb"] or None, "peak / data": r["peak_mb"] / data_mb}
        if base:
            row["time vs"] = f"{r['wall_s'] / base['wall_s']:.2f}x {_BASE[name]}"
            if r["out_mb"] and base["out_mb"]:
                row["size vs"] = f"{r['out_mb'] / base['out_mb']:.3f}x"
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", default=["M"], choices=list(SIZES))
    ap.add_argument("--repeat", type=int, default=3, help="fresh runs per op (best wall)")
    ap.add_argument("--write", type=Path, help="write the Markdown results here")
    args = ap.parse_args()
    rows = [row for size in args.sizes for row in run(size, args.repeat)]
    cols = ["size", "op", "wall s", "time vs", "peak MB", "peak / data", "out MB", "size vs"]
    text = table(rows, cols)
    print(text)
    if args.write:
        import pyarrow

        cmd = "uv run python bench/bench_archive.py " + " ".join(
            [*args.sizes, f"--repeat {args.repeat}", f"--write {args.write}"])
        head = (f"# Archive benchmark\n\nCommand: `{cmd}`\n\n"
                f"Python {platform.python_version()}, pyarrow {pyarrow.__version__}, numpy "
                f"{np.__version__}, {platform.machine()}, sizes: "
                + ", ".join(f"{s} = {SIZES[s][0]} ch x {SIZES[s][1]:g} s x {SIZES[s][2]:g} Hz"
                            for s in args.sizes)
                + ". Wall time is the best of the repeats, peak RSS above the process "
                "baseline the largest; data = the float64 array.\n\n")
        args.write.write_text(head + text + "\n")


if __name__ == "__main__":
    main()
