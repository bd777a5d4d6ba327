"""The sensor on a built context: new, changed, touched and removed files; bounded ticks;
recordings an earlier run already converted are not requested again."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import fsspec
import fsspec.implementations.memory
import pytest

from biosigio_pipeline.defs.partitions import RECORDINGS_NAME
from biosigio_pipeline.defs.resources import SourceRoots
from biosigio_pipeline.defs.sensors import (
    BATCH_TAG,
    WEIGHT_TAG,
    build_sensor,
    recording_batches,
    recordings_sensor,
)

ALL = ["bids_demo__sub-01_task-motor_eeg", "bids_demo__sub-01_task-rest_eeg",
       "bids_demo__sub-02_task-rest_eeg", "wfdb_demo__ecg01", "xdf_demo__session01_xdf"]


def _tick(instance: dg.DagsterInstance, root: Path | str, cursor: str | None,
          max_per_tick: int = 25, batch: int = 1,
          heavy_bytes: int = 256 * 2**20) -> dg.SensorResult:
    """One tick; ``batch=1`` (one run per recording) unless a test looks at batching."""
    sensor = build_sensor(batch=batch, heavy_bytes=heavy_bytes)
    resources = {"sources": SourceRoots(roots=[str(root)], max_per_tick=max_per_tick)}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    for req in result.dynamic_partitions_requests or []:  # what the daemon would do
        instance.add_dynamic_partitions(RECORDINGS_NAME, list(req.partition_keys or []))
    return result


def _keys(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def test_new_changed_touched_removed(instance: dg.DagsterInstance, source_copy: Path) -> None:
    first = _tick(instance, source_copy, None)
    assert _keys(first) == ALL
    (add,) = first.dynamic_partitions_requests
    assert list(add.partition_keys) == ALL
    assert sorted(instance.get_dynamic_partitions(RECORDINGS_NAME)) == ALL
    assert all(r.run_key and "@sha256:" in r.run_key for r in first.run_requests)
    assert json.loads(first.cursor)["seen"].keys() == set(ALL)

    quiet = _tick(instance, source_copy, first.cursor)
    assert _keys(quiet) == [] and not quiet.dynamic_partitions_requests

    xdf = source_copy / "xdf_demo" / "session01.xdf"
    os.utime(xdf, (2_000_000_000, 2_000_000_000))
    touched = _tick(instance, source_copy, quiet.cursor)
    assert _keys(touched) == []

    events = source_copy / "bids_demo" / "sub-01" / "eeg" / "sub-01_task-rest_events.tsv"
    events.write_text(events.read_text() + "3.5\t0.5\tlate event\n")  # a sidecar changed
    changed = _tick(instance, source_copy, touched.cursor)
    assert _keys(changed) == ["bids_demo__sub-01_task-rest_eeg"]
    assert changed.run_requests[0].tags["biosigio/reason"] == "changed"
    assert not changed.dynamic_partitions_requests  # already a partition

    shutil.copytree(source_copy / "wfdb_demo", source_copy / "wfdb_more")
    shutil.rmtree(source_copy / "xdf_demo")
    mixed = _tick(instance, source_copy, changed.cursor)
    assert _keys(mixed) == ["wfdb_more__ecg01"]
    # removed: logged, forgotten by the cursor, partition (and outputs) kept
    assert "xdf_demo__session01_xdf" not in json.loads(mixed.cursor)["seen"]
    assert "xdf_demo__session01_xdf" in instance.get_dynamic_partitions(RECORDINGS_NAME)


def test_bounded_ticks(instance: dg.DagsterInstance, source_copy: Path) -> None:
    cursor, seen = None, []
    for _ in range(3):
        res = _tick(instance, source_copy, cursor, max_per_tick=2)
        assert len(res.run_requests) <= 2
        seen += _keys(res)
        cursor = res.cursor
    assert seen == ALL
    assert _keys(_tick(instance, source_copy, cursor, max_per_tick=2)) == []


def _ranges(instance: dg.DagsterInstance, result: dg.SensorResult) -> list[list[str]]:
    """Each run request's partitions: its key, or the keys of its range (instance order)."""
    order = instance.get_dynamic_partitions(RECORDINGS_NAME)
    out = []
    for r in result.run_requests or []:
        if r.partition_key is not None:
            out.append([r.partition_key])
            continue
        start = r.tags["dagster/asset_partition_range_start"]
        end = r.tags["dagster/asset_partition_range_end"]
        out.append(order[order.index(start):order.index(end) + 1])
        assert r.tags[BATCH_TAG] == str(len(out[-1]))
    return out


def test_the_default_sensor_batches_small_recordings(instance: dg.DagsterInstance,
                                                      source_copy: Path) -> None:
    resources = {"sources": SourceRoots(roots=[str(source_copy)])}
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        result = recordings_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(RECORDINGS_NAME, list(req.partition_keys or []))
    assert _ranges(instance, result) == [ALL]  # 5 small recordings: one run


