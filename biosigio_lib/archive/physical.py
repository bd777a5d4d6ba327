"""Physical units for analytics engines reading a compact archive as a plain table.

A compact (version 2) table stores a digitized channel as its integers; the calibration and
the grid's rate and start are in the schema metadata. These helpers turn that metadata into
a query each engine runs itself, giving physical float64 values bit-identical to
:meth:`Recording.channel_data` (same IEEE operations in the same order) and a ``time``
column equal to the grid's ``t0 + i / rate``::

    duckdb.sql(physical_sql("rec.parquet"))            # DuckDB
    physical_polars("rec.parquet").collect()           # Polars (Parquet or Feather)
    physical_pandas("rec.parquet")                     # pandas
    physical_spark(spark, "rec.parquet")               # PySpark (also s3:// URLs)

A version-1 table (float channels) passes through unchanged, with its stored time column.
On a multi-grid archive folder without ``grid=`` each helper gives all grids as one long
table: a ``grid`` column (the grid's name) first, then ``time``, then every channel in the
manifest's order, null where a row's grid lacks the channel (DuckDB ``UNION ALL BY NAME``,
Polars ``pl.concat(how="diagonal")``, pandas ``pd.concat``, Spark ``unionByName``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._fs import Location, resolve
from ..calibration import Calibration
from ..errors import ArchiveFormatError, DuplicateLabelError, MissingDependencyError
from ._schema import COLUMN_LABELS_KEY, parse_blob

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

__all__ = ["TableLayout", "physical_pandas", "physical_polars", "physical_spark", "physical_sql",
           "s3a_location", "table_layout"]


@dataclass(frozen=True)
class TableLayout:
    """What a query needs from one table file: its columns, their calibrations, the grid."""

    path: str
    kind: str  # "parquet" or "arrow"
    columns: list[str]  # channel columns in table order
    labels: dict[str, str]  # column -> channel label (differ only for non-UTF-8 labels)
    calibrations: dict[str, Calibration]  # column -> calibration
    rate: float | None
    t0: float
    time_column: str | None  # the stored time column of a version-1 table


@dataclass(frozen=True)
class _FolderGrid:
    """One grid of an archive folder: its name and its table file."""

    key: str
    path: str  # a local path, or the fsspec URL of a remote file


def _where(loc: Location) -> str:
    """How a layout names a file: its local path, or its URL on an object store."""
    return loc.path if loc.is_local else loc.url


def _folder(path: str, storage_options: Mapping[str, Any] | None = None
            ) -> tuple[list[_FolderGrid], list[str] | None] | None:
    """The grids of an archive folder (manifest order) and its channel order; None for a
    single file. The manifest is checked as the reader checks it (typed errors)."""
    from ._read import _sources

    loc = resolve(path, storage_options)
    if not loc.fs.isdir(loc.path):
        return None
    _, order, entries = _sources(loc)
    grids = [_FolderGrid(str(g.get("key")), _where(loc.child(g["file"]))) for g in entries]
    return grids, order


def _grid_file(path: str, grid: str | None,
               storage_options: Mapping[str, Any] | None = None) -> str:
    folder = _folder(path, storage_options)
    if folder is None:
        return _where(resolve(path, storage_options))
    grids = folder[0]
    if grid is None and len(grids) == 1:
        return grids[0].path
    for g in grids:
        if g.key == grid:
            return g.path
    keys = [g.key for g in grids]
    if grid is None:
        raise ArchiveFormatError(f"a multi-grid archive: pass grid= one of {keys}", path=path)
    raise ArchiveFormatError(f"no grid {grid!r} in this archive: pass grid= one of {keys}, or "
                             "no grid= for all grids in one table", path=path)


def _grid_column(labels: list[str]) -> str:
    """The name of the grid column of a whole-folder table: ``grid`` unless a channel has it."""
    name = "grid"
    while name in labels or name == "time":
        name = f"_{name}_"
    return name


def table_layout(path: str | os.PathLike[str], grid: str | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> TableLayout:
    """Read one table's schema metadata (nothing else) and describe its layout.

    ``path`` is a local path or an fsspec URL (``storage_options`` as for the readers).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = _grid_file(os.fspath(path), grid, storage_options)
    loc = resolve(file, storage_options if "://" in file else None)
    with loc.fs.open(loc.path, "rb") as fh:
        kind = "parquet" if fh.read(4) == b"PAR1" else "arrow"
        fh.seek(0)
        schema = pq.read_schema(fh) if kind == "parquet" else pa.ipc.open_file(fh).schema
    blob = parse_blob(schema.metadata, file)
    ext = blob["extension"]
    time_name = ext.get("time_column")
    skip = {time_name, ext.get("placeholder_column")}
    columns = [n for n in schema.names if n not in skip]
    escaped = ext.get(COLUMN_LABELS_KEY) or {}
    cals = {c: Calibration.from_json(v) for c, v in (ext.get("calibration") or {}).items()}
    g = ext.get("grid") or {}
    return TableLayout(file, kind, columns, {c: str(escaped.get(c, c)) for c in columns}, cals,
                       float(g["rate"]) if "rate" in g else None, float(g.get("t0", 0.0)),
                       time_name)


