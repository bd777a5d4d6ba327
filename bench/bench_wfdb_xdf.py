"""WFDB and XDF read benchmarks: our importers vs the reference readers they wrap.

WFDB: the size's array written once with ``wfdb.wrsamp`` (format 16); ``wfdb_rdrecord`` is
``wfdb.rdrecord(...).p_signal`` alone, ``wfdb_ours`` the full import (header checks,
annotation scan, one grid). XDF: the array as one float32 stream written by a vectorised
writer; ``xdf_pyxdf`` is ``pyxdf.load_xdf`` alone, ``xdf_ours`` the full import. Run::

    uv run python bench/bench_wfdb_xdf.py [S|M|L] [repeat]

and the table is written to ``bench/results_wfdb_xdf.md``.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import SIZES, WORK, Op, dataset_file, measure, table


def wfdb_record(size: str) -> Path:
    """Write the size's array once as a format-16 WFDB record; cache it."""
    folder = WORK / f"wfdb_{size}"
    hea = folder / "sig.hea"
    if hea.exists():
        return hea
    import wfdb

    n_ch, _, fs, kind = SIZES[size]
    data = np.load(dataset_file(size))
    scale = 32000.0 / np.abs(data).max()
    d = np.ascontiguousarray(np.round(data.T * scale).astype(np.int16))
    tmp = WORK / f"wfdb_{size}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp("sig", fs=fs, units=["uV"] * n_ch, sig_name=[f"{kind}{i + 1:03d}"
                                                           for i in range(n_ch)],
                d_signal=d, fmt=["16"] * n_ch, adc_gain=[scale] * n_ch, baseline=[0] * n_ch,
                write_dir=str(tmp))
    os.replace(tmp, folder)
    return hea


def xdf_file(size: str) -> Path:
    """Write the size's array once as a one-stream float32 XDF (1 s chunks); cache it."""
    path = WORK / f"signal_{size}.xdf"
    if path.exists():
        return path
    n_ch, _, fs, kind = SIZES[size]
    data = np.load(dataset_file(size)).T.astype(np.float32)
    n = data.shape[0]
    xml = (f'<?xml version="1.0"?><info><name>Amp</name><type>{kind}</type><channel_count>'
           f"{n_ch}</channel_count><nominal_srate>{fs}</nominal_srate><channel_format>"
           "float32</channel_format></info>").encode()

    def chunk(tag: int, content: bytes) -> bytes:
        body = struct.pack("<H", tag) + content
        return b"\x08" + struct.pack("<Q", len(body)) + body

    rows = np.dtype([("flag", "u1"), ("t", "<f8"), ("v", "<f4", (n_ch,))])
    parts = [b"XDF:", chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>'),
             chunk(2, struct.pack("<I", 1) + xml)]
    step = int(fs)
    for i in range(0, n, step):
        block = np.zeros(min(step, n - i), dtype=rows)
        block["flag"] = 8
        block["t"] = 100.0 + np.arange(i, i + block.size) / fs
        block["v"] = data[i:i + block.size]
        parts.append(chunk(3, struct.pack("<I", 1) + b"\x04" + struct.pack("<I", block.size)
                           + block.tobytes()))
    footer = f'<?xml version="1.0"?><info><sample_count>{n}</sample_count></info>'.encode()
    parts.append(chunk(6, struct.pack("<I", 1) + footer))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(parts))
    os.replace(tmp, path)
    return path


def _ours(path: Path) -> object:
    from biosigio_lib import Recording

    return Recording.from_file(path)


def _rdrecord(hea: Path) -> object:
    import wfdb

    return wfdb.rdrecord(str(hea)[:-4]).p_signal


def _pyxdf(path: Path) -> object:
    import pyxdf

    return pyxdf.load_xdf(str(path))


def _warm(path: Path) -> Path:
    """Import every library in setup, so the timed part is the read alone."""
    import pyxdf  # noqa: F401
    import wfdb  # noqa: F401

    import biosigio_lib.importers  # noqa: F401

    return path


OPS = {
    "wfdb_rdrecord": Op(lambda c: _warm(wfdb_record(c.size)), lambda s, out: _rdrecord(s)),
    "wfdb_ours": Op(lambda c: _warm(wfdb_record(c.size)), lambda s, out: _ours(s)),
    "xdf_pyxdf": Op(lambda c: _warm(xdf_file(c.size)), lambda s, out: _pyxdf(s)),
    "xdf_ours": Op(lambda c: _warm(xdf_file(c.size)), lambda s, out: _ours(s)),
}


def main(size: str = "S", repeat: int = 1) -> str:
    script = str(Path(__file__).resolve())
    wfdb_record(size)
    xdf_file(size)
    rows = [{"op": name, "size": size, **measure(script, name, size, repeat=repeat)}
            for name in OPS]
    ref = {r["op"]: r["wall_s"] for r in rows}
    for r in rows:
        base = ref["wfdb_rdrecord"] if r["op"].startswith("wfdb") else ref["xdf_pyxdf"]
        r["x_reference"] = r["wall_s"] / base
    text = table(rows, ["op", "size", "wall_s", "peak_mb", "x_reference"])
    Path(__file__).with_name("results_wfdb_xdf.md").write_text(
        f"# WFDB / XDF read ({size}, best of {repeat}, fresh process each)\n\n{text}\n")
    return text


if __name__ == "__main__":
    print(main(*(sys.argv[1:2] or ["S"]), *(int(x) for x in sys.argv[2:3])))
