"""Tests of biosigio_lib.discovery: keys, grouping, slices, checksums, fsspec roots."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import fsspec
import pytest

from biosigio_lib.discovery import (
    SourceRecording,
    checksum,
    discover,
    find_source,
    list_sources,
    safe_key,
)
from biosigio_lib.samples import make_sample_dataset

SAFE = re.compile(r"^[A-Za-z0-9._-]+__[A-Za-z0-9._-]+$")
SAMPLE_KEYS = [
    "bids_demo__sub-01_task-motor_eeg",
    "bids_demo__sub-01_task-rest_eeg",
    "bids_demo__sub-02_task-rest_eeg",
    "wfdb_demo__ecg01",
    "xdf_demo__session01_xdf",
]


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("samples")
    make_sample_dataset(root, seconds_scale=0.1)
    return root


def test_safe_key_only_keeps_safe_characters() -> None:
    assert safe_key("my data/set", "sub-01|x,y") == "my-data-set__sub-01-x-y"
    assert safe_key("", "a") == "x__a"
    assert safe_key("d", "x...y") == "d__x-y"  # Dagster refuses '...' in partition keys
    long = safe_key("d", "y" * 300)
    assert len(long) == 200 and long == safe_key("d", "y" * 300) != safe_key("d", "y" * 301)


def test_sample_dataset_is_grouped_into_recordings(sample_root: Path) -> None:
    found = list_sources(sample_root)
    assert [s.key for s in found] == SAMPLE_KEYS
    by = {s.key: s for s in found}
    bids = by["bids_demo__sub-01_task-rest_eeg"]
    assert bids.format == "bids" and bids.url.endswith("sub-01_task-rest_eeg.edf")
    names = {Path(f).name for f in bids.files}
    assert {"sub-01_task-rest_eeg.edf", "sub-01_task-rest_channels.tsv",
            "sub-01_task-rest_events.tsv", "sub-01_task-rest_eeg.json",
            "participants.tsv", "dataset_description.json"} <= names
    assert not any("motor" in n for n in names)  # another recording's sidecars stay out
    assert bids.entities["sub"] == "01" and bids.entities["task"] == "rest"
    wf = by["wfdb_demo__ecg01"]
    assert {Path(f).name for f in wf.files} == {"ecg01.hea", "ecg01.dat", "ecg01.atr"}
    assert wf.size == sum(os.path.getsize(f) for f in wf.files)
    assert all(SAFE.match(s.key) for s in found)


def test_real_corpus_one_source_per_oracle_recording(real_data: Path, oracle: dict) -> None:
    found = list_sources(real_data)
    mains = sorted(str(Path(s.url).relative_to(real_data)) for s in found)
    assert mains == sorted(oracle)
    assert all(SAFE.match(s.key) for s in found)
    multi = next(s for s in found if s.url.endswith("041s.hea"))
    assert {Path(f).name for f in multi.files} >= {"041s01.hea", "041s01.dat", "041s02.dat"}
    # segment headers are part of the record, not recordings of their own
    assert not any(s.url.endswith("041s01.hea") for s in found)
    binf = next(s for s in found if s.url.endswith("binformats.hea"))
    assert len(binf.files) == 11


def test_keys_are_stable_when_files_come_and_go(sample_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(sample_root, root)
    before = {s.key: s.url for s in list_sources(root)}
    (root / "xdf_demo" / "another.xdf").write_bytes(b"XDF:")
    shutil.rmtree(root / "wfdb_demo")
    after = {s.key: s.url for s in list_sources(root)}
    assert {k: after[k] for k in before if k in after} == {
        k: v for k, v in before.items() if k != "wfdb_demo__ecg01"}
    assert "xdf_demo__another_xdf" in after


def test_discover_in_bounded_slices(sample_root: Path) -> None:
    seen, start, slices = [], 0, 0
    while True:
        part = discover(sample_root, start=start, limit=2)
        assert len(part.sources) <= 2 and part.total == 5
        assert all(s.checksum and s.checksum.startswith("sha256:") for s in part.sources)
        seen += [s.key for s in part.sources]
        slices += 1
        start = part.next_start
        if start == 0:
            break
    assert seen == SAMPLE_KEYS and slices == 3


def test_checksum_follows_content_not_mtime(sample_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(sample_root, root)
    src = find_source([str(root)], "wfdb_demo__ecg01")
    ann = root / "wfdb_demo" / "ecg01.atr"
    os.utime(ann, (1_000_000, 1_000_000))
    touched = find_source([str(root)], "wfdb_demo__ecg01")
    assert touched.fingerprint != src.fingerprint and touched.checksum == src.checksum
    ann.write_bytes(ann.read_bytes() + b"\0\0")
    changed = find_source([str(root)], "wfdb_demo__ecg01")
    assert changed.checksum != src.checksum


def test_memory_root_via_fsspec(sample_root: Path) -> None:
    fs = fsspec.filesystem("memory")
    base = "/disc-test"
    for p in (sample_root / "xdf_demo").rglob("*"):
        fs.pipe(f"{base}/xdf_demo/{p.name}", p.read_bytes())
    for p in (sample_root / "wfdb_demo").rglob("*"):
        fs.pipe(f"{base}/wfdb_demo/{p.name}", p.read_bytes())
    try:
        found = list_sources(f"memory://{base}")
        assert [s.key for s in found] == ["wfdb_demo__ecg01", "xdf_demo__session01_xdf"]
        assert found[1].url.startswith("memory://")
        local = find_source([str(sample_root)], "xdf_demo__session01_xdf")
        assert checksum(found[1]) == local.checksum
    finally:
        fs.rm(base, recursive=True)


def test_round_trip_of_the_record_and_errors(tmp_path: Path, sample_root: Path) -> None:
    s = list_sources(sample_root)[0]
    assert SourceRecording.from_dict(s.to_dict()) == s
    with pytest.raises(FileNotFoundError):
        list_sources(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no recording with key"):
        find_source([str(sample_root)], "nope__nothing")


WEIRD = ["plain.edf", "a b.edf", "a-b.edf", "a|b.edf", "a,b.edf", "ünï cödé.edf", "x....edf",
         "y" * 240 + ".edf", "sub/a.edf", "sub-a.edf", "[br]*?.edf", "-.edf"]


def test_weird_names_give_unique_valid_stable_keys(tmp_path: Path) -> None:
    """Every file its own key: safe characters, a valid Dagster partition key, short enough
    for the output file names; colliding names are told apart, never merged or refused."""
    from dagster._core.definitions.partitions.utils.base import (
        raise_error_on_invalid_partition_key_substring,
    )

    root = tmp_path / "d"
    for i, name in enumerate(WEIRD):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(str(i).encode())
    found = list_sources(root)
    keys = [s.key for s in found]
    assert len(keys) == len(WEIRD) == len(set(keys)) == len({s.url for s in found})
    raise_error_on_invalid_partition_key_substring(keys)
    assert all(SAFE.match(k) and "..." not in k and len(k) <= 200 for k in keys), keys
    assert "d__plain_edf" in keys  # names needing no change keep their natural key
    assert [s.key for s in list_sources(root)] == keys  # stable
    for s in found:  # each key finds its own file
        assert find_source([str(root)], s.key).url == s.url
