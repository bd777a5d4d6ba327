"""DuckDB, Polars and pandas read the Parquet archive as ordinary tables: a single-grid
file directly, a multi-rate folder through the documented one-liners (docs/archive.md), and
physical units of a compact archive through ``biosigio_lib.archive.physical``."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biosigio_lib import Calibration, Recording
from biosigio_lib.archive import MANIFEST_NAME, read_archive
from biosigio_lib.archive.physical import physical_pandas, physical_polars, physical_sql
from biosigio_lib.errors import ArchiveFormatError
from biosigio_lib.testing import assert_recordings_equal, synthetic_recording


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Recording, str]:
    rec = synthetic_recording(n_channels=3, seconds=5.0, fs=500.0)
    rec.add_channel("Ünï time", np.arange(2500, dtype=np.int16), 500.0, "", "MISC")
    return rec, rec.to_parquet(tmp_path / "rec.parquet", chunk_rows=500)


def test_duckdb_reads_and_filters_by_time(archive: tuple[Recording, str]) -> None:
    duckdb = pytest.importorskip("duckdb")
    rec, path = archive
    rows = duckdb.sql(
        f"select time, EEG002, \"Ünï time\" from '{path}' where time >= 1.0 and time < 1.5 "
        "order by time").fetchnumpy()
    np.testing.assert_array_equal(rows["time"], np.arange(500, 750) / 500.0)
    assert rows["EEG002"].tobytes() == rec.channel_data("EEG002")[500:750].tobytes()
    assert rows["Ünï time"].dtype == np.int16
    ((n,),) = duckdb.sql(f"select count(*) from '{path}'").fetchall()
    assert n == 2500


def test_duckdb_reads_a_grid_file_of_a_folder(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    rec = synthetic_recording(n_channels=2, extra_rates=(250.0,))
    out = Path(rec.to_parquet(tmp_path / "multi.parquet"))
    grid_file = next(p for p in out.iterdir() if p.name != MANIFEST_NAME and "250" in p.name)
    ((n, total),) = duckdb.sql(f"select count(*), sum(AUX1) from '{grid_file}'").fetchall()
    assert n == 500
    assert total == pytest.approx(rec.channel_data("AUX1").sum())


def test_polars_reads_columns_bit_exactly(archive: tuple[Recording, str]) -> None:
    pl = pytest.importorskip("polars")
    rec, path = archive
    frame = pl.read_parquet(path)
    assert frame.columns == [*rec.labels, "time"]
    for label in rec.labels:
        assert frame[label].to_numpy().tobytes() == rec.channel_data(label).tobytes()
    lazy = pl.scan_parquet(path).filter(pl.col("time") >= 4.0).select("EEG001").collect()
    assert lazy.height == 500


# ------------------------------------------------------- multi-rate archive folders
def _multi_float() -> Recording:
    """Two float grids at odd rates, one with t0 != 0, plus an integer channel (version 1)."""
    rec = synthetic_recording(n_channels=2, seconds=2.0, fs=1000.5, n_events=2)
    rec.add_channel("acc", np.random.default_rng(5).standard_normal(201), 100.5, "g", "ACC",
                    t0=0.25)
    rec.add_channel("TRIG", np.arange(201, dtype=np.int16), 100.5, "", "TRIG", t0=0.25)
    return rec


def _multi_compact() -> Recording:
    """Two calibrated grids (EDF- and WFDB-style, one with a missing code, a divide by a gain
    whose reciprocal is inexact) at odd rates with t0 != 0: a version-2 folder."""
    rng = np.random.default_rng(9)
    rec = Recording({"subject": "x"})
    dig = rng.integers(-2000, 2000, (2, 1501)).astype(np.int16)
    dig[1, 7] = -32768
    rec.add_channels(["A", "B"], dig, 1000.5, "uV", "EEG", t0=0.5, calibration=[
        Calibration.edf(-3276.8, 3276.7, -32768, 32767), Calibration.wfdb(200.3, 1024, -32768)])
    rec.add_channels(["S"], rng.integers(0, 2**20, (1, 31)).astype(np.int32), 20.5,
                     calibration=Calibration(gain=2.5e-7, baseline=-8.0), t0=0.125)
    rec.add_events([0.7, 1.2], [0.1, 0.0], ["a", "b"])
    return rec


def _grid_files(folder: str) -> list[Path]:
    """The grid tables of a folder, as the documented globs see them (manifest skipped)."""
    return sorted(Path(folder).glob("*.parquet"))


def _check_long(rec: Recording, columns: dict[str, np.ndarray], grid_col: str = "grid") -> None:
    """A whole-folder table: per grid, times are ``t0 + i / rate`` and values bit-identical
    to ``channel_data``; other grids' channels are null there."""
    keys = np.asarray(columns[grid_col]).astype(str)
    assert sorted(set(keys)) == sorted(rec.grids)
    for key, g in rec.grids.items():
        rows = keys == key
        assert np.asarray(columns["time"])[rows].tobytes() == g.times.tobytes(), key
        for lab in rec.labels:
            col = np.asarray(columns[lab])[rows]
            if lab in g.labels:  # an integer column with nulls elsewhere comes as float
                want = rec.channel_data(lab)
                assert col.astype(want.dtype).tobytes() == want.tobytes(), lab
            else:
                assert np.isnan(col.astype(np.float64)).all(), lab


