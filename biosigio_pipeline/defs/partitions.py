"""The partitions, declared once: one dynamic partition per source recording.

Keys come from :func:`biosigio_lib.discovery.safe_key`: ``<dataset>__<recording>``, only
``[A-Za-z0-9._-]``; the sensor registers them as it discovers recordings.
"""

from __future__ import annotations

import dagster as dg

__all__ = ["RECORDINGS", "RECORDINGS_NAME"]

RECORDINGS_NAME = "recordings"
RECORDINGS = dg.DynamicPartitionsDefinition(name=RECORDINGS_NAME)
