"""Round trips, layout, subsets and failure modes of the Parquet / Arrow archive."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biosigio_lib import (
    ArchiveFormatError,
    FileReadError,
    Recording,
    StoreExistsError,
    TruncatedFileError,
)
from biosigio_lib.archive import MANIFEST_NAME, read_archive, write_arrow, write_parquet
from biosigio_lib.archive import _read as archive_read
from biosigio_lib.testing import assert_recordings_equal, synthetic_recording

WRITERS = {"parquet": write_parquet, "arrow": write_arrow}


@pytest.fixture(params=["parquet", "arrow"])
def container(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=["local", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A root for outputs: a local folder or an fsspec ``memory://`` folder."""
    if request.param == "local":
        yield str(tmp_path)
        return
    root = f"memory://archive-tests/{uuid.uuid4().hex}"  # no glob characters
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _write(rec: Recording, where: str, container: str, name: str = "rec", **kw) -> str:
    return WRITERS[container](rec, f"{where}/{name}.{container}", **kw)


def test_round_trip_is_bit_exact(tricky: Recording, where: str, container: str) -> None:
    out = _write(tricky, where, container)
    assert out == f"{where}/rec.{container}"
    back = Recording.from_file(out)
    assert_recordings_equal(back, tricky)
    assert back.channel_data("Fp1")[4].tobytes() == tricky.channel_data("Fp1")[4].tobytes()
    assert [g.key for g in back.grids.values()] == ["1000.5hz", "100hz", "slow"]
    assert back.grid("slow").dtypes == {"i32": np.dtype(np.int32)}
    assert back.events["code"].dtype == np.int32


def test_single_grid_is_one_plain_file(tmp_path: Path, container: str) -> None:
    rec = synthetic_recording(n_channels=3)
    out = Path(_write(rec, str(tmp_path), container))
    assert out.is_file()
    assert_recordings_equal(Recording.from_file(out), rec)


def test_multi_grid_folder_files_stand_alone(tricky: Recording, tmp_path: Path,
                                             container: str) -> None:
    out = Path(_write(tricky, str(tmp_path), container))
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [g["key"] for g in manifest["grids"]] == ["1000.5hz", "100hz", "slow"]
    for g in manifest["grids"]:  # each grid file is a complete single-grid archive
        alone = read_archive(out / g["file"])
        assert alone.labels == g["labels"]
        assert_recordings_equal(alone, tricky.select(g["labels"]))


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_sample(tmp_path: Path, container: str, n: int) -> None:
    rec = Recording({"source_file": "x"})
    rec.add_channels(["a", "b"], np.arange(2 * n, dtype=np.float32).reshape(2, n), 512.0)
    rec.add_channel("c", np.ones(n, np.int16), 64.0)
    rec.add_event(0.0, 0.0, "only")
    assert_recordings_equal(Recording.from_file(_write(rec, str(tmp_path), container)), rec)


def test_zero_channels_with_events(tmp_path: Path, container: str) -> None:
    rec = Recording({"source_file": "annotations.edf", "source_format": "edf"})
    rec.add_events(np.arange(5.0), 1.0, [f"e{i}" for i in range(5)])
    out = Path(_write(rec, str(tmp_path), container))
    assert out.is_file()
    back = Recording.from_file(out)
    assert back.n_channels == 0
    assert_recordings_equal(back, rec)


def test_empty_recording(tmp_path: Path, container: str) -> None:
    rec = Recording()
    assert_recordings_equal(Recording.from_file(_write(rec, str(tmp_path), container)), rec)


def test_ten_thousand_events_all_columns(tmp_path: Path, container: str) -> None:
    rec = synthetic_recording(n_channels=2, n_events=0)
    rng = np.random.default_rng(3)
    n = 10_000
    dur = rng.random(n)
    dur[::7] = np.nan
    rec.add_events(np.sort(rng.random(n) * 2), dur, [f"ev{i % 13}" for i in range(n)],
                   channel=[f"EEG00{i % 2 + 1}" for i in range(n)],
                   sample=np.arange(n, dtype=np.int64), value=rng.standard_normal(n),
                   flag=np.arange(n) % 2 == 0)
    back = Recording.from_file(_write(rec, str(tmp_path), container))
    assert_recordings_equal(back, rec)
    assert back.events["flag"].dtype == bool


def test_events_with_missing_extra_values(tmp_path: Path, container: str) -> None:
    rec = synthetic_recording(n_channels=1, n_events=0)
    rec.add_event(0.1, 0.0, "a")
    rec.add_event(0.2, np.inf, "b", note="only here")
    assert_recordings_equal(Recording.from_file(_write(rec, str(tmp_path), container)), rec)


@pytest.mark.parametrize(("channels", "tmin", "tmax"), [
    (None, 2.0, 3.5),
    (["f32", "acc_x"], None, 2.2),
    (["i32", "Fp1"], 1.9, None),
    (["Ünïcødé µV"], 100.0, 200.0),
    (["TRIG"], 0.0, 0.5),
])
def test_subset_read_equals_select(tricky: Recording, where: str, container: str,
                                   channels: list[str] | None, tmin: float | None,
                                   tmax: float | None) -> None:
    out = _write(tricky, where, container)
    got = Recording.from_file(out, channels=channels, tmin=tmin, tmax=tmax)
    assert_recordings_equal(got, tricky.select(channels, tmin, tmax))
    assert_recordings_equal(read_archive(out, channels, tmin, tmax),
                            tricky.select(channels, tmin, tmax))


