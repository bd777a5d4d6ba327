"""Benchmark harness: every operation runs in a fresh process; we report wall time, peak RSS
above the process's baseline (sampled every 2 ms after setup), and output size.

A bench script defines ``OPS = {name: Op(setup, run, output)}``; ``setup(ctx)`` builds the
inputs (not timed), ``run(state, out)`` is the measured work. ``measure(script, op, size)``
runs ``python bench/_harness.py <script> <op> <size>`` and returns the parsed result.
Sizes follow the public benchmark: S = 8 ch x 60 s x 2048 Hz EMG, M = 64 ch x 600 s x 1000 Hz
EEG, L = 128 ch x 600 s x 2048 Hz EEG; float64 band-limited noise plus sinusoids.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("BIOSIGIO_BENCH_WORK", HERE / "_work"))

SIZES: dict[str, tuple[int, float, float, str]] = {
    "S": (8, 60.0, 2048.0, "EMG"),
    "M": (64, 600.0, 1000.0, "EEG"),
    "L": (128, 600.0, 2048.0, "EEG"),
}


@dataclass
class Op:
    """One measured operation: ``setup(ctx) -> state`` untimed, ``run(state, out)`` timed."""

    setup: Callable[[Ctx], Any]
    run: Callable[[Any, Path], Any]
    output: str | None = None  # file/folder name under the work dir whose size is reported


@dataclass
class Ctx:
    size: str
    work: Path


def signal_array(size: str, seed: int = 0) -> tuple[np.ndarray, float, str]:
    """The ``(n_ch, n)`` float64 array for a size: AR(1)-filtered noise plus sinusoids."""
    n_ch, seconds, fs, kind = SIZES[size]
    n = int(seconds * fs)
    rng = np.random.default_rng(seed)
    from scipy.signal import lfilter

    noise = lfilter([1.0], [1.0, -0.95], rng.standard_normal((n_ch, n)).astype(np.float64),
                    axis=1)
    t = np.arange(n) / fs
    freqs = 3.0 + 2.5 * np.arange(n_ch)[:, None]
    data = 20.0 * np.sin(2 * np.pi * freqs * t) + 5.0 * noise
    return np.ascontiguousarray(data), fs, kind


def dataset_file(size: str) -> Path:
    """Cache the size's array as ``.npy`` under the work dir (shared by every script)."""
    path = WORK / f"signal_{size}.npy"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        data, _, _ = signal_array(size)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, data)
        os.replace(tmp, path)
    return path


def make_recording(size: str) -> Any:
    """A biosigio_lib Recording of the size (read from the cached array)."""
    from biosigio_lib import Recording

    n_ch, _, fs, kind = SIZES[size]
    data = np.load(dataset_file(size))
    rec = Recording({"subject": "bench", "source_format": "synthetic"})
    rec.add_channels([f"{kind}{i + 1:03d}" for i in range(n_ch)], data, fs, "uV", kind)
    return rec


def make_biosigio_recording(size: str) -> Any:
    """The same data as a public biosigio 1.2 Recording (None when it is not installed)."""
    if importlib.util.find_spec("biosigio") is None:
        return None
    import pandas as pd
    from biosigio import Recording as BRecording

    n_ch, _, fs, kind = SIZES[size]
    data = np.load(dataset_file(size))
    rec = BRecording()
    labels = [f"{kind}{i + 1:03d}" for i in range(n_ch)]
    rec.signals = pd.DataFrame(data.T, index=np.arange(data.shape[1]) / fs, columns=labels)
    rec.channels = {lab: {"sample_frequency": fs, "physical_dimension": "uV", "prefilter": "n/a",
                          "channel_type": kind, "modality": kind} for lab in labels}
    rec.metadata = {"subject": "bench"}
    return rec


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _child(script: str, op_name: str, size: str) -> None:
    spec = importlib.util.spec_from_file_location("bench_script", script)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    op: Op = mod.OPS[op_name]
    work = WORK / f"run_{Path(script).stem}_{op_name}_{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ctx = Ctx(size, work)
    state = op.setup(ctx)
    out = work / (op.output or "out")
    import gc

    gc.collect()
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    result = op.run(state, out)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss())
    nbytes = _size_of(out) if op.output else 0
    del result
    print(json.dumps({"wall_s": wall, "peak_mb": (peak[0] - base) / 2**20,
                      "out_mb": nbytes / 2**20}))
    shutil.rmtree(work, ignore_errors=True)


def measure(script: str, op_name: str, size: str, repeat: int = 1) -> dict[str, float]:
    """Run one op in fresh processes ``repeat`` times; keep the fastest wall, largest peak."""
    dataset_file(size)
    best: dict[str, float] | None = None
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, str(Path(__file__)), script, op_name, size],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{op_name}/{size} failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None:
            best = res
        else:
            best = {"wall_s": min(best["wall_s"], res["wall_s"]),
                    "peak_mb": max(best["peak_mb"], res["peak_mb"]), "out_mb": res["out_mb"]}
    assert best is not None
    return best


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of ``rows`` with the given column order."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    _child(sys.argv[1], sys.argv[2], sys.argv[3])