def test_batches_are_ranges_of_new_or_changed_small_recordings(instance: dg.DagsterInstance,
                                                               source_copy: Path) -> None:
    first = _tick(instance, source_copy, None, batch=2)
    assert _ranges(instance, first) == [ALL[0:2], ALL[2:4], ALL[4:]]
    assert all(r.tags[WEIGHT_TAG] == "light" for r in first.run_requests)
    assert all(r.tags["biosigio/reason"] == "new" for r in first.run_requests)
    assert len({r.run_key for r in first.run_requests}) == 3
    # the same tick again (a lost cursor) asks for the same run keys: the daemon drops them
    assert [r.run_key for r in _tick(instance, source_copy, None, batch=2).run_requests] == [
        r.run_key for r in first.run_requests]

    # two changed recordings that are not neighbours: a run each; neighbours: one run
    for name in ("sub-01_task-motor", "sub-02_task-rest"):
        events = source_copy / "bids_demo" / name.split("_")[0] / "eeg" / f"{name}_events.tsv"
        events.write_text(events.read_text() + "3.5\t0.5\tlate event\n")
    changed = _tick(instance, source_copy, first.cursor, batch=5)
    assert _ranges(instance, changed) == [[ALL[0]], [ALL[2]]]
    assert all(r.tags["biosigio/reason"] == "changed" for r in changed.run_requests)
    events = source_copy / "bids_demo" / "sub-01" / "eeg" / "sub-01_task-rest_events.tsv"
    events.write_text(events.read_text() + "3.5\t0.5\tlate event\n")
    os.utime(source_copy / "wfdb_demo" / "ecg01.dat", (2_000_000_000, 2_000_000_000))
    (source_copy / "wfdb_demo" / "ecg01.dat").write_bytes(
        (source_copy / "wfdb_demo" / "ecg01.dat").read_bytes()[::-1])
    both = _tick(instance, source_copy, changed.cursor, batch=5)
    assert _ranges(instance, both) == [[ALL[1]], [ALL[3]]]
    for name in ("sub-01_task-motor", "sub-01_task-rest"):  # neighbours: one run
        events = source_copy / "bids_demo" / "sub-01" / "eeg" / f"{name}_events.tsv"
        events.write_text(events.read_text() + "4.5\t0.5\tlater event\n")
    neighbours = _tick(instance, source_copy, both.cursor, batch=5)
    assert _ranges(instance, neighbours) == [ALL[0:2]]


def test_a_changed_recording_whose_partition_was_deleted_is_registered_again(
        instance: dg.DagsterInstance, source_copy: Path) -> None:
    first = _tick(instance, source_copy, None)
    instance.delete_dynamic_partition(RECORDINGS_NAME, ALL[3])  # deleted in the UI
    (source_copy / "wfdb_demo" / "ecg01.dat").write_bytes(
        (source_copy / "wfdb_demo" / "ecg01.dat").read_bytes()[::-1])
    res = _tick(instance, source_copy, first.cursor)
    assert _keys(res) == [ALL[3]]
    assert [list(r.partition_keys or []) for r in res.dynamic_partitions_requests] == [[ALL[3]]]


def test_heavy_recordings_run_alone(instance: dg.DagsterInstance, source_copy: Path) -> None:
    from biosigio_lib.discovery import list_sources

    sizes = {s.key: s.size for s in list_sources(source_copy)}
    biggest = max(sizes, key=lambda k: sizes[k])
    limit = sizes[biggest]  # the biggest is heavy; the others batch while they stay below it
    res = _tick(instance, source_copy, None, batch=25, heavy_bytes=limit)
    groups = _ranges(instance, res)
    assert [biggest] in groups and sorted(k for g in groups for k in g) == ALL
    for group, req in zip(groups, res.run_requests, strict=True):
        total = sum(sizes[k] for k in group)
        assert req.tags[WEIGHT_TAG] == ("heavy" if total >= limit else "light")
        assert len(group) == 1 or total < limit


def test_recording_batches_rules() -> None:
    from types import SimpleNamespace

    srcs = {k: SimpleNamespace(key=k, size=size) for k, size in
            [("a", 10), ("b", 10), ("c", 100), ("d", 10), ("e", 50), ("f", 45), ("g", 1)]}
    order = list("abcdefgh")

    def keys(size: int, max_bytes: int, chosen: str = "abcdefg") -> list[str]:
        got = recording_batches(order, [srcs[k] for k in chosen], size, max_bytes)
        return ["".join(s.key for s in b) for b in got]

    assert keys(25, 10**9) == ["abcdefg"]
    assert keys(3, 10**9) == ["abc", "def", "g"]
    assert keys(25, 100) == ["ab", "c", "de", "fg"]  # c alone (heavy); e+f would reach 100
    assert keys(25, 10**9, "abdg") == ["ab", "d", "g"]  # only consecutive partitions
    assert keys(1, 10**9, "ab") == ["a", "b"]
    assert keys(25, 10**9, "") == []


