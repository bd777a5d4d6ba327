"""Where the pipeline reads and writes, and its serving parameters, resolved late.

Everything here is read when a function is called (never at import), so definitions built in
a function pick up the environment of the process that loads them:

- ``BIOSIGIO_HOME``: the project folder holding ``.biosigio/`` (default: the working folder);
- ``BIOSIGIO_STORAGE_ROOT``: where outputs go (default ``<home>/.biosigio/storage``; any
  fsspec URL);
- ``BIOSIGIO_SOURCE_ROOTS``: ``;``-separated source roots (default ``<home>/.biosigio/sources``);
- ``BIOSIGIO_VIEWER_URL``: where ``biosigio-pipeline view <storage root>`` serves (the
  store assets then link to their page in the Dagster UI);
- ``BIOSIGIO_SERVING_PARAMS``: JSON text, or the path of a JSON file, with ServingParams
  fields; else ``<home>/biosigio_serving.json`` when present; else the library defaults;
- ``BIOSIGIO_STORAGE_OPTIONS`` / ``BIOSIGIO_SOURCE_OPTIONS``: JSON objects of fsspec options
  for a URL storage root / URL source roots (e.g. an S3 endpoint; credentials are better left
  to the usual ``AWS_*`` variables, which s3fs reads itself);
- ``BIOSIGIO_SENSOR_INTERVAL``: seconds between sensor ticks (default 60);
- ``BIOSIGIO_HEAVY_BYTES``: recordings at least this large run with the tag
  ``biosigio/weight=heavy`` (others ``light``), which the run queue can limit (default 256 MiB);
- ``BIOSIGIO_BACKFILL_BATCH``: partitions per run when a backfill rebuilds many archives or
  stores (their ``BackfillPolicy.multi_run``; default 25, 1 = one run per partition);
- ``BIOSIGIO_EXECUTOR``: ``in_process`` (default), ``multiprocess`` or ``celery``; the Celery
  executor reads ``BIOSIGIO_CELERY_BROKER`` and ``BIOSIGIO_CELERY_BACKEND`` (default: the
  broker) when a run starts (see docs/deploy.md);
- ``DAGSTER_EVENT_BATCH_SIZE`` (Dagster's own): :func:`batch_event_writes` sets it to
  :data:`EVENT_BATCH_SIZE` unless it is set, so that a batched run stores its partitions'
  materializations in one statement on PostgreSQL (0 turns that off).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biosigio_lib.serving import ServingParams

__all__ = [
    "DEFAULT_BACKFILL_BATCH",
    "EVENT_BATCH_SIZE",
    "EXECUTORS",
    "PARAMS_FILE",
    "automation_interval",
    "backfill_batch",
    "batch_event_writes",
    "dagster_home",
    "default_source_roots",
    "default_storage_root",
    "executor_name",
    "heavy_bytes",
    "json_options",
    "load_serving_params",
    "project_dir",
    "sensor_interval",
    "viewer_url",
]

PARAMS_FILE = "biosigio_serving.json"
EXECUTORS = ("in_process", "multiprocess", "celery")


def project_dir() -> Path:
    """The project folder: ``$BIOSIGIO_HOME`` or the current working folder."""
    return Path(os.environ.get("BIOSIGIO_HOME") or os.getcwd()).absolute()


def state_dir() -> Path:
    """``<project>/.biosigio``: local pipeline state and outputs (gitignored)."""
    return project_dir() / ".biosigio"


def default_storage_root() -> str:
    """The output root: ``$BIOSIGIO_STORAGE_ROOT`` or ``<project>/.biosigio/storage``."""
    return os.environ.get("BIOSIGIO_STORAGE_ROOT") or str(state_dir() / "storage")


def default_source_roots() -> list[str]:
    """The source roots: ``$BIOSIGIO_SOURCE_ROOTS`` (``;``-separated) or the demo folder."""
    text = os.environ.get("BIOSIGIO_SOURCE_ROOTS")
    if text:
        return [r.strip() for r in text.split(";") if r.strip()]
    return [str(state_dir() / "sources")]


def dagster_home() -> Path:
    """``$DAGSTER_HOME`` or ``<project>/.biosigio/dagster_home`` (SQLite storage)."""
    return Path(os.environ.get("DAGSTER_HOME") or state_dir() / "dagster_home").absolute()


def _params_source() -> tuple[dict[str, Any] | None, str]:
    text = os.environ.get("BIOSIGIO_SERVING_PARAMS", "").strip()
    if text.startswith("{"):
        return json.loads(text), "$BIOSIGIO_SERVING_PARAMS"
    if text:
        return json.loads(Path(text).read_text()), text
    path = project_dir() / PARAMS_FILE
    if path.is_file():
        return json.loads(path.read_text()), str(path)
    return None, "defaults"


def load_serving_params(overrides: dict[str, Any] | None = None) -> ServingParams:
    """The serving parameters from the environment/config file, with ``overrides`` on top."""
    from biosigio_lib.serving import ServingParams

    data, _ = _params_source()
    merged = {**(data or {}), **(overrides or {})}
    return ServingParams.from_dict(merged) if merged else ServingParams()


def serving_params_origin() -> str:
    """Where :func:`load_serving_params` takes its values from (for logs and the UI)."""
    return _params_source()[1]


def viewer_url() -> str | None:
    """``$BIOSIGIO_VIEWER_URL``: the base URL of a viewer serving the storage root, or None."""
    return os.environ.get("BIOSIGIO_VIEWER_URL", "").strip() or None


def json_options(name: str) -> dict[str, Any]:
    """The JSON object in environment variable ``name`` (fsspec options), or ``{}``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"${name} must be a JSON object, not {text[:60]!r}")
    return value