@pytest.fixture
def float_folder(tmp_path: Path) -> tuple[Recording, str]:
    rec = _multi_float()
    return rec, rec.to_parquet(tmp_path / "float.parquet", chunk_rows=300)


@pytest.fixture
def compact_folder(tmp_path: Path) -> tuple[Recording, str]:
    rec = _multi_compact()
    return rec, rec.to_parquet(tmp_path / "compact.parquet", chunk_rows=300)


def test_folder_layout_is_grid_files_plus_the_manifest(
        float_folder: tuple[Recording, str]) -> None:
    rec, out = float_folder
    names = sorted(p.name for p in Path(out).iterdir())
    assert names == [MANIFEST_NAME, "grid00_1000.5hz.parquet", "grid01_100.5hz.parquet"]
    assert_recordings_equal(read_archive(out), rec)


@pytest.mark.parametrize("pattern", ["*.parquet", "**/*.parquet"])
def test_duckdb_one_liner_reads_a_float_folder(float_folder: tuple[Recording, str],
                                               pattern: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    rec, out = float_folder
    rel = duckdb.sql(f"select * from read_parquet('{out}/{pattern}', union_by_name=true, "
                     "filename=true)")
    assert set(rel.columns) == {*rec.labels, "time", "filename"}
    for path, (key, g) in zip(_grid_files(out), rec.grids.items()):
        rows = rel.filter(f"filename = '{path}'").order("time").fetchnumpy()
        assert rows["time"].tobytes() == g.times.tobytes(), key
        for lab in g.labels:
            assert rows[lab].tobytes() == rec.channel_data(lab).tobytes(), lab
    ((n,),) = rel.aggregate("count(*)").fetchall()
    assert n == sum(g.n_samples for g in rec.grids.values())


def test_polars_one_liner_reads_a_float_folder(float_folder: tuple[Recording, str]) -> None:
    pl = pytest.importorskip("polars")
    rec, out = float_folder
    frame = pl.concat([pl.scan_parquet(f, include_file_paths="file")
                       for f in sorted(glob.glob(f"{out}/*.parquet"))], how="diagonal").collect()
    for path, (key, g) in zip(_grid_files(out), rec.grids.items()):
        part = frame.filter(pl.col("file") == str(path))
        assert part["time"].to_numpy().tobytes() == g.times.tobytes(), key
        for lab in g.labels:
            assert part[lab].to_numpy().tobytes() == rec.channel_data(lab).tobytes(), lab
    assert frame["TRIG"].dtype == pl.Int16


def test_pandas_one_liner_reads_a_float_folder(float_folder: tuple[Recording, str]) -> None:
    rec, out = float_folder
    frame = pd.concat({p.stem: pd.read_parquet(p) for p in sorted(Path(out).glob("*.parquet"))},
                      names=["grid"])
    assert frame.index.names == ["grid", "time"]
    for path, (key, g) in zip(_grid_files(out), rec.grids.items()):
        part = frame.loc[path.stem]
        assert part.index.to_numpy().tobytes() == g.times.tobytes(), key
        for lab in g.labels:
            col = part[lab].to_numpy()
            assert col.astype(rec.channel_data(lab).dtype).tobytes() == \
                rec.channel_data(lab).tobytes(), lab


def test_raw_one_liners_read_a_compact_folder(compact_folder: tuple[Recording, str]) -> None:
    """The same one-liners on a compact folder give the stored digital values."""
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    rec, out = compact_folder
    rel = duckdb.sql(f"select * from read_parquet('{out}/**/*.parquet', union_by_name=true, "
                     "filename=true, file_row_number=true)")
    lazy = pl.concat([pl.scan_parquet(f, include_file_paths="file")
                      for f in sorted(glob.glob(f"{out}/*.parquet"))], how="diagonal")
    frame = pd.concat({p.stem: pd.read_parquet(p) for p in sorted(Path(out).glob("*.parquet"))},
                      names=["grid"])
    polars_frame = lazy.collect()
    for path, g in zip(_grid_files(out), rec.grids.values()):
        rows = rel.filter(f"filename = '{path}'").order("file_row_number").fetchnumpy()
        part = polars_frame.filter(pl.col("file") == str(path))
        for lab in g.labels:
            want = rec.digital_data(lab)
            assert rows[lab].tobytes() == want.tobytes(), lab
            assert part[lab].to_numpy().tobytes() == want.tobytes(), lab
            assert frame.loc[path.stem][lab].to_numpy().astype(want.dtype).tobytes() == \
                want.tobytes(), lab


def test_physical_sql_gives_a_whole_compact_folder(compact_folder: tuple[Recording, str]) -> None:
    duckdb = pytest.importorskip("duckdb")
    rec, out = compact_folder
    rel = duckdb.sql(physical_sql(out))
    assert rel.columns == ["grid", "time", *rec.labels]
    _check_long(rec, {k: np.ma.filled(v.astype(np.float64) if v.dtype.kind != "O" else v,
                                       np.nan) for k, v in rel.fetchnumpy().items()})
    one = duckdb.sql(physical_sql(out, grid="20.5hz")).fetchnumpy()
    assert one["time"].tobytes() == rec.grid("20.5hz").times.tobytes()


@pytest.mark.parametrize("container", ["parquet", "arrow"])
def test_physical_polars_gives_a_whole_compact_folder(tmp_path: Path, container: str) -> None:
    pl = pytest.importorskip("polars")
    rec = _multi_compact()
    out = getattr(rec, f"to_{container}")(tmp_path / f"c.{container}")
    frame = physical_polars(out).collect()
    assert frame.columns == ["grid", "time", *rec.labels]
    _check_long(rec, {c: frame[c].fill_null(float("nan")).to_numpy()
                      if c != "grid" else frame[c].to_numpy() for c in frame.columns})
    one = physical_polars(out, grid="1000.5hz").collect()
    assert one.columns == ["time", "A", "B"]
    assert one["time"].dtype == pl.Float64


def test_physical_pandas_gives_a_whole_compact_folder(
        compact_folder: tuple[Recording, str]) -> None:
    rec, out = compact_folder
    frame = physical_pandas(out)
    assert list(frame.columns) == ["grid", *rec.labels] and frame.index.name == "time"
    _check_long(rec, {"grid": frame["grid"].to_numpy(), "time": frame.index.to_numpy(),
                      **{lab: frame[lab].to_numpy() for lab in rec.labels}})


def test_physical_helpers_pass_a_float_folder_through(
        float_folder: tuple[Recording, str]) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    rec, out = float_folder
    rows = duckdb.sql(physical_sql(out)).fetchnumpy()
    _check_long(rec, {k: np.ma.filled(v.astype(np.float64), np.nan) if v.dtype.kind != "O"
                      else v for k, v in rows.items()})
    frame = physical_polars(out).collect()
    _check_long(rec, {c: frame[c].cast(pl.Float64).fill_null(float("nan")).to_numpy()
                      if c != "grid" else frame[c].to_numpy() for c in frame.columns})


def test_whole_folder_helpers_name_a_missing_manifest(
        float_folder: tuple[Recording, str]) -> None:
    _, out = float_folder
    (Path(out) / MANIFEST_NAME).unlink()
    with pytest.raises(ArchiveFormatError, match=MANIFEST_NAME) as info:
        physical_sql(out)
    assert out in str(info.value)


def test_whole_folder_grid_column_yields_to_a_channel_called_grid(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    rec = Recording()
    cal = Calibration(gain=0.5, baseline=1.0)
    rec.add_channels(["grid"], np.arange(10, dtype=np.int16)[None], 10.0, calibration=[cal])
    rec.add_channels(["x"], np.arange(4, dtype=np.int16)[None], 4.0, calibration=[cal])
    out = rec.to_parquet(tmp_path / "g.parquet")
    want = ["_grid_", "time", "grid", "x"]
    assert duckdb.sql(physical_sql(out)).columns == want
    assert physical_polars(out).collect().columns == want
    frame = physical_pandas(out)
    assert list(frame.columns) == ["_grid_", "grid", "x"]
    assert frame["grid"].dropna().to_numpy().tobytes() == rec.channel_data("grid").tobytes()
