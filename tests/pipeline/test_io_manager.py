"""The recording IO manager's per-process cache: the steps of a batched run share each lazily
read Recording, and a source changed in place is never served from the cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib.discovery import list_sources
from biosigio_lib.errors import FileReadError
from biosigio_pipeline import steps
from biosigio_pipeline.defs import resources
from biosigio_pipeline.defs.resources import RecordingIOManager

pyedflib = pytest.importorskip("pyedflib")


def _edf(path: Path) -> None:
    """A small EDF+ file: 2 channels x 4 s x 64 Hz."""
    w = pyedflib.EdfWriter(str(path), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([{"label": f"EEG{i}", "dimension": "uV", "sample_frequency": 64,
                         "physical_max": 100.0, "physical_min": -100.0, "digital_max": 32767,
                         "digital_min": -32768} for i in range(2)])
    w.writeSamples([np.sin(np.arange(256) / 8.0 + i) * 50 for i in range(2)])
    w.close()


@pytest.fixture
def canonicals(tmp_path: Path) -> tuple[RecordingIOManager, list[str], list[Path]]:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        _edf(src / f"rec{i}.edf")
    root = tmp_path / "out"
    mgr = RecordingIOManager(root=str(root))
    urls = []
    for s in list_sources(str(src)):
        url = steps.Outputs(str(root), s.key).canonical
        urls.append(steps.write_canonical(steps.load_source(s), url))
    resources._CACHE.clear()
    return mgr, urls, sorted(src.glob("*.edf"))


def test_lazy_recordings_are_shared_between_steps(canonicals) -> None:
    mgr, urls, _ = canonicals
    first = [mgr._read(u) for u in urls]  # the store step reads each...
    assert all(r.is_lazy for r in first)
    again = [mgr._read(u) for u in urls]  # ...and the check step gets the same objects
    assert all(a is b for a, b in zip(first, again, strict=True))


def test_a_source_changed_in_place_is_not_served_from_the_cache(canonicals) -> None:
    mgr, urls, sources = canonicals
    mgr._read(urls[1])
    st = sources[1].stat()
    os.utime(sources[1], (st.st_atime, st.st_mtime + 10))  # edited after `recording` read it
    with pytest.raises(FileReadError, match="changed"):
        mgr._read(urls[1])
    assert mgr._read(urls[0]) is mgr._read(urls[0])  # the others are still served


def test_an_eager_recording_is_kept_alone(canonicals) -> None:
    mgr, urls, _ = canonicals
    lazy = mgr._read(urls[0])
    eager = lazy.copy() if hasattr(lazy, "copy") else None
    if eager is None or eager.is_lazy:
        pytest.skip("no eager copy of a Recording available")
    resources._remember("eager://x", ("s",), eager)
    assert list(resources._CACHE) == ["eager://x"]
    mgr._read(urls[1])
    assert list(resources._CACHE) == [urls[1]]
