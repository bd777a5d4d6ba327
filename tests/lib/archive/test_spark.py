"""PySpark (local mode) reads the archive as a table with physical units: a single file, a
multi-rate folder, Feather, real EDF/BDF/WFDB conversions and archives on a real S3-compatible
server, bit-identical to :meth:`Recording.channel_data` (``physical_spark``)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biosigio_lib import Calibration, Recording
from biosigio_lib.archive import read_archive
from biosigio_lib.archive.physical import physical_polars, physical_spark, s3a_location
from biosigio_lib.errors import DuplicateLabelError, MissingDependencyError
from biosigio_lib.testing import synthetic_recording
from tests.conftest import S3Server
from tests.lib.archive.test_engines import _multi_compact, _multi_float

pytestmark = pytest.mark.spark


def _java_major() -> int | None:
    """The major version of the Java that Spark would start (JAVA_HOME, else PATH)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    if java is None or not Path(java).exists():
        return None
    text = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One small local Spark session for the module (1 core, no UI, 1 shuffle partition)."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (uv sync installs the dev group)")
    major = _java_major()
    if major is None or major < 17:
        pytest.skip(f"Spark needs Java 17+ (found: {major or 'none'}); set JAVA_HOME or put "
                    "java on PATH")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("biosigio-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.default.parallelism", "1")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               # a short-lived test JVM: C1 only and the serial GC roughly halve start-up
               # and first-query time on a loaded 2-core machine
               .config("spark.driver.extraJavaOptions",
                       "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def _collect(frame: Any) -> dict[str, np.ndarray]:
    """A Spark frame's columns as numpy (nulls as NaN; strings as objects)."""
    table = frame.toArrow()
    return {name: table.column(name).to_numpy(zero_copy_only=False)
            for name in table.column_names}


def _check_grid(rec: Recording, cols: dict[str, np.ndarray], labels: list[str],
                rows: np.ndarray | None = None) -> None:
    """Rows of one grid, put in time order: times are the grid's, values bit-identical."""
    rows = np.ones(len(cols["time"]), bool) if rows is None else rows
    times = cols["time"][rows]
    order = np.argsort(times, kind="stable")
    assert times[order].tobytes() == rec.grid_of(labels[0]).times.tobytes()
    for lab in labels:
        want = rec.channel_data(lab)
        got = cols[lab][rows][order]
        assert got.astype(want.dtype).tobytes() == want.tobytes(), lab


def _check_whole(rec: Recording, frame: Any, grid_col: str = "grid") -> None:
    """A whole-folder frame: a grid column first, then time and the channels in order."""
    assert frame.columns == [grid_col, "time", *rec.labels]
    cols = _collect(frame)
    keys = cols[grid_col].astype(str)
    assert sorted(set(keys)) == sorted(rec.grids)
    for key, g in rec.grids.items():
        rows = keys == key
        _check_grid(rec, cols, list(g.labels), rows)
        for lab in rec.labels:
            if lab not in g.labels:  # other grids' channels are null here
                assert np.isnan(cols[lab][rows].astype(np.float64)).all(), (key, lab)


# ------------------------------------------------------------------------ local archives
def test_a_compact_file_gives_physical_values_and_time(spark: Any, tmp_path: Path) -> None:
    rec = Recording()
    rng = np.random.default_rng(3)
    dig = rng.integers(-2000, 2000, (3, 2001)).astype(np.int16)
    dig[2, 11] = -32768
    rec.add_channels(["_metadata", "b.dot", "Ünï time"], dig, 1000.5, "uV", "EEG", t0=0.375,
                     calibration=[Calibration.edf(-3276.8, 3276.7, -32768, 32767),
                                  Calibration(gain=0.1, baseline=-3.0),
                                  Calibration.wfdb(200.3, 1024, -32768)])
    # Spark globs the paths it reads: a folder named like a glob is read literally
    out = rec.to_parquet(tmp_path / "run[1] {a,b}?" / "c.parquet", chunk_rows=500)
    frame = physical_spark(spark, out)
    assert frame.columns == ["time", *rec.labels]
    assert [f.dataType.typeName() for f in frame.schema.fields] == ["double"] * 4
    cols = _collect(frame)
    _check_grid(rec, cols, rec.labels)
    assert np.isnan(cols["Ünï time"][np.argsort(cols["time"])][11])
    # the same values the other engines give
    pl_frame = physical_polars(out).collect()
    order = np.argsort(cols["time"])
    for lab in rec.labels:
        assert cols[lab][order].tobytes() == pl_frame[lab].to_numpy().tobytes(), lab


def test_spark_sql_filters_by_time(spark: Any, tmp_path: Path) -> None:
    rec = synthetic_recording(n_channels=2, seconds=4.0, fs=250.0)
    out = rec.to_parquet(tmp_path / "f.parquet")
    physical_spark(spark, out).createOrReplaceTempView("rec")
    rows = _collect(spark.sql("select time, EEG002 from rec where time >= 1.0 and time < 1.5 "
                              "order by time"))
    assert rows["time"].tobytes() == (np.arange(250, 375) / 250.0).tobytes()
    assert rows["EEG002"].tobytes() == rec.channel_data("EEG002")[250:375].tobytes()


def test_a_float_folder_passes_through(spark: Any, tmp_path: Path) -> None:
    rec = _multi_float()
    out = rec.to_parquet(tmp_path / "float.parquet", chunk_rows=300)
    _check_whole(rec, physical_spark(spark, out))
    one = physical_spark(spark, out, grid="100.5hz")
    assert one.columns == ["time", "acc", "TRIG"]
    assert one.schema["TRIG"].dataType.typeName() == "short"


@pytest.mark.parametrize("container", ["parquet", "arrow"])
def test_a_compact_folder_gives_every_grid(spark: Any, tmp_path: Path, container: str) -> None:
    rec = _multi_compact()
    out = getattr(rec, f"to_{container}")(tmp_path / f"c.{container}")
    _check_whole(rec, physical_spark(spark, out))
    if container == "parquet":
        _check_grid(rec, _collect(physical_spark(spark, out, grid="20.5hz")), ["S"])


def test_labels_differing_in_case_need_a_case_sensitive_session(spark: Any,
                                                                tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channels(["eeg", "EEG"], np.zeros((2, 8), np.int16), 8.0,
                     calibration=Calibration(gain=0.5))
    out = rec.to_parquet(tmp_path / "case.parquet")
    with pytest.raises(DuplicateLabelError, match="caseSensitive"):
        physical_spark(spark, out)
    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        cols = _collect(physical_spark(spark, out))
    finally:
        spark.conf.set("spark.sql.caseSensitive", "false")
    assert cols["EEG"].tobytes() == rec.channel_data("EEG").tobytes()


# ------------------------------------------------------------ real EDF / BDF / WFDB files
@pytest.mark.real_data
@pytest.mark.parametrize("name", ["edf/chtypes_edf.edf",  # 42 signals, mixed units
                                  "bdf/test_generator.bdf",  # 24-bit, 5 rates: a folder
                                  "wfdb/test01_00s.hea"])  # WFDB: divide by the ADC gain
def test_real_recordings_give_channel_data(spark: Any, real_data: Path, tmp_path: Path,
                                           name: str) -> None:
    if name.startswith("wfdb") and importlib.util.find_spec("wfdb") is None:
        pytest.skip("wfdb is not installed")
    if name.startswith(("edf", "bdf")) and importlib.util.find_spec("pyedflib") is None:
        pytest.skip("pyedflib is not installed")
    out = Recording.from_file(real_data / name).to_parquet(tmp_path / "real.parquet")
    rec = read_archive(out)
    assert rec.is_calibrated  # a compact (version 2) archive: Spark applies the calibration
    frame = physical_spark(spark, out)
    if len(rec.grids) > 1:
        _check_whole(rec, frame)
    else:
        _check_grid(rec, _collect(frame), rec.labels)


# ------------------------------------------------------------------------- S3 (moto)
def test_s3_archives_are_read_through_arrow(spark: Any, s3_server: S3Server) -> None:
    one = Recording()
    one.add_channels(["A", "B"], np.arange(-500, 500, dtype=np.int16).reshape(2, 500), 200.5,
                     calibration=[Calibration.wfdb(200.3, 12, -32768),
                                  Calibration(gain=0.25, baseline=1.0)], t0=2.0)
    url = one.to_parquet(s3_server.url("one.parquet"),
                         storage_options=s3_server.storage_options)
    cols = _collect(physical_spark(spark, url, storage_options=s3_server.storage_options))
    _check_grid(one, cols, one.labels)
    multi = _multi_compact()
    folder = multi.to_parquet(s3_server.url("multi.parquet"),
                              storage_options=s3_server.storage_options)
    _check_whole(multi, physical_spark(spark, folder,
                                       storage_options=s3_server.storage_options))


def test_s3a_needs_hadoop_aws_on_the_classpath(spark: Any, s3_server: S3Server) -> None:
    from biosigio_lib.archive.physical import _spark_has_s3a

    if _spark_has_s3a(spark):
        pytest.skip("hadoop-aws is on Spark's classpath here")
    url = synthetic_recording(n_channels=1, seconds=1.0).to_parquet(
        s3_server.url("x.parquet"), storage_options=s3_server.storage_options)
    with pytest.raises(MissingDependencyError, match="hadoop-aws") as info:
        physical_spark(spark, url, storage_options=s3_server.storage_options, reader="spark")
    assert isinstance(info.value, ImportError)


def test_s3a_location_maps_fsspec_options() -> None:
    opts = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9",
                                                         "region_name": "eu-west-1"}}
    url, hadoop = s3a_location("s3://bucket/a b/x.parquet/grid00_1hz.parquet", opts)
    assert url == "s3a://bucket/a b/x.parquet/grid00_1hz.parquet"
    assert hadoop == {"fs.s3a.access.key": "k", "fs.s3a.secret.key": "s",
                      "fs.s3a.endpoint": "http://127.0.0.1:9",
                      "fs.s3a.path.style.access": "true",
                      "fs.s3a.connection.ssl.enabled": "false",
                      "fs.s3a.endpoint.region": "eu-west-1"}
    assert s3a_location("s3://b/k", {"anon": True})[1] == {
        "fs.s3a.aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"}
    with pytest.raises(ValueError, match="not an S3 URL"):
        s3a_location("gs://b/k")


def test_biosigio_lib_imports_pyspark_only_inside_functions() -> None:
    import ast

    import biosigio_lib.archive.physical as mod

    tree = ast.parse(Path(str(mod.__file__)).read_text())
    for node in tree.body:  # module level, outside ``if TYPE_CHECKING:``
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.startswith("pyspark") for n in names), ast.unparse(node)