def _dbl(x: float) -> str:
    """A DuckDB DOUBLE literal that parses to exactly ``x`` (a bare ``0.5`` is a DECIMAL)."""
    return f"'{x!r}'::DOUBLE"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _whole_folder(path: str | os.PathLike[str], grid: str | None,
                  storage_options: Mapping[str, Any] | None = None
                  ) -> tuple[list[Any], list[TableLayout], list[str], str] | None:
    """For a multi-grid folder read whole: its grids, their layouts, the channel order and
    the name of the grid column; None for one file or one grid."""
    folder = _folder(os.fspath(path), storage_options) if grid is None else None
    if folder is None or len(folder[0]) <= 1:
        return None
    grids, order = folder
    lays = [table_layout(g.path, storage_options=storage_options if "://" in g.path else None)
            for g in grids]
    labels = order or [lay.labels[c] for lay in lays for c in lay.columns]
    return grids, lays, labels, _grid_column(labels)


def physical_sql(path: str | os.PathLike[str], grid: str | None = None) -> str:
    """A DuckDB ``SELECT`` over a Parquet archive giving ``time`` and physical values.

    A multi-grid folder without ``grid=`` gives every grid: ``UNION ALL BY NAME`` of the
    grids' selects, with a ``grid`` column first and the channels in the manifest's order.
    """
    whole = _whole_folder(path, grid)
    if whole is not None:
        grids, lays, labels, gcol = whole
        parts = [f"(SELECT {i} AS __biosigio_grid__, {_lit(g.key)} AS {_ident(gcol)}, "
                 f"* FROM ({_grid_sql(lay)}))" for i, (g, lay) in enumerate(zip(grids, lays))]
        cols = ", ".join(_ident(c) for c in [gcol, "time", *labels])
        return (f"SELECT {cols} FROM ({' UNION ALL BY NAME '.join(parts)}) "
                "ORDER BY __biosigio_grid__, __biosigio_row__")
    lay = table_layout(path, grid)
    return (f"SELECT * EXCLUDE (__biosigio_row__) FROM ({_grid_sql(lay)}) "
            "ORDER BY __biosigio_row__")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _grid_sql(lay: TableLayout) -> str:
    """One table's select: its row number (``__biosigio_row__``), time, physical values."""
    if lay.kind != "parquet":
        raise ArchiveFormatError("DuckDB reads the Parquet archive; for Feather use "
                                 "physical_polars()", path=lay.path)
    cols = []
    if lay.time_column is not None:
        cols.append(f"{_ident(lay.time_column)} AS time")
    elif lay.rate is not None:
        t = f"file_row_number::DOUBLE / {_dbl(lay.rate)}"
        cols.append(f"{t} + {_dbl(lay.t0)} AS time" if lay.t0 else f"{t} AS time")
    for c in lay.columns:
        cal = lay.calibrations.get(c)
        expr = _ident(c)
        if cal is not None:
            op = "/" if cal.divide else "*"
            expr = f"({expr}::DOUBLE - {_dbl(cal.baseline)}) {op} {_dbl(cal.gain)}"
            if cal.missing is not None:
                expr = (f"CASE WHEN {_ident(c)} = {cal.missing} THEN 'NaN'::DOUBLE "
                        f"ELSE {expr} END")
        cols.append(f"{expr} AS {_ident(lay.labels[c])}")
    cols.append("file_row_number AS __biosigio_row__")
    return f"SELECT {', '.join(cols)} FROM read_parquet({_lit(lay.path)}, file_row_number = true)"


