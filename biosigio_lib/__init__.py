"""biosigio_lib: biosignal recordings, their importers, and lossless/serving writers.

No Dagster in here: the pipeline package builds on this library.
"""

from __future__ import annotations

import os
from typing import Any

from . import errors
from .calibration import Calibration
from .channels import modality_for
from .errors import (
    ArchiveFormatError,
    BiosigIOError,
    CorruptFileError,
    DuplicateLabelError,
    EmptyRecordingError,
    FileReadError,
    InvalidChannelError,
    MissingDependencyError,
    MissingSidecarError,
    MixedSamplingRateError,
    NonFiniteValueError,
    SourceNotFoundError,
    StoreExistsError,
    TruncatedFileError,
    UnrepresentableValueError,
    UnsupportedFormatError,
    WriteError,
)
from .recording import Grid, Recording, make_unique_labels

__version__ = "0.1.0"


def from_file(path: str | os.PathLike[str], importer: str | None = None,
              group: str | None = None, **kwargs: Any) -> Recording:
    """Module-level alias of :meth:`Recording.from_file`."""
    return Recording.from_file(path, importer=importer, group=group, **kwargs)


__all__ = [
    "ArchiveFormatError",
    "BiosigIOError",
    "Calibration",
    "CorruptFileError",
    "DuplicateLabelError",
    "EmptyRecordingError",
    "FileReadError",
    "Grid",
    "InvalidChannelError",
    "MissingDependencyError",
    "MissingSidecarError",
    "MixedSamplingRateError",
    "NonFiniteValueError",
    "Recording",
    "SourceNotFoundError",
    "StoreExistsError",
    "TruncatedFileError",
    "UnrepresentableValueError",
    "UnsupportedFormatError",
    "WriteError",
    "errors",
    "from_file",
    "make_unique_labels",
    "modality_for",
]
