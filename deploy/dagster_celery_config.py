"""Celery settings of the biosigio workers: ``dagster_celery.app`` imports this module when it
is on the worker's path (``PYTHONPATH``; docs/deploy.md).

A step's task is acknowledged only when it finished (``task_acks_late``), so a worker killed in
the middle of a step leaves it unacknowledged: Redis hands it to another worker after
``visibility_timeout`` seconds ($BIOSIGIO_CELERY_VISIBILITY_TIMEOUT, 3600 by default), which
must be longer than the longest step (else a slow step would also run twice). Outputs are
written atomically, so the killed attempt leaves nothing half-written behind.
"""

import os

_VISIBILITY = int(os.environ.get("BIOSIGIO_CELERY_VISIBILITY_TIMEOUT", "3600"))

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
broker_transport_options = {
    "visibility_timeout": _VISIBILITY,
    # look for abandoned tasks every few seconds (kombu's default sweep is ~100 s)
    "unacked_restore_interval": max(1, min(10, _VISIBILITY // 3)),
    "unacked_restore_throttle": 1,
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
