"""What the asset checks verify, without Dagster: each function returns evidence, not a bool.

- :func:`diff_recordings`: every difference between two recordings, bit for bit;
- :func:`missing_in_store`: source channels or events a serving store does not carry (events
  compared bit-exactly);
- :func:`level0_reports`: per group, the store's level-0 error against its stated bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from biosigio_lib import Recording

__all__ = ["diff_recordings", "level0_reports", "missing_in_store", "store_inventory"]


def diff_recordings(actual: Recording, expected: Recording, *, limit: int = 50,
                    ignore_metadata_keys: tuple[str, ...] = ()) -> list[str]:
    """Every way ``actual`` differs from ``expected`` (samples bit for bit, dtype and
    calibration too), at most ``limit``: :func:`biosigio_lib.inspection.compare` with the
    expected recording as A and the actual one as B."""
    from biosigio_lib.inspection import compare

    return [d.message for d in compare(expected, actual, 0.0, limit=limit,
                                       ignore_metadata_keys=ignore_metadata_keys)]


def _attrs(url: str, path: str | None, storage_options: Mapping[str, Any] | None
           ) -> dict[str, Any]:
    import zarr

    kw: dict[str, Any] = {"storage_options": dict(storage_options)} if storage_options else {}
    root = zarr.open_group(url, mode="r", **kw)
    node = root if path is None else root[path]
    return dict(node.attrs)


def store_inventory(url: str, storage_options: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The groups, labels and events a store carries (an events-only store has no groups)."""
    from biosigio_lib import serving

    kw: dict[str, Any] = {"storage_options": dict(storage_options)} if storage_options else {}
    groups = list(serving.list_groups(url, **kw))
    labels: list[str] = []
    for g in groups:
        chans = _attrs(url, g, storage_options).get("channels") or []
        labels += [c["label"] if isinstance(c, Mapping) else str(c) for c in chans]
    events = serving.read_events(url, **kw)
    return {"groups": groups, "labels": labels, "events": len(events), "event_frame": events}


def _event_keys(ev: pd.DataFrame) -> pd.DataFrame:
    """Onset and duration as their bits (exact, NaN-safe), the description as text, and the
    occurrence number, so that repeated events are matched one by one."""
    keys = pd.DataFrame({
        "onset": np.ascontiguousarray(ev["onset"].to_numpy(np.float64)).view(np.int64),
        "duration": np.ascontiguousarray(ev["duration"].to_numpy(np.float64)).view(np.int64),
        "description": ev["description"].astype(str).to_numpy(object)})
    keys["occurrence"] = keys.groupby(["onset", "duration", "description"]).cumcount()
    return keys


def _matched_events(source: pd.DataFrame, stored: pd.DataFrame) -> int:
    """How many source events the store holds bit-exactly (onset, duration, description)."""
    if len(source) == 0 or len(stored) == 0:
        return 0
    return len(_event_keys(source).merge(_event_keys(stored), how="inner"))


def _differing_event_columns(source: pd.DataFrame, stored: pd.DataFrame) -> list[str]:
    """Extra event columns of the source the store lacks or holds with other values."""
    extra = [c for c in source.columns if c not in ("onset", "duration", "description")]
    src, got = source.reset_index(drop=True), stored.reset_index(drop=True)
    return [str(c) for c in extra if c not in got.columns or len(src) != len(got)
            or not src[c].astype(object).equals(got[c].astype(object))]


def missing_in_store(rec: Recording, url: str,
                     storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Source channels and events absent from the store (zeros and empty lists when complete).

    Events match bit-exactly on onset, duration and description; ``unexpected_events`` are
    store events the source lacks, ``differing_event_columns`` the extra columns that differ.
    """
    inv = store_inventory(url, storage_options)
    have = set(inv["labels"])
    source, stored = rec.events, inv["event_frame"]
    matched = _matched_events(source, stored)
    return {
        "missing_channels": [c for c in rec.channels if c not in have],
        "source_events": len(source),
        "store_events": inv["events"],
        "missing_events": len(source) - matched,
        "unexpected_events": inv["events"] - matched,
        "differing_event_columns": _differing_event_columns(source, stored),
    }


def _summary(group: str, rep: Mapping[str, Any]) -> dict[str, Any]:
    chans = rep.get("channels") or {}
    diffs = {lab: float(c.get("max_abs_diff", np.nan)) for lab, c in chans.items()}
    worst = max(diffs, key=lambda lab: -np.inf if np.isnan(diffs[lab]) else diffs[lab],
                default=None)
    failing = {lab: {k: _jsonable(v) for k, v in c.items()}
               for lab, c in chans.items() if not c.get("ok", False)}
    return {"group": group, "passed": bool(rep.get("ok")), "channels": len(chans),
            "worst_channel": worst,
            "worst_abs_diff": None if worst is None else diffs[worst],
            "worst_bound": None if worst is None else _jsonable(chans[worst].get("bound")),
            "failing_channels": dict(list(failing.items())[:20])}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def level0_reports(rec: Recording, url: str,
                   storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per group of the store: passed, the worst channel's error and bound, failing channels
    (no rows for a recording without channels and its events-only store)."""
    from biosigio_lib import serving

    kw: dict[str, Any] = {"storage_options": dict(storage_options)} if storage_options else {}
    report = serving.verify_level0(rec, url, None, **kw)
    out = [_summary(g, rep) for g, rep in (report.get("groups") or {}).items()]
    for failure in report.get("failures") or []:
        out.append({"group": str(failure).split(":", 1)[0], "passed": False,
                    "failure": str(failure)})
    if not out and rec.n_channels:  # signal in the source, none in the store
        out.append({"group": None, "passed": False,
                    "failure": f"the store has no signal groups; the source has "
                               f"{rec.n_channels} channels"})
    return out  # empty for an annotation-only recording: nothing to check
