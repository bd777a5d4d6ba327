"""Typed errors for biosigio_lib: one root class, stable ``code`` strings, path in the message.

Each subclass also inherits the builtin a caller would already catch (an existing target is a
``FileExistsError``, a missing extra an ``ImportError``, bad input a ``ValueError``).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "ArchiveFormatError",
    "BiosigIOError",
    "CorruptFileError",
    "DuplicateLabelError",
    "EmptyRecordingError",
    "FileReadError",
    "InvalidChannelError",
    "MissingDependencyError",
    "MissingSidecarError",
    "MixedSamplingRateError",
    "NonFiniteValueError",
    "SourceNotFoundError",
    "StoreExistsError",
    "TruncatedFileError",
    "UnrepresentableValueError",
    "UnsupportedFormatError",
    "WriteError",
]


class BiosigIOError(Exception):
    """Root of every error this library raises on purpose; branch on ``.code``."""

    code = "biosigio_error"

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, **extra: Any):
        self.path = None if path is None else os.fspath(path)
        self.extra = extra
        text = f"{self.path}: {message}" if self.path else message
        super().__init__(text)
        self.message = message


class UnsupportedFormatError(BiosigIOError, ValueError):
    """No importer recognises the file (extension and magic bytes), or the name is unknown."""

    code = "unsupported_format"


class MissingDependencyError(BiosigIOError, ImportError):
    """The importer exists but its optional extra is not installed."""

    code = "missing_dependency"


class FileReadError(BiosigIOError, ValueError):
    """A recognised file could not be read as its format says it should be."""

    code = "file_read_error"


class TruncatedFileError(FileReadError):
    """The file ends before the data its header promises."""

    code = "truncated_file"


class CorruptFileError(FileReadError):
    """A header or record is malformed (bad field, impossible value, unreadable annotation)."""

    code = "corrupt_file"


class ArchiveFormatError(FileReadError):
    """A Parquet/Feather/Zarr file is not a biosigio archive, or of an unknown version."""

    code = "archive_format"


class MissingSidecarError(BiosigIOError, FileNotFoundError):
    """A companion file the format needs (WFDB signal file, BIDS sidecar) is absent."""

    code = "missing_sidecar"


class SourceNotFoundError(BiosigIOError, FileNotFoundError):
    """The file, folder or URL to read does not exist."""

    code = "not_found"


def source_not_found(url: str) -> SourceNotFoundError:
    """The error for a missing input: names it and says what to check."""
    return SourceNotFoundError(
        "no such file or folder; check the path (spelling, working directory, mounted drive) "
        "or, for a URL, the protocol, bucket and storage_options", path=url)


class MixedSamplingRateError(BiosigIOError, ValueError):
    """A single-grid view was asked of a recording whose channels have several rates."""

    code = "mixed_sampling_rate"


class DuplicateLabelError(BiosigIOError, ValueError):
    """A channel label is already present in the recording."""

    code = "duplicate_label"


class InvalidChannelError(BiosigIOError, ValueError):
    """Channel data or parameters are unusable (not 1-D, bad rate, wrong length, empty label)."""

    code = "invalid_channel"


class EmptyRecordingError(BiosigIOError, ValueError):
    """An operation needs samples and the recording (or its selection) has none."""

    code = "empty_recording"


class NonFiniteValueError(BiosigIOError, ValueError):
    """NaN/Inf met where a finite value is required (an event onset, a sampling rate)."""

    code = "non_finite_value"


class UnrepresentableValueError(BiosigIOError, ValueError):
    """A finite value cannot be stored within the bound the output would state (beyond the
    float32 range, or too large to resample without overflow)."""

    code = "unrepresentable_value"


class StoreExistsError(BiosigIOError, FileExistsError):
    """The output target exists and ``overwrite=True`` was not given."""

    code = "target_exists"


class WriteError(BiosigIOError, OSError):
    """Writing an output failed; nothing that reads as complete was left behind."""

    code = "write_error"