def physical_polars(path: str | os.PathLike[str], grid: str | None = None) -> pl.LazyFrame:
    """A Polars LazyFrame over a Parquet or Feather archive: ``time`` + physical values.

    A multi-grid folder without ``grid=`` gives every grid: ``pl.concat(how="diagonal")`` of
    the grids' frames, with a ``grid`` column first and the channels in the manifest's order.
    """
    import polars as pl

    whole = _whole_folder(path, grid)
    if whole is not None:
        grids, lays, labels, gcol = whole
        frames = [_grid_polars(lay).select(pl.lit(g.key).alias(gcol), pl.all())
                  for g, lay in zip(grids, lays)]
        return pl.concat(frames, how="diagonal").select([gcol, "time", *labels])
    return _grid_polars(table_layout(path, grid))


def _grid_polars(lay: TableLayout) -> pl.LazyFrame:
    """One table's frame: time and physical values."""
    import polars as pl

    row = "__biosigio_row__"
    # glob=False: the path is a file name, not a pattern (folders may be named "run[1]")
    frame = (pl.scan_parquet(lay.path, row_index_name=row, glob=False) if lay.kind == "parquet"
             else pl.scan_ipc(lay.path, row_index_name=row, glob=False))

    def const(value: float) -> pl.Expr:
        # Polars turns division by a literal into multiplication by its reciprocal, which is
        # not IEEE-identical to numpy's division; a computed constant column keeps true
        # division (and costs one cheap pass).
        return (pl.col(row) * 0).cast(pl.Float64) + value

    exprs: list[Any] = []
    if lay.time_column is not None:
        exprs.append(pl.col(lay.time_column).alias("time"))
    elif lay.rate is not None:
        t = pl.col(row).cast(pl.Float64) / const(lay.rate)
        exprs.append((t + lay.t0 if lay.t0 else t).alias("time"))
    for c in lay.columns:
        cal = lay.calibrations.get(c)
        expr = pl.col(c)
        if cal is not None:
            base = pl.col(c).cast(pl.Float64) - cal.baseline
            expr = base / const(cal.gain) if cal.divide else base * cal.gain
            if cal.missing is not None:
                expr = pl.when(pl.col(c) == cal.missing).then(float("nan")).otherwise(expr)
        exprs.append(expr.alias(lay.labels[c]))
    return frame.select(exprs)


def physical_pandas(path: str | os.PathLike[str], grid: str | None = None) -> pd.DataFrame:
    """A pandas DataFrame of physical values indexed by ``time`` (s), any archive file.

    A multi-grid folder without ``grid=`` gives every grid (``pd.concat``): a ``grid``
    column first, then the channels in the manifest's order, NaN where a row's grid lacks
    the channel (so integer channels of an uncalibrated grid become float64 there).
    """
    import pandas as pd

    from ._read import read_archive

    folder = _folder(os.fspath(path)) if grid is None else None
    if folder is not None and len(folder[0]) > 1:
        rec = read_archive(path)
        gcol = _grid_column(list(rec.channels))
        frames = [g.to_frame() for g in rec.grids.values()]
        for key, frame in zip(rec.grids, frames):
            frame.insert(0, gcol, key)
        return pd.concat(frames)[[gcol, *rec.channels]]
    lay = table_layout(path, grid)
    rec = read_archive(lay.path)
    (g,) = rec.grids.values() if rec.grids else (None,)
    if g is None:
        return pd.DataFrame(index=pd.Index([], name="time"))
    return g.to_frame()


# ------------------------------------------------------------------------------------- Spark
_ROW = "__biosigio_row__"
_S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"


