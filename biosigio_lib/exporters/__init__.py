"""Writers to third-party formats (EDF+/BDF+); the lossless archive lives in ``archive``."""

from __future__ import annotations

from .edf import EdfExportReport, write_edf

__all__ = ["EdfExportReport", "write_edf"]
