"""Spark (local mode) on a compact archive: session start and a per-channel mean in physical
units through ``physical_spark``, next to DuckDB and Polars doing the same in the same run.

    uv run python bench/bench_spark.py [--channels 16] [--seconds 600] [--rate 1000]

The archive (int16 digital values with an EDF calibration) is built untimed under
``bench/_work/spark/``. Spark runs ``local[2]`` with default settings; "cold" is the first
query of the session (JIT, code generation), "warm" the same query again. Prints a markdown
table and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from biosigio_lib import Calibration, Recording
from biosigio_lib.archive.physical import physical_polars, physical_spark, physical_sql

WORK = Path(os.environ.get("BIOSIGIO_BENCH_WORK", Path(__file__).resolve().parent / "_work"))


def build(channels: int, seconds: float, rate: float) -> str:
    """A compact single-grid Parquet archive (written once, reused)."""
    out = WORK / "spark" / f"c{channels}_{seconds:g}s_{rate:g}hz.parquet"
    if out.exists():
        return str(out)
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    dig = np.cumsum(rng.integers(-40, 41, (channels, n)), axis=1).clip(-32768, 32767)
    rec = Recording()
    rec.add_channels([f"EEG{i:03d}" for i in range(channels)], dig.astype(np.int16), rate,
                     "uV", "EEG", calibration=Calibration.edf(-3276.8, 3276.7, -32768, 32767))
    return rec.to_parquet(out)


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    args = ap.parse_args()
    path = build(args.channels, args.seconds, args.rate)
    labels = [f"EEG{i:03d}" for i in range(args.channels)]
    load0 = os.getloadavg()

    import duckdb
    import polars as pl
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    rows: list[tuple[str, float]] = []
    t, spark = timed(lambda: SparkSession.builder.master("local[2]")
                     .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rows.append(("Spark session start (local[2])", t))

    def spark_mean(reader: str) -> list[float]:
        frame = physical_spark(spark, path, reader=reader)
        return list(frame.agg(*[F.avg(F.col(c)) for c in labels]).collect()[0])

    rows.append(("Spark physical_spark mean, cold", timed(lambda: spark_mean("spark"))[0]))
    t, ref = timed(lambda: spark_mean("spark"))
    rows.append(("Spark physical_spark mean, warm", t))
    t, via_arrow = timed(lambda: spark_mean("arrow"))
    rows.append(("Spark physical_spark(reader='arrow') mean, warm", t))
    sql = f"SELECT {', '.join(f'avg({c})' for c in labels)} FROM ({physical_sql(path)})"
    t, dd = timed(lambda: duckdb.sql(sql).fetchall()[0])
    rows.append(("DuckDB physical_sql mean", t))
    t, pp = timed(lambda: physical_polars(path).select(
        [pl.col(c).mean() for c in labels]).collect().row(0))
    rows.append(("Polars physical_polars mean", t))
    spark.stop()
    load1 = os.getloadavg()
    worst = max(abs(a - b) for x in (via_arrow, dd, pp) for a, b in zip(ref, x))
    n = int(args.seconds * args.rate)
    print(f"{args.channels} ch x {n} samples int16 ({args.channels * n / 1e6:.1f} M values), "
          f"{Path(path).stat().st_size / 2**20:.1f} MiB Parquet")
    print("| operation | wall s |\n|---|---:|")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} |")
    print(f"means agree across engines within {worst:.1e} (summation order differs)")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f}, after {load1[0]:.2f} {load1[1]:.2f}")


if __name__ == "__main__":
    main()
