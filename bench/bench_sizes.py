"""Archive size against the source on every real file of ``../shared/data/real``.

For each recording the discovery finds (source bytes include a BIDS file's sidecars and a
WFDB record's signal and annotation files) it writes the default Parquet and Feather archives
and, for comparison, Parquet with plain encodings + zstd and with the previous default (float64
samples, lz4), and prints a Markdown table of sizes as a fraction of the source.

    uv run python bench/bench_sizes.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() \
        else p.stat().st_size


def main() -> int:
    from biosigio_lib import Recording
    from biosigio_lib.discovery import discover

    if not REAL.is_dir():
        print(f"no real corpus at {REAL}")
        return 0
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for src in discover(str(REAL)).sources:
            rec = Recording.from_file(src.url)
            phys = Recording.from_file(src.url, digital=False) if src.format in ("edf", "wfdb") \
                else rec
            t0 = time.perf_counter()
            pq = _size(Path(rec.to_parquet(t / "a.parquet", overwrite=True)))
            dt = time.perf_counter() - t0
            fe = _size(Path(rec.to_arrow(t / "a.arrow", overwrite=True)))
            plain = _size(Path(rec.to_parquet(t / "b.parquet", overwrite=True,
                                              compression="zstd", column_encoding=None)))
            old = _size(Path(phys.to_parquet(t / "c.parquet", overwrite=True,
                                             compression="lz4", column_encoding=None)))
            rows.append((src.key, src.size, pq, fe, plain, old, dt))
    print("| recording | source B | Parquet | Feather | Parquet plain+zstd | float64 lz4 "
          "(before) |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, n, pq, fe, plain, old, _ in rows:
        print(f"| {key} | {n} | {pq / n:.3f} | {fe / n:.3f} | {plain / n:.3f} | {old / n:.3f} |")
    tot = sum(r[1] for r in rows)
    print(f"| **all {len(rows)}** | {tot} | {sum(r[2] for r in rows) / tot:.3f} | "
          f"{sum(r[3] for r in rows) / tot:.3f} | {sum(r[4] for r in rows) / tot:.3f} | "
          f"{sum(r[5] for r in rows) / tot:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