def sensor_interval() -> int:
    """``$BIOSIGIO_SENSOR_INTERVAL``: the sensor's minimum seconds between ticks (60)."""
    return max(1, int(os.environ.get("BIOSIGIO_SENSOR_INTERVAL") or 60))


def automation_interval() -> int:
    """``$BIOSIGIO_AUTOMATION_INTERVAL``: seconds between evaluations of the store's
    automation condition (30)."""
    return max(1, int(os.environ.get("BIOSIGIO_AUTOMATION_INTERVAL") or 30))


def heavy_bytes() -> int:
    """``$BIOSIGIO_HEAVY_BYTES``: the size from which a conversion is tagged heavy (256 MiB)."""
    return int(os.environ.get("BIOSIGIO_HEAVY_BYTES") or 256 * 2**20)


#: Partitions per backfill run by default: enough that per-run overhead does not dominate
#: small recordings, few enough that a failing run or a restart loses little.
DEFAULT_BACKFILL_BATCH = 25


def backfill_batch() -> int:
    """``$BIOSIGIO_BACKFILL_BATCH``: partitions per backfill run (25; at least 1)."""
    text = (os.environ.get("BIOSIGIO_BACKFILL_BATCH") or "").strip()
    try:
        value = int(text) if text else DEFAULT_BACKFILL_BATCH
    except ValueError:
        raise ValueError(f"$BIOSIGIO_BACKFILL_BATCH must be a whole number, not {text!r}") from None
    if value < 1:
        raise ValueError(f"$BIOSIGIO_BACKFILL_BATCH must be at least 1, not {value}")
    return value


#: Events per write when Dagster batches them: more than a batched run's partitions.
EVENT_BATCH_SIZE = 1000


def batch_event_writes() -> int:
    """Let Dagster write the materializations of a batched run's partitions in one batch
    (``$DAGSTER_EVENT_BATCH_SIZE``, set to :data:`EVENT_BATCH_SIZE` unless already set): one
    insert and one index transaction per step on PostgreSQL, instead of one of each per
    partition. Returns the size in effect."""
    text = (os.environ.get("DAGSTER_EVENT_BATCH_SIZE") or "").strip()
    if not text:  # unset or blank (Dagster itself would fail on a blank value)
        text = os.environ["DAGSTER_EVENT_BATCH_SIZE"] = str(EVENT_BATCH_SIZE)
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"$DAGSTER_EVENT_BATCH_SIZE must be a whole number, not {text!r}") from None


def executor_name() -> str:
    """``$BIOSIGIO_EXECUTOR``: one of :data:`EXECUTORS` (``in_process`` by default)."""
    name = (os.environ.get("BIOSIGIO_EXECUTOR") or "in_process").strip().replace("-", "_")
    if name not in EXECUTORS:
        raise ValueError(f"$BIOSIGIO_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {name!r}")
    return name
