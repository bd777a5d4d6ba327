"""Out-of-core conversion: a file-backed (lazy) recording writes byte-identical outputs.

One code path writes every output (archives batch by batch, the store shard by shard); an
in-memory recording feeds it views, a file-backed one windows read from the file. These tests
check that the bytes do not depend on where the samples come from, nor on how the source is
windowed (reads of one record, windows that cut through the anti-aliasing filter's support
and through shards), and that no read covers more than a window.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording, lazy
from biosigio_lib.importers import _edf_lazy
from biosigio_lib.serving import ServingParams, resample
from biosigio_lib.testing import assert_recordings_equal
from tests.conftest import requires

#: Shards of 8 s over a 40 s recording: windows cut through shards as well as records.
PARAMS = ServingParams(chunk_seconds=2.0, shard_seconds=8.0)


def _digest(path: str) -> str:
    """Bytes of a file or of every file under a folder; the store's creation time left out."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else "").encode())
        h.update(re.sub(rb'"created_utc": "[^"]*"', b"", f.read_bytes()))
    return h.hexdigest()


@pytest.fixture(scope="module")
def edf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 s EDF+ with two rates (500 Hz EEG, 50 Hz ACC), 0.5 s records and annotations."""
    pyedflib = pytest.importorskip("pyedflib")
    path = tmp_path_factory.mktemp("edf") / "long.edf"
    rng = np.random.default_rng(7)
    n = 40
    eeg = np.cumsum(rng.standard_normal((4, 500 * n)), axis=1)
    acc = np.sin(np.arange(50 * n) / 7.0)[None, :] * 2.0
    w = pyedflib.EdfWriter(str(path), 5, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        heads = []
        for i in range(4):
            lim = float(np.ceil(np.abs(eeg[i]).max() + 1))
            heads.append({"label": f"EEG C{i}", "dimension": "uV", "sample_frequency": 500,
                          "physical_max": lim, "physical_min": -lim, "digital_max": 32767,
                          "digital_min": -32768})
        heads.append({"label": "ACC X", "dimension": "g", "sample_frequency": 50,
                      "physical_max": 3.0, "physical_min": -3.0, "digital_max": 32767,
                      "digital_min": -32768})
        w.setSignalHeaders(heads)
        w.setDatarecordDuration(0.5)
        w.writeSamples([*eeg, acc[0]])
        for k in range(6):
            w.writeAnnotation(3.0 + 5 * k, 0.5, f"event {k}")
    finally:
        w.close()
    return path


def _outputs(rec: Recording, out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    return {"parquet": _digest(rec.to_parquet(out / "a.parquet", chunk_rows=3000)),
            "arrow": _digest(rec.to_arrow(out / "a.arrow", chunk_rows=3000)),
            "zarr": _digest(rec.to_zarr(out / "a.zarr", params=PARAMS))}


@pytest.fixture(scope="module")
def eager_outputs(edf_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _outputs(Recording.from_file(edf_file), tmp_path_factory.mktemp("eager"))


def test_lazy_recording_equals_the_eager_one(edf_file: Path) -> None:
    eager, late = Recording.from_file(edf_file), Recording.from_file(edf_file, lazy=True)
    assert late.is_lazy and not eager.is_lazy
    assert_recordings_equal(late, eager)
    assert_recordings_equal(late.select(tmin=1.23, tmax=17.9), eager.select(tmin=1.23,
                                                                           tmax=17.9))


@pytest.mark.parametrize("read_bytes,window,budget", [
    (1 << 25, 1 << 16, 2 << 20),   # the defaults
    (1, 7, 4096),                  # one record a read, tiny strided windows and filter blocks
    (30_000, 1000, 50_000),        # windows cutting records, the filter's support and shards
])
def test_streamed_outputs_are_byte_identical(edf_file: Path, tmp_path: Path,
                                             eager_outputs: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch, read_bytes: int,
                                             window: int, budget: int) -> None:
    monkeypatch.setattr(_edf_lazy, "_READ_BYTES", read_bytes)
    monkeypatch.setattr(lazy, "WINDOW_SAMPLES", window)
    target = resample.block_target

    def small(n_ch: int, down: int, up: int, budget_bytes: int = budget,
              itemsize: int = 4) -> int:
        return target(n_ch, down, up, budget_bytes=budget, itemsize=itemsize)

    from biosigio_lib.serving import level0

    monkeypatch.setattr(level0, "block_target", small)
    rec = Recording.from_file(edf_file, lazy=True)
    streamed = _outputs(rec, tmp_path)
    monkeypatch.undo()
    assert streamed == eager_outputs


def test_lazy_archive_as_a_source_streams_identically(edf_file: Path, tmp_path: Path,
                                                      eager_outputs: dict[str, str]) -> None:
    archive = Recording.from_file(edf_file).to_parquet(tmp_path / "src.parquet")
    rec = Recording.from_file(archive, lazy=True)
    assert rec.is_lazy
    # the metadata of a re-read archive is the same, so every output is the same bytes
    assert _outputs(rec, tmp_path / "out") == eager_outputs


def test_no_read_covers_the_whole_recording(edf_file: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The writers read windows: the largest read is a fraction of the file."""
    sizes: list[int] = []
    real = _edf_lazy.EdfSamples._decode

    def spy(self: _edf_lazy.EdfSamples, first: int, count: int, idx: list[int]) -> np.ndarray:
        sizes.append(count)
        return real(self, first, count, idx)

    monkeypatch.setattr(_edf_lazy.EdfSamples, "_decode", spy)
    monkeypatch.setattr(_edf_lazy, "_READ_BYTES", 20_000)  # a few records a read
    rec = Recording.from_file(edf_file, lazy=True)
    n_records = 80
    _outputs(rec, tmp_path)
    assert sizes and max(sizes) < n_records / 4


@requires("dagster")
def test_pipeline_canonical_copy_is_a_reference(edf_file: Path, tmp_path: Path) -> None:
    import os
    import shutil

    from biosigio_lib.discovery import list_sources
    from biosigio_lib.errors import FileReadError
    from biosigio_pipeline import steps

    (tmp_path / "src").mkdir()
    path = Path(shutil.copy(edf_file, tmp_path / "src" / "rec.edf"))
    src = list_sources(path.parent)[0]
    rec = steps.load_source(src)
    assert rec.is_lazy
    url = steps.write_canonical(rec, str(tmp_path / "canonical" / "x.json"))
    assert Path(url).stat().st_size < 4096  # a reference, not a copy
    back = steps.read_canonical(url)
    assert back.is_lazy
    assert_recordings_equal(back, rec)
    st = path.stat()  # a changed source (mtime): the reference refuses it
    os.utime(path, (st.st_atime, st.st_mtime + 10))
    with pytest.raises(FileReadError, match="changed"):
        steps.read_canonical(url)