def physical_spark(spark: SparkSession, path: str | os.PathLike[str], grid: str | None = None,
                   storage_options: Mapping[str, Any] | None = None, *,
                   reader: str = "auto") -> SparkDataFrame:
    """A Spark DataFrame over a Parquet or Feather archive: ``time`` + physical values.

    ``path`` is a local path or an fsspec URL (``s3://``, with ``storage_options`` as for the
    readers). ``reader="spark"`` lets Spark read the Parquet files itself (an ``s3://`` URL
    becomes ``s3a://`` with the endpoint and credentials of ``storage_options``; needs
    hadoop-aws on Spark's classpath); ``reader="arrow"`` reads them with pyarrow/fsspec on the
    driver and hands the Arrow table to Spark. ``"auto"``: Spark for local Parquet and for
    ``s3://`` when hadoop-aws is there, Arrow otherwise (and always for Feather). Either way
    Spark computes the physical values. Rows carry their ``time``; like any Spark table they
    have no order (``orderBy("time")`` for one). A multi-grid folder without ``grid=`` gives
    every grid: ``unionByName(allowMissingColumns=True)`` of the grids' frames, with a
    ``grid`` column first and the channels in the manifest's order.
    """
    from pyspark.sql import functions as F

    if reader not in ("auto", "spark", "arrow"):
        raise ValueError(f"reader must be 'auto', 'spark' or 'arrow', not {reader!r}")
    opts = storage_options if "://" in os.fspath(path) else None
    whole = _whole_folder(path, grid, opts)
    if whole is None:
        lay = table_layout(path, grid, opts)
        _check_spark_names(spark, ["time", *lay.labels.values()], lay.path)
        return _grid_spark(spark, lay, opts, reader).drop(_ROW)
    grids, lays, labels, gcol = whole
    _check_spark_names(spark, [gcol, "time", *labels], os.fspath(path))
    frames = [_grid_spark(spark, lay, opts, reader).drop(_ROW)
              .select(F.lit(g.key).alias(gcol), "*") for g, lay in zip(grids, lays)]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out.select([F.col(_spark_name(c)) for c in [gcol, "time", *labels]])


def _spark_name(name: str) -> str:
    """A column reference Spark resolves to exactly ``name`` (dots, spaces, backticks)."""
    return "`" + name.replace("`", "``") + "`"


def _check_spark_names(spark: SparkSession, names: list[str], path: str) -> None:
    """Spark resolves names case-insensitively unless told otherwise: refuse collisions."""
    if str(spark.conf.get("spark.sql.caseSensitive", "false")).lower() == "true":
        return
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise DuplicateLabelError(
                f"columns {other!r} and {name!r} differ only in case, which this Spark "
                "session does not tell apart: set spark.sql.caseSensitive=true", path=path)


def _grid_spark(spark: SparkSession, lay: TableLayout,
                storage_options: Mapping[str, Any] | None, reader: str) -> SparkDataFrame:
    """One table's frame: its row number (``__biosigio_row__``), time, physical values."""
    from pyspark.sql import functions as F

    frame = _spark_source(spark, lay, storage_options, reader)
    exprs: list[Any] = []
    if lay.time_column is not None:
        exprs.append(F.col(_spark_name(lay.time_column)).alias("time"))
    elif lay.rate is not None:  # the grid's t0 + i / rate, as Grid.times (IEEE division)
        t = F.col(_ROW).cast("double") / F.lit(lay.rate)
        exprs.append((t + F.lit(lay.t0) if lay.t0 else t).alias("time"))
    for c in lay.columns:
        cal = lay.calibrations.get(c)
        expr = F.col(_spark_name(c))
        if cal is not None:  # Calibration.apply's operations, in its order
            base = expr.cast("double") - F.lit(cal.baseline)
            expr = base / F.lit(cal.gain) if cal.divide else base * F.lit(cal.gain)
            if cal.missing is not None:
                expr = F.when(F.col(_spark_name(c)) == F.lit(cal.missing),
                              F.lit(float("nan"))).otherwise(expr)
        exprs.append(expr.alias(lay.labels[c]))
    exprs.append(F.col(_ROW))
    return frame.select(exprs)