def test_unknown_channel_is_refused(tmp_path: Path) -> None:
    out = synthetic_recording().to_parquet(tmp_path / "r.parquet")
    with pytest.raises(KeyError, match="nope"):
        read_archive(out, channels=["nope"])


def test_time_range_reads_only_its_row_groups(tmp_path: Path, container: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rec = synthetic_recording(n_channels=3, seconds=10.0, fs=1000.0)
    out = WRITERS[container](rec, tmp_path / f"r.{container}", chunk_rows=1000)
    if container == "parquet":
        meta = pq.ParquetFile(out).metadata
        assert meta.num_row_groups == 10
        stats = meta.row_group(3).column(meta.num_columns - 1).statistics
        assert (stats.min, stats.max) == (3.0, 3.999)  # time predicates can prune
    seen: list[int] = []
    original = archive_read._Source.read_chunk

    def spy(self, handle, i, columns):  # type: ignore[no-untyped-def]
        seen.append(i)
        return original(self, handle, i, columns)

    monkeypatch.setattr(archive_read._Source, "read_chunk", spy)
    got = read_archive(out, ["EEG002"], tmin=3.5, tmax=5.2)
    assert sorted(seen) == [3, 4, 5]
    assert_recordings_equal(got, rec.select(["EEG002"], 3.5, 5.2))


def test_parquet_layout_is_an_ordinary_table(tmp_path: Path) -> None:
    rec = synthetic_recording(n_channels=2, seconds=1.0)
    out = rec.to_parquet(tmp_path / "r.parquet")
    pf = pq.ParquetFile(out)
    assert pf.schema_arrow.names == ["EEG001", "EEG002", "time"]
    frame = pf.read().to_pandas()  # pandas metadata restores the float64 time index
    assert frame.index.name == "time"
    np.testing.assert_array_equal(frame.index.to_numpy(), np.arange(1000) / 1000.0)
    meta = json.loads(pf.schema_arrow.metadata[b"biosigio"])
    assert (meta["format"], meta["version"]) == ("biosigio-tabular", 1)
    assert set(meta) >= {"metadata", "channels", "events"}
    col = pf.metadata.row_group(0).column(0)
    assert "RLE_DICTIONARY" not in col.encodings


def test_uncompressed_arrow_is_memory_mappable(tmp_path: Path) -> None:
    rec = synthetic_recording(n_channels=2)
    out = write_arrow(rec, tmp_path / "r.arrow", compression=None)
    with pa.memory_map(out) as source:
        table = pa.ipc.open_file(source).read_all()
        assert table.column(0).chunk(0).buffers()[1].address != 0
    assert_recordings_equal(Recording.from_file(out), rec)


# ------------------------------------------------------------------------ writes and errors
def test_existing_target_needs_overwrite(tmp_path: Path, container: str) -> None:
    rec = synthetic_recording(extra_rates=(250.0,))
    out = _write(rec, str(tmp_path), container)
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        _write(rec, str(tmp_path), container)
    single = synthetic_recording(n_channels=1)
    _write(single, str(tmp_path), container, overwrite=True)  # a folder replaced by a file
    assert Path(out).is_file()
    assert_recordings_equal(Recording.from_file(out), single)


def test_failed_write_leaves_nothing(tmp_path: Path, container: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from biosigio_lib.archive import tabular as writer

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setitem(writer._WRITERS, container, boom)
    with pytest.raises(OSError, match="disk full"):
        _write(synthetic_recording(extra_rates=(100.0,)), str(tmp_path), container)
    assert list(tmp_path.iterdir()) == []


def test_plain_parquet_without_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0]}), path)
    with pytest.raises(ArchiveFormatError, match=r"plain\.parquet.*no 'biosigio' metadata"):
        Recording.from_file(path)


def test_wrong_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v9.parquet"
    blob = json.dumps({"format": "biosigio-tabular", "version": 9, "metadata": {},
                       "channels": {}, "events": []})
    pq.write_table(pa.table({"x": [1.0]}).replace_schema_metadata({"biosigio": blob}), path)
    with pytest.raises(ArchiveFormatError, match=r"v9\.parquet.*version 9"):
        Recording.from_file(path)


def test_truncated_file_is_a_read_error(tmp_path: Path, container: str) -> None:
    out = Path(_write(synthetic_recording(), str(tmp_path), container))
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileReadError, match=out.name) as info:
        Recording.from_file(out)
    assert isinstance(info.value, TruncatedFileError)


def test_not_a_table_is_an_archive_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"hello, not parquet")
    with pytest.raises(ArchiveFormatError, match=r"fake\.parquet"):
        Recording.from_file(path)
    folder = tmp_path / "dataset.parquet"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"PAR1")
    with pytest.raises(ArchiveFormatError, match=MANIFEST_NAME):
        Recording.from_file(folder)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_compressed_arrow_round_trip_and_subset(tricky: Recording, tmp_path: Path,
                                                compression: str) -> None:
    out = write_arrow(tricky, tmp_path / "c.arrow", compression=compression, chunk_rows=700)
    assert_recordings_equal(Recording.from_file(out), tricky)
    assert_recordings_equal(read_archive(out, ["f32", "Fp1"], 2.0, 3.0),
                            tricky.select(["f32", "Fp1"], 2.0, 3.0))


@pytest.mark.parametrize("options", [{"compression": "zstd", "use_byte_stream_split": True},
                                     {"compression": "none"}])
def test_parquet_options_pass_through(tricky: Recording, tmp_path: Path, options: dict) -> None:
    out = write_parquet(tricky, tmp_path / "o.parquet", chunk_rows=512, **options)
    assert_recordings_equal(Recording.from_file(out), tricky)
