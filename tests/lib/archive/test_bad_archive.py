"""Damaged archives: a typed error naming the file, never a silently partial or wrong read."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.archive import MANIFEST_NAME
from biosigio_lib.errors import ArchiveFormatError, BiosigIOError, CorruptFileError
from biosigio_lib.testing import assert_recordings_equal, synthetic_recording


@pytest.fixture(params=["parquet", "arrow"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    rec = synthetic_recording(n_channels=2, seconds=1, extra_rates=(10.0, 2.0))
    return Path(getattr(rec, f"to_{request.param}")(tmp_path / f"multi.{request.param}"))


def _edit_manifest(folder: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _first_grid(m: dict[str, Any], **change: Any) -> dict[str, Any]:
    return {**m, "grids": [{**m["grids"][0], **change}, *m["grids"][1:]]}


def _without_file(m: dict[str, Any]) -> dict[str, Any]:
    grids = [dict(g) for g in m["grids"]]
    del grids[0]["file"]
    return {**m, "grids": grids}


@pytest.mark.parametrize("change", [
    lambda m: {k: v for k, v in m.items() if k != "grids"},
    lambda m: {**m, "grids": "grid00.parquet"},
    lambda m: {**m, "grids": []},
    _without_file,
    lambda m: _first_grid(m, file="../elsewhere.parquet"),
    lambda m: {**m, "grids": [*m["grids"], m["grids"][0]]},
    lambda m: {**m, "grids": m["grids"][:-1]},  # a grid file dropped from the manifest
    lambda m: [1, 2],
], ids=["no-grids", "grids-not-a-list", "grids-empty", "grid-without-file", "path-escape",
        "grid-twice", "grid-dropped", "not-an-object"])
def test_malformed_manifest_is_an_archive_error(folder: Path, change: Callable) -> None:
    _edit_manifest(folder, change)
    with pytest.raises(ArchiveFormatError, match=MANIFEST_NAME) as info:
        Recording.from_file(folder)
    assert str(folder) in str(info.value)


def test_missing_grid_file_names_it(folder: Path) -> None:
    victim = sorted(p for p in folder.iterdir() if p.name != MANIFEST_NAME)[-1]
    victim.unlink()
    with pytest.raises(BiosigIOError, match=victim.name):
        Recording.from_file(folder)


def test_manifest_that_is_a_folder(folder: Path) -> None:
    (folder / MANIFEST_NAME).unlink()
    (folder / MANIFEST_NAME).mkdir()
    with pytest.raises(ArchiveFormatError, match=MANIFEST_NAME):
        Recording.from_file(folder)


def test_undecodable_metadata_is_an_archive_error(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "odd.parquet"
    rec = synthetic_recording(n_channels=1, seconds=1)
    good = pq.read_table(rec.to_parquet(tmp_path / "good.parquet"))
    blob = json.loads(good.schema.metadata[b"biosigio"])
    blob["metadata"]["bad"] = {"__biosigio_type__": "timedelta", "value": "garbage"}
    meta = {**good.schema.metadata, b"biosigio": json.dumps(blob).encode()}
    pq.write_table(good.replace_schema_metadata(meta), path)
    with pytest.raises(ArchiveFormatError, match=r"odd\.parquet"):
        Recording.from_file(path)


def test_corrupt_parquet_page_is_detected(tmp_path: Path) -> None:
    """Bytes flipped inside a data page must not read back as (wrong) samples."""
    rec = synthetic_recording(n_channels=2, seconds=2)
    path = Path(rec.to_parquet(tmp_path / "x.parquet", chunk_rows=500))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for k in range(8):
        bad = bytearray(data)
        off = len(data) // 10 + k * 997
        bad[off : off + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(bad))
        try:
            back = Recording.from_file(path)
        except CorruptFileError as exc:
            assert path.name in str(exc)
            continue
        assert_recordings_equal(back, rec)  # the flip hit bytes that do not matter


def test_folder_grid_replaced_by_another_recording(folder: Path, tmp_path: Path) -> None:
    ext = folder.suffix
    other = synthetic_recording(n_channels=3, seconds=1, seed=5)
    single = getattr(other, f"to_{ext[1:]}")(tmp_path / f"other{ext}")
    victim = sorted(p for p in folder.iterdir() if p.name != MANIFEST_NAME)[0]
    shutil.copy(single, victim)
    with pytest.raises(ArchiveFormatError, match=victim.name):
        Recording.from_file(folder)


@pytest.mark.parametrize("container", ["parquet", "arrow"])
def test_iter_blocks_loses_no_sample_or_event(tmp_path: Path, container: str) -> None:
    from biosigio_lib.importers import iter_blocks

    rec = Recording()
    rec.add_channel("x", np.arange(25.0), 10.0, t0=-0.5)
    rec.add_channel("y", np.arange(3.0), 1.0, t0=0.25)
    rec.add_events([-2.0, 0.1, 1.0, 99.0], 0.0, ["before", "a", "b", "after"])
    path = getattr(rec, f"to_{container}")(tmp_path / f"r.{container}")
    blocks = list(iter_blocks(path, block_seconds=1.0))
    for lab in ("x", "y"):
        got = np.concatenate([b.channel_data(lab) for b in blocks])
        assert np.array_equal(got, rec.channel_data(lab)), lab
    assert {d for b in blocks for d in b.events["description"]} == {"before", "a", "b", "after"}


def test_huge_integer_rate_gets_a_writable_grid_file_name(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("x", np.arange(3.0), 1.0)
    rec.add_channel("y", np.arange(3.0), 1e300)
    back = Recording.from_file(rec.to_parquet(tmp_path / "r.parquet"))
    assert_recordings_equal(back, rec)