def _spark_source(spark: SparkSession, lay: TableLayout,
                  storage_options: Mapping[str, Any] | None, reader: str) -> SparkDataFrame:
    """The stored columns of one table plus its row number, read by Spark or via Arrow."""
    remote = "://" in lay.path
    use_spark = reader == "spark" or (reader == "auto" and lay.kind == "parquet" and (
        not remote or _spark_has_s3a(spark)))
    if use_spark and lay.kind != "parquet":
        raise ArchiveFormatError("Spark reads the Parquet archive; for Feather use "
                                 "reader='arrow'", path=lay.path)
    if use_spark:
        url, options = lay.path, dict[str, str]()
        if remote:
            url, options = s3a_location(lay.path, storage_options)
            if not _spark_has_s3a(spark):
                raise MissingDependencyError(
                    f"Spark cannot read {url.partition(':')[0]}:// URLs: hadoop-aws (matching "
                    "Spark's Hadoop) is not on its classpath; add it (spark.jars.packages) or "
                    "use reader='arrow'", path=lay.path)
        frame = spark.read.options(**options).parquet(_hadoop_literal(url))
        # metadataColumn, not col("_metadata"): a channel may be called "_metadata"
        return frame.select("*", frame.metadataColumn("_metadata")
                            .getField("row_index").alias(_ROW))
    return spark.createDataFrame(_arrow_table(lay, storage_options))


def _hadoop_literal(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped: Spark globs the paths it reads."""
    return "".join("\\" + ch if ch in "\\[]{}*?" else ch for ch in path)


def _arrow_table(lay: TableLayout, storage_options: Mapping[str, Any] | None) -> pa.Table:
    """One table's columns read with pyarrow (via fsspec for a URL) plus its row number."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    loc = resolve(lay.path, storage_options if "://" in lay.path else None)
    names = [c for c in [lay.time_column, *lay.columns] if c is not None]
    with loc.fs.open(loc.path, "rb") as fh:
        if lay.kind == "parquet":
            table = pq.read_table(fh, columns=names)
        else:
            table = pa.ipc.open_file(fh).read_all().select(names)
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    return table.replace_schema_metadata(None).append_column(_ROW, rows)


def s3a_location(url: str, storage_options: Mapping[str, Any] | None = None
                 ) -> tuple[str, dict[str, str]]:
    """An ``s3://`` URL as Spark's ``s3a://`` and the Hadoop options for its reader.

    ``storage_options`` are s3fs's (``key``, ``secret``, ``token``, ``anon``, ``endpoint_url``
    or ``client_kwargs={"endpoint_url", "region_name"}``); Spark passes a file source's options
    on to Hadoop, so these apply to this read only.
    """
    scheme, sep, rest = url.partition("://")
    if scheme not in ("s3", "s3a", "s3n") or not sep:
        raise ValueError(f"not an S3 URL: {url!r}")
    opts = dict(storage_options or {})
    client = dict(opts.get("client_kwargs") or {})
    out: dict[str, str] = {}
    if opts.get("key"):
        out["fs.s3a.access.key"] = str(opts["key"])
    if opts.get("secret"):
        out["fs.s3a.secret.key"] = str(opts["secret"])
    if opts.get("token"):
        out["fs.s3a.session.token"] = str(opts["token"])
        out["fs.s3a.aws.credentials.provider"] = \
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    if opts.get("anon"):
        out["fs.s3a.aws.credentials.provider"] = \
            "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"
    endpoint = opts.get("endpoint_url") or client.get("endpoint_url")
    if endpoint:
        out["fs.s3a.endpoint"] = str(endpoint)
        out["fs.s3a.path.style.access"] = "true"  # S3-compatible servers (MinIO, moto, Ceph)
        out["fs.s3a.connection.ssl.enabled"] = str(str(endpoint).startswith("https")).lower()
    region = client.get("region_name") or opts.get("region_name")
    if region:
        out["fs.s3a.endpoint.region"] = str(region)
    return f"s3a://{rest}", out


def _spark_has_s3a(spark: SparkSession) -> bool:
    """Whether Spark's JVM can load the S3A filesystem (hadoop-aws on its classpath)."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:  # Spark Connect: the server decides; let it try
        return True
    try:
        conf = spark._jsc.hadoopConfiguration()
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("s3a", conf)
    except Exception:  # py4j's Java exception (ClassNotFound, UnsupportedFileSystem)
        return False
    return True
