"""biosigio_pipeline: the Dagster pipeline (and CLI) that turns biosignal datasets into
lossless Parquet/Feather archives and Zarr v3 serving stores, using :mod:`biosigio_lib`."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