def test_missing_root_is_skipped(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    res = _tick(instance, tmp_path / "not-mounted", None)
    assert _keys(res) == [] and json.loads(res.cursor)["seen"] == {}


def test_unreadable_or_old_cursor_starts_over(instance: dg.DagsterInstance,
                                              source_copy: Path) -> None:
    """A corrupt cursor, or one from another version, must not stop the sensor for good:
    the tick starts from an empty cursor (what was already built is not requested again)."""
    for bad in ("{not json", "[1, 2]", '"text"', '{"v": 0, "seen": ["a"]}',
                '{"seen": {"bids_demo__sub-01_task-rest_eeg": "1:2"}}', "null"):
        res = _tick(instance, source_copy, bad)
        assert _keys(res) == ALL, bad
        assert json.loads(res.cursor)["seen"].keys() == set(ALL)


# ------------------------------------------------- unreadable sources: reported, tick goes on
class LockedMemoryFS(fsspec.implementations.memory.MemoryFileSystem):
    """An in-memory filesystem whose files under a ``locked`` path refuse to open, as a file
    without read permission does (root bypasses real permissions, so tests run as root cannot
    chmod their way there)."""

    protocol = "lockedmem"
    store: ClassVar[dict] = {}
    pseudo_dirs: ClassVar[list] = [""]
    locked: ClassVar[set[str]] = set()
    unlistable: ClassVar[bool] = False

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path).removeprefix("lockedmem://")
        return super()._strip_protocol(text)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if any(part in self._strip_protocol(path) for part in self.locked):
            raise PermissionError(13, "Permission denied", path)
        return super()._open(path, mode, **kwargs)

    def find(self, path: str, *args: Any, **kwargs: Any) -> Any:
        if self.unlistable:
            raise PermissionError(13, "Permission denied", path)
        return super().find(path, *args, **kwargs)


@pytest.fixture
def locked_root(sample_root: Path) -> Iterator[str]:
    fsspec.register_implementation("lockedmem", LockedMemoryFS, clobber=True)
    fs = LockedMemoryFS()
    fs.put(str(sample_root), "/src", recursive=True)
    try:
        yield "lockedmem://src"
    finally:
        LockedMemoryFS.store.clear()
        LockedMemoryFS.pseudo_dirs[:] = [""]
        LockedMemoryFS.locked.clear()
        LockedMemoryFS.unlistable = False


def test_unreadable_file_is_reported_and_skipped(instance: dg.DagsterInstance, locked_root: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    xdf = "xdf_demo__session01_xdf"
    LockedMemoryFS.locked.add("session01.xdf")
    first = _tick(instance, locked_root, None)
    assert _keys(first) == [k for k in ALL if k != xdf]  # the others run; the tick went on
    assert xdf not in instance.get_dynamic_partitions(RECORDINGS_NAME)
    assert f"WARNING - cannot read {xdf} (PermissionError" in capsys.readouterr().err
    assert "err" in json.loads(first.cursor)["seen"][xdf]

    still = _tick(instance, locked_root, first.cursor)
    assert _keys(still) == []
    assert f"cannot read {xdf}" in capsys.readouterr().err  # tried again, reported again

    LockedMemoryFS.locked.clear()  # permission fixed: size and mtime did not change
    fixed = _tick(instance, locked_root, still.cursor)
    assert _keys(fixed) == [xdf]
    assert fixed.run_requests[0].tags["biosigio/reason"] == "new"
    assert "err" not in json.loads(fixed.cursor)["seen"][xdf]
    assert xdf in instance.get_dynamic_partitions(RECORDINGS_NAME)


def test_unreadable_files_do_not_starve_the_tick(instance: dg.DagsterInstance,
                                                 locked_root: str) -> None:
    """Unreadable recordings are retried after the others, so a bounded tick still moves on."""
    LockedMemoryFS.locked.update({"sub-01_task-motor", "sub-01_task-rest"})
    cursor, seen = None, []
    for _ in range(4):
        res = _tick(instance, locked_root, cursor, max_per_tick=2)
        seen += _keys(res)
        cursor = res.cursor
    assert sorted(seen) == [k for k in ALL if "sub-01" not in k]


def test_unlistable_root_removes_nothing(instance: dg.DagsterInstance, locked_root: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    first = _tick(instance, locked_root, None)
    LockedMemoryFS.unlistable = True
    with caplog.at_level(logging.WARNING):
        res = _tick(instance, locked_root, first.cursor)
    assert _keys(res) == [] and "PermissionError" in caplog.text
    assert json.loads(res.cursor)["seen"].keys() == set(ALL)  # nothing counted as removed
