"""Benchmark: the windowed reader (``biosigio_lib.windows.WindowDataset``).

Run ``uv run python bench/bench_windows.py [--stores 100] [--windows 4000]``. Generated
stores go to ``bench/.data/windows`` (gitignored) and are reused.

Measured, each in a fresh process after a warm-up read (page cache hot, as for the floor):
- ``sequential``: every 10 s window (hop 10 s) of one M-size store (64 ch x 600 s EEG at
  1000 Hz -> level 0 250 Hz int16) as float32, against ``np.load`` of the same float32 level
  0 from a ``.npy`` in the page cache (target: >= 0.5x its samples/s). The floor, the reader
  (a new dataset each pass: opening included) and ``raw=True`` (int16 + scale/offset) run
  alternately in one process, best of 15 each, so a load change hits all three alike.
- ``random``: shuffled 10 s windows across 100 stores (32 ch x 600 s, 250 Hz), two worker
  processes sharding one shuffled order (target: >= 500 windows/s). Process start and the
  opening of the dataset are included; Python start-up is not.
- optional: MNE ``Epochs`` of the same data when ``mne`` is installed (it is not a
  dependency; the row is skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DATA = HERE / ".data" / "windows"
WINDOW = 10.0


def _signal(n_ch: int, seconds: float, fs: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    freqs = 3.0 + 2.5 * np.arange(n_ch)[:, None]
    return 20.0 * np.sin(2 * np.pi * freqs * t) + 5.0 * np.cumsum(
        rng.standard_normal((n_ch, n)), axis=1) / np.sqrt(n)


def make_big() -> tuple[Path, Path]:
    """The M-size store and the ``.npy`` of its float32 level 0 (the floor's input)."""
    from biosigio_lib import Recording

    store, npy = DATA / "big.zarr", DATA / "big_level0.npy"
    if not store.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        rec = Recording({"subject": "bench"})
        rec.add_channels([f"EEG{i:03d}" for i in range(64)], _signal(64, 600.0, 1000.0, 0),
                         1000.0, "uV", "EEG")
        rec.to_zarr(str(store))
    if not npy.exists():
        rec = Recording.from_file(str(store))
        np.save(npy, rec.grid(rec.rates[0]).data.astype(np.float32))
    return store, npy


def make_many(n: int) -> list[Path]:
    """``n`` small stores (32 ch x 600 s at 250 Hz, a few events each)."""
    from biosigio_lib import Recording

    out = []
    for i in range(n):
        p = DATA / f"s{i:03d}.zarr"
        if not p.exists():
            DATA.mkdir(parents=True, exist_ok=True)
            rec = Recording({"subject": f"s{i:03d}"})
            rec.add_channels([f"EEG{k:02d}" for k in range(32)], _signal(32, 600.0, 250.0, i),
                             250.0, "uV", "EEG")
            rec.add_events(np.arange(0, 600, 30.0), np.full(20, 30.0),
                           [f"stage{k % 5}" for k in range(20)])
            rec.to_zarr(str(p))
        out.append(p)
    return out


def _child(argv: list[str]) -> None:
    op = argv[0]
    from biosigio_lib.windows import WindowDataset

    if op == "npload":
        npy = argv[1]
        np.load(npy)  # warm
        best = 1e9
        for _ in range(5):
            t0 = time.perf_counter()
            x = np.load(npy)
            best = min(best, time.perf_counter() - t0)
        print(json.dumps({"s": best, "samples": int(x.size)}))
    elif op == "sequential":  # floor, float32 windows and raw windows, interleaved
        store, npy = argv[1], argv[2]
        runs = {"floor": lambda: np.load(npy).size,
                "seq": lambda: sum(w.data.size for w in WindowDataset(store, WINDOW)),
                "raw": lambda: sum(w.data.size for w in WindowDataset(store, WINDOW, raw=True))}
        best = {k: 1e9 for k in runs}
        n = {k: f() for k, f in runs.items()}  # warm (page cache, imports)
        for _ in range(15):
            for k, f in runs.items():
                t0 = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - t0)
        print(json.dumps({k: {"s": best[k], "samples": n[k]} for k in runs}))
    elif op == "mne":
        import mne

        x = np.load(argv[1]).astype(np.float64)
        info = mne.create_info([f"EEG{i:03d}" for i in range(x.shape[0])], 250.0, "eeg")
        raw = mne.io.RawArray(x, info, verbose=False)
        t0 = time.perf_counter()
        ep = mne.make_fixed_length_epochs(raw, WINDOW, preload=True, verbose=False)
        s = time.perf_counter() - t0
        print(json.dumps({"s": s, "samples": int(ep.get_data().size)}))


