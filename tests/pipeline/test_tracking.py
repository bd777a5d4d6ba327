"""The sensor's planning logic without Dagster: new, changed, touched, removed, slices."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from biosigio_pipeline.tracking import plan_tick

ALL = ["bids_demo__sub-01_task-motor_eeg", "bids_demo__sub-01_task-rest_eeg",
       "bids_demo__sub-02_task-rest_eeg", "wfdb_demo__ecg01", "xdf_demo__session01_xdf"]


def test_first_tick_sees_everything_new_then_nothing(source_copy: Path) -> None:
    plan = plan_tick([str(source_copy)], None, max_per_tick=100)
    assert [s.key for s in plan.new] == ALL and not plan.changed and plan.pending == 0
    assert all(s.checksum for s in plan.new)
    again = plan_tick([str(source_copy)], plan.cursor, max_per_tick=100)
    assert not again.to_run and not again.removed


def test_changed_touched_and_removed(source_copy: Path) -> None:
    cur = plan_tick([str(source_copy)], None, max_per_tick=100).cursor
    xdf = source_copy / "xdf_demo" / "session01.xdf"
    os.utime(xdf, (2_000_000_000, 2_000_000_000))  # touched, same bytes
    touched = plan_tick([str(source_copy)], cur, max_per_tick=100)
    assert not touched.to_run
    with open(xdf, "ab") as fh:  # content changed
        fh.write(b"\0")
    changed = plan_tick([str(source_copy)], touched.cursor, max_per_tick=100)
    assert [s.key for s in changed.changed] == ["xdf_demo__session01_xdf"] and not changed.new
    shutil.rmtree(source_copy / "wfdb_demo")
    removed = plan_tick([str(source_copy)], changed.cursor, max_per_tick=100)
    assert removed.removed == ["wfdb_demo__ecg01"] and not removed.to_run
    assert "wfdb_demo__ecg01" not in removed.cursor["seen"]
    # reported once, then forgotten
    assert not plan_tick([str(source_copy)], removed.cursor, max_per_tick=100).removed


def test_bounded_slices_cover_everything(source_copy: Path) -> None:
    cur, seen, ticks = None, [], 0
    while True:
        plan = plan_tick([str(source_copy)], cur, max_per_tick=2)
        assert len(plan.to_run) <= 2
        seen += [s.key for s in plan.to_run]
        cur, ticks = plan.cursor, ticks + 1
        if plan.pending == 0:
            break
    assert seen == ALL and ticks == 3


def test_already_built_is_not_rebuilt_and_missing_root_removes_nothing(source_copy: Path,
                                                                       tmp_path: Path) -> None:
    first = plan_tick([str(source_copy)], None, max_per_tick=100)
    sums = {s.key: s.checksum for s in first.new}
    fresh = plan_tick([str(source_copy)], None, max_per_tick=100,
                      materialized_checksum=sums.get)
    assert not fresh.to_run and fresh.up_to_date == ALL
    gone = plan_tick([str(source_copy), str(tmp_path / "unmounted")], first.cursor)
    assert gone.missing_roots == [str(tmp_path / "unmounted")] and not gone.removed
