"""EDF read benchmark: our importer vs pyedflib (readSignal per channel) vs the floor.

The floor is ``np.fromfile`` of the data records plus the per-channel scaling into a
``(n_ch, n)`` float64 array: the least any reader must do. Target: at most 1.5x the floor
and no slower than pyedflib. Run::

    uv run python bench/bench_edf.py [S|M|L] [repeat]

and the table is written to ``bench/results_edf.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import SIZES, WORK, Ctx, Op, dataset_file, measure, table


def edf_file(size: str) -> Path:
    """Write the size's array once as an EDF+C (1 s records) with pyedflib; cache it."""
    path = WORK / f"signal_{size}.edf"
    if path.exists():
        return path
    import pyedflib

    n_ch, _, fs, kind = SIZES[size]
    data = np.load(dataset_file(size))
    tmp = path.with_suffix(".tmp.edf")
    headers = []
    for i in range(n_ch):
        lo, hi = float(data[i].min()), float(data[i].max())
        headers.append({"label": f"{kind}{i + 1:03d}", "dimension": "uV",
                        "sample_frequency": fs, "physical_min": np.floor(lo),
                        "physical_max": np.ceil(hi), "digital_min": -32768,
                        "digital_max": 32767, "transducer": "", "prefilter": ""})
    with pyedflib.EdfWriter(str(tmp), n_ch, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders(headers)
        w.writeSamples(list(data))
    os.replace(tmp, path)
    return path


def _header_scaling(path: Path) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Minimal header read for the floor: header size, samples per record, EDFlib scaling."""
    with open(path, "rb") as fh:
        ns = int(fh.read(256)[252:256])
        fh.seek(0)
        hdr = fh.read(256 * (ns + 1))

    def col(start: int, width: int) -> list[str]:
        base = 256 + start * ns
        return [hdr[base + i * width: base + (i + 1) * width].decode().strip() for i in range(ns)]

    pmin, pmax = np.array(col(104, 8), float), np.array(col(112, 8), float)
    dmin, dmax = np.array(col(120, 8), float), np.array(col(128, 8), float)
    spr = np.array(col(216, 8), int)
    bit = (pmax - pmin) / (dmax - dmin)
    return 256 * (ns + 1), spr, bit, pmax / bit - dmax


def _setup(ctx: Ctx) -> Path:
    """Make the file and import the readers outside the timed part (imports are not reads)."""
    import pyedflib  # noqa: F401

    import biosigio_lib.importers  # noqa: F401

    return edf_file(ctx.size)


def run_ours(path: Path, out: Path) -> object:
    from biosigio_lib import Recording

    return Recording.from_file(path)


def run_pyedflib(path: Path, out: Path) -> object:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as r:
        n = r.signals_in_file  # pyedflib hides the annotation signal
        data = np.empty((n, int(r.getNSamples()[0])), dtype=np.float64)
        for i in range(n):
            data[i] = r.readSignal(i)
    return data


def run_floor(path: Path, out: Path) -> object:
    """np.fromfile of the records, then (offset + digital) * bitvalue into one 2-D array."""
    hb, spr, bit, off = _header_scaling(path)
    n_data, s = len(spr) - 1, int(spr[0])  # equal rates; the last signal holds the TALs
    records = np.fromfile(path, dtype="<i2", offset=hb).reshape(-1, int(spr.sum()))
    n_rec = records.shape[0]
    sig = records[:, : n_data * s].reshape(n_rec, n_data, s).transpose(1, 0, 2)
    data = np.empty((n_data, n_rec * s), dtype=np.float64)
    dst = data.reshape(n_data, n_rec, s)
    np.add(sig, off[:n_data, None, None], out=dst)
    np.multiply(dst, bit[:n_data, None, None], out=dst)
    return data


OPS = {
    "biosigio_lib": Op(_setup, run_ours),
    "pyedflib_per_channel": Op(_setup, run_pyedflib),
    "np_fromfile_floor": Op(_setup, run_floor),
}


def main(size: str = "M", repeat: int = 3) -> str:
    edf_file(size)
    script = str(Path(__file__).resolve())
    rows = [{"op": name, **measure(script, name, size, repeat=repeat)} for name in OPS]
    floor = next(r["wall_s"] for r in rows if r["op"] == "np_fromfile_floor")
    pyedf = next(r["wall_s"] for r in rows if r["op"] == "pyedflib_per_channel")
    for r in rows:
        r["x_floor"] = r["wall_s"] / floor
        r["x_pyedflib"] = r["wall_s"] / pyedf
    n_ch, seconds, fs, _ = SIZES[size]
    mb = edf_file(size).stat().st_size / 2**20
    text = (f"# EDF read benchmark\n\nSize {size}: {n_ch} ch x {seconds:g} s x {fs:g} Hz EDF+C "
            f"(1 s records, 16-bit, {mb:.0f} MiB on disk) written once by pyedflib; read into "
            "float64 physical values. Each op runs in a fresh process (best wall time of "
            f"{repeat}, peak RSS above baseline).\n\nCommand: `uv run python bench/bench_edf.py "
            f"{size} {repeat}`\n\n"
            + table(rows, ["op", "wall_s", "peak_mb", "x_floor", "x_pyedflib"]) + "\n")
    return text


if __name__ == "__main__":
    size = sys.argv[1] if len(sys.argv) > 1 else "M"
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    report = main(size, repeat)
    print(report)
    (Path(__file__).resolve().parent / "results_edf.md").write_text(report)
