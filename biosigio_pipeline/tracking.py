"""What a sensor tick should do, without Dagster: new, changed and removed recordings.

The cursor remembers, per key, the listing fingerprint (size, mtime) and the checksum. A tick
lists the roots (cheap stats), then checksums at most ``max_per_tick`` recordings whose
fingerprint moved, so a tick stays short however large the roots are; the others wait for the
next tick. A recording is *changed* only when its checksum differs (a touched file is not).
Removed recordings are reported once and forgotten; their partitions and outputs are kept
(nothing the pipeline wrote is deleted because a source went away).

A recording that cannot be read (permission denied, an I/O error, gone between the listing and
the checksum) is reported in ``TickPlan.unreadable`` and skipped; the tick goes on. The cursor
marks it (``err``) so it is tried again on every later tick, after the other recordings (a
fixed permission does not change size or mtime), and never starves them of the tick's budget.
A root that cannot be listed is treated like a missing one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from biosigio_lib.discovery import SourceRecording, checksum, list_sources

__all__ = ["CURSOR_VERSION", "TickPlan", "parse_cursor", "plan_tick", "scan_roots"]

CURSOR_VERSION = 1
log = logging.getLogger(__name__)


@dataclass
class TickPlan:
    """The outcome of one tick: partitions to add, runs to request, removals, next cursor."""

    new: list[SourceRecording] = field(default_factory=list)
    changed: list[SourceRecording] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (key or root, error)
    pending: int = 0  # recordings whose fingerprint moved but wait for a later tick
    cursor: dict[str, Any] = field(default_factory=dict)

    @property
    def to_run(self) -> list[SourceRecording]:
        return [*self.new, *self.changed]


def parse_cursor(text: str | None) -> tuple[dict[str, Any], str | None]:
    """The cursor of the last tick, or ``{}`` and the reason when it cannot be used (corrupt
    JSON, another version): a fresh cursor is safe, already built keys are not rebuilt."""
    if not text:
        return {}, None
    try:
        cur = json.loads(text)
    except ValueError as exc:
        return {}, f"unreadable sensor cursor ({exc}); starting over"
    seen = cur.get("seen") if isinstance(cur, dict) else None
    if not isinstance(cur, dict) or cur.get("v") != CURSOR_VERSION or not isinstance(seen, dict) \
            or not all(isinstance(v, dict) for v in seen.values()):
        return {}, f"sensor cursor of another version ({text[:80]!r}); starting over"
    return cur, None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def scan_roots(roots: Sequence[str], storage_options: Mapping[str, Any] | None = None,
               unreadable: list[tuple[str, str]] | None = None
               ) -> tuple[list[SourceRecording], list[str]]:
    """Recordings under all roots (first root wins on a shared key) and the roots not found.

    A root that cannot be listed (e.g. permission denied) is skipped; when ``unreadable`` is
    given, ``(root, error)`` is appended to it."""
    seen: dict[str, SourceRecording] = {}
    missing = []
    for root in roots:
        try:
            found = list_sources(root, storage_options=storage_options)
        except FileNotFoundError:
            missing.append(root)
            continue
        except OSError as exc:
            log.warning("source root %s cannot be listed (%s): skipped", root, _reason(exc))
            if unreadable is not None:
                unreadable.append((root, _reason(exc)))
            continue
        for s in found:
            first = seen.setdefault(s.key, s)
            if first is not s:
                log.warning("%s has the key %s of %s (an earlier root): skipped; rename one",
                            s.url, s.key, first.url)
    return sorted(seen.values(), key=lambda s: s.key), missing


def plan_tick(roots: Sequence[str], cursor: Mapping[str, Any] | None, *,
              max_per_tick: int = 25, storage_options: Mapping[str, Any] | None = None,
              materialized_checksum: Callable[[str], str | None] = lambda key: None
              ) -> TickPlan:
    """Plan one tick. ``materialized_checksum(key)`` tells what an earlier run already built
    (so a fresh cursor does not rebuild what is up to date)."""
    cur = dict(cursor or {})
    seen: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (cur.get("seen") or {}).items()}
    plan = TickPlan()
    sources, plan.missing_roots = scan_roots(roots, storage_options, plan.unreadable)
    missing = plan.missing_roots + [r for r, _ in plan.unreadable]
    present = {s.key for s in sources}
    # a root that vanished (unmounted?) or cannot be listed does not make its recordings removed
    if not missing:
        plan.removed = sorted(k for k in seen if k not in present)
        for k in plan.removed:
            seen.pop(k)
    moved = [s for s in sources if seen.get(s.key, {}).get("fp") != s.fingerprint]
    moved_keys = {s.key for s in moved}
    failed = [s for s in sources if "err" in seen.get(s.key, {}) and s.key not in moved_keys]
    moved += failed  # unreadable last tick: tried again, after the others
    batch, plan.pending = moved[:max(1, max_per_tick)], max(0, len(moved) - max(1, max_per_tick))
    for src in batch:
        before = seen.get(src.key)
        try:
            src = replace(src, checksum=checksum(src, storage_options=storage_options))
        except OSError as exc:  # permission denied, I/O error, removed since the listing
            plan.unreadable.append((src.key, _reason(exc)))
            seen[src.key] = {**(before or {}), "fp": src.fingerprint, "err": _reason(exc)}
            continue
        if before is None or "sum" not in before:
            if materialized_checksum(src.key) == src.checksum:
                plan.up_to_date.append(src.key)
            else:
                plan.new.append(src)
        elif before.get("sum") != src.checksum:
            plan.changed.append(src)
        seen[src.key] = {"fp": src.fingerprint, "sum": src.checksum}
    plan.cursor = {"v": CURSOR_VERSION, "seen": seen}
    return plan
