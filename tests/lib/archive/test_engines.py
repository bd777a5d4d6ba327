"""DuckDB and Polars read the Parquet archive as an ordinary table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.archive import MANIFEST_NAME
from biosigio_lib.testing import synthetic_recording


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