def _random_worker(args: tuple[list[str], int, int, int, float]) -> tuple[int, float]:
    stores, wid, n_workers, n_total, _ = args
    from biosigio_lib.windows import WindowDataset

    ds = WindowDataset(stores, WINDOW, shuffle=True, seed=1, worker_id=wid,
                       num_workers=n_workers)
    n = 0
    for w in ds:
        n += 1
        _ = w.events  # labels come with the window
        if n >= n_total // n_workers:
            break
    return n, time.perf_counter()


def run_random(stores: list[Path], n_windows: int, workers: int = 2) -> dict[str, float]:
    """Shuffled windows across stores with ``workers`` processes (fork)."""
    from biosigio_lib.windows import WindowDataset

    # warm the page cache with one pass over a few windows of every store
    ds = WindowDataset([str(s) for s in stores], WINDOW, shuffle=True, seed=2)
    for _w in zip(range(400), ds):
        pass
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.map(abs, range(workers))  # start the processes (Python start-up not timed)
        t0 = time.perf_counter()
        res = pool.map(_random_worker, [([str(s) for s in stores], w, workers, n_windows, t0)
                                        for w in range(workers)])
    wall = max(r[1] for r in res) - t0
    n = sum(r[0] for r in res)
    return {"windows": n, "s": wall, "per_s": n / wall}


def _in_child(*argv: str) -> dict[str, float] | None:
    proc = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        if argv[0] == "mne":
            return None
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=int, default=100)
    ap.add_argument("--windows", type=int, default=4000)
    ap.add_argument("--child", nargs="*")
    args = ap.parse_args()
    if args.child:
        _child(args.child)
        return
    import os

    store, npy = make_big()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    both = _in_child("sequential", str(store), str(npy))
    floor, seq, raw = both["floor"], both["seq"], both["raw"]
    mne = _in_child("mne", str(npy))
    rate = {k: v["samples"] / v["s"] / 1e6 for k, v in both.items()}
    print("| op | wall s | Msamples/s | vs np.load |\n|---|---|---|---|")
    print(f"| np.load float32 level 0 (page cache) | {floor['s']:.3f} | {rate['floor']:.0f} | 1.00 |")
    print(f"| WindowDataset sequential 10 s windows | {seq['s']:.3f} | {rate['seq']:.0f} | "
          f"{rate['seq'] / rate['floor']:.2f}x |")
    print(f"| same, raw=True (int16 + scale/offset) | {raw['s']:.3f} | {rate['raw']:.0f} | "
          f"{rate['raw'] / rate['floor']:.2f}x |")
    if mne is not None:
        r = mne["samples"] / mne["s"] / 1e6
        print(f"| MNE make_fixed_length_epochs (preloaded RawArray) | {mne['s']:.3f} | {r:.0f} | "
              f"{r / rate['floor']:.2f}x |")
    else:
        print("| MNE epochs | skipped (mne not installed) | | |")
    stores = make_many(args.stores)
    rnd = run_random(stores, args.windows)
    print(f"\nrandom {WINDOW:.0f} s windows across {len(stores)} stores, 2 workers: "
          f"{rnd['windows']} windows in {rnd['s']:.2f} s = **{rnd['per_s']:.0f} windows/s** "
          f"(target >= 500)")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
