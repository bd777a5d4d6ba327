"""The lossless archive: biosigio-tabular Parquet and Arrow IPC (Feather v2) files/folders."""

from __future__ import annotations

from ._read import archive_duration, read_location
from ._schema import COMPACT_VERSION, FORMAT, FORMAT_VERSION, MANIFEST_NAME, METADATA_KEY
from .tabular import DEFAULT_CHUNK_ROWS, read_archive, write_arrow, write_parquet

__all__ = [
    "COMPACT_VERSION",
    "DEFAULT_CHUNK_ROWS",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "METADATA_KEY",
    "archive_duration",
    "read_archive",
    "read_location",
    "write_arrow",
    "write_parquet",
]
