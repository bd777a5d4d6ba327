"""Materialize every asset of every sample partition (one run per asset, so each asset loads
its inputs from what an earlier run wrote), then check outputs, metadata, lineage, checks."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from biosigio_lib import Recording
from biosigio_lib.discovery import find_source, list_sources
from biosigio_pipeline.definitions import build_defs
from biosigio_pipeline.steps import Outputs

from .conftest import requires_serving

pytestmark = requires_serving
ORDER = ["source_recording", "recording", "parquet_archive", "feather_archive", "zarr_store"]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@pytest.fixture(scope="module")
def built(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("storage")
    defs = build_defs(storage_root=str(out), source_roots=[str(sample_root)])
    keys = [s.key for s in list_sources(sample_root)]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recordings", keys)
    assets, checks = list(defs.assets or []), list(defs.asset_checks or [])
    results: dict[tuple[str, str], dg.ExecuteInProcessResult] = {}
    for key in keys:
        for name in ORDER:
            results[key, name] = dg.materialize(
                [*assets, *checks], selection=dg.AssetSelection.assets(name),
                partition_key=key, instance=instance, resources=defs.resources,
                run_config=QUIET, raise_on_error=False)
    return SimpleNamespace(out=out, defs=defs, keys=keys, instance=instance, results=results,
                           sample_root=sample_root)


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (mat,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


def test_every_asset_of_every_partition_succeeds(built: SimpleNamespace) -> None:
    failed = [k for k, r in built.results.items() if not r.success]
    assert not failed, failed
    assert len(built.keys) == 5


def test_checks_pass_with_evidence(built: SimpleNamespace) -> None:
    for key in built.keys:
        evals = [e for name in ORDER
                 for e in built.results[key, name].get_asset_check_evaluations()]
        by = {e.check_name: e for e in evals}
        assert set(by) == {"parquet_round_trip", "feather_round_trip",
                           "store_level0_within_bound", "store_complete"}, key
        for e in by.values():
            assert e.passed, (key, e.check_name, {k: v.value for k, v in e.metadata.items()})
        assert by["parquet_round_trip"].metadata["problems"].value == []
        assert by["store_complete"].metadata["missing_channels"].value == []


def test_metadata_and_lineage_in_the_files(built: SimpleNamespace) -> None:
    import zarr

    for key in built.keys:
        src = find_source([str(built.sample_root)], key)
        o = Outputs(str(built.out), key)
        m_src = _meta(built.results[key, "source_recording"], "source_recording")
        assert m_src["source_checksum"] == src.checksum and m_src["bytes"] == src.size
        manifest = json.loads(Path(o.manifest).read_text())
        assert manifest["checksum"] == src.checksum and manifest["files"] == list(src.files)
        for asset in ("parquet_archive", "feather_archive", "zarr_store"):
            m = _meta(built.results[key, asset], asset)
            assert Path(m["uri"]).exists() and m["bytes"] > 0
            assert m["source_checksum"] == src.checksum
            assert m["channels"] > 0 and m["duration_s"] > 1.0 and m["rates_hz"]
        m_store = _meta(built.results[key, "zarr_store"], "zarr_store")
        assert m_store["preview"].startswith("![")
        assert Path(o.preview).read_bytes()[:4] == b"\x89PNG"
        # lineage in the files themselves
        for uri in (_meta(built.results[key, a], a)["uri"]
                    for a in ("parquet_archive", "feather_archive")):
            back = Recording.from_file(uri)
            assert back.metadata["source_checksum"] == src.checksum
            assert back.metadata["source_file"] == src.url
        attrs = dict(zarr.open_group(m_store["uri"], mode="r").attrs)
        assert attrs["source_checksum"] == src.checksum
        assert attrs["source_file"] == src.url


def test_archive_equals_a_direct_import(built: SimpleNamespace) -> None:
    from biosigio_lib.testing import assert_recordings_equal

    key = "bids_demo__sub-01_task-rest_eeg"
    src = find_source([str(built.sample_root)], key)
    direct = Recording.from_file(src.url)
    back = Recording.from_file(_meta(built.results[key, "parquet_archive"],
                                     "parquet_archive")["uri"])
    assert_recordings_equal(back, direct, ignore_metadata_keys=("source_checksum", "source_key"))
    assert len(direct.rates) == 3  # mixed rates made it through the pipeline


def test_full_job_in_one_run_on_a_memory_root(sample_root: Path) -> None:
    root = "memory://pipeline-test/out"
    defs = build_defs(storage_root=root, source_roots=[str(sample_root)])
    instance = dg.DagsterInstance.ephemeral()
    key = "xdf_demo__session01_xdf"
    instance.add_dynamic_partitions("recordings", [key])
    res = defs.resolve_job_def("convert_recording").execute_in_process(
        partition_key=key, instance=instance, run_config=QUIET)
    assert res.success
    assert all(e.passed for e in res.get_asset_check_evaluations())
    uri = _meta(res, "zarr_store")["uri"]
    assert uri.startswith("memory://")


REAL = {  # oracle path -> partition key under the real corpus root
    "edf/test_reduced.edf": "edf__test_reduced_edf",
    "wfdb/multi-segment/041s/041s.hea": "wfdb__multi-segment-041s-041s",
    "bids/emg_TwoWristbands/sub-01/emg/sub-01_task-typing_emg.edf":
        "emg_TwoWristbands__sub-01_task-typing_emg",
}


@pytest.mark.real_data
def test_real_files_through_the_pipeline(real_data: Path, oracle: dict, tmp_path: Path) -> None:
    defs = build_defs(storage_root=str(tmp_path / "out"), source_roots=[str(real_data)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recordings", list(REAL.values()))
    job = defs.resolve_job_def("convert_recording")
    for path, key in REAL.items():
        res = job.execute_in_process(partition_key=key, instance=instance, run_config=QUIET)
        assert res.success, key
        bad = [e.check_name for e in res.get_asset_check_evaluations() if not e.passed]
        assert not bad, (key, bad)
        meta = _meta(res, "parquet_archive")
        facts = oracle[path]
        if "labels" in facts:  # EDF: every signal but the annotation channel, at its rates
            assert meta["channels"] == len(facts["labels"])
            assert sorted(meta["rates_hz"]) == sorted(facts["distinct_fs"])
        elif "sig_name" in facts:  # WFDB multi-segment, 2 rates
            assert meta["channels"] == len(facts["sig_name"])
            assert sorted(meta["rates_hz"]) == sorted(set(facts["per_channel_fs"]))
        else:  # BIDS: the channels.tsv rows
            assert meta["channels"] == facts["channels_tsv_count"]
        back = Recording.from_file(meta["uri"])
        assert back.metadata["source_checksum"] == find_source([str(real_data)], key).checksum


def _annotation_only_run(root: Path, out: Path, key: str) -> dg.ExecuteInProcessResult:
    defs = build_defs(storage_root=str(out), source_roots=[str(root)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recordings", [key])
    res = defs.resolve_job_def("convert_recording").execute_in_process(
        partition_key=key, instance=instance, run_config=QUIET)
    assert res.success
    return res


def _assert_events_only_store(res: dg.ExecuteInProcessResult, out: Path, key: str,
                              source: Recording) -> None:
    """The store holds every event bit-exactly, no signal groups and no preview; every check
    passes, the level-0 one on 0 channels."""
    from biosigio_lib import serving
    from biosigio_lib.testing import assert_recordings_equal

    o = Outputs(str(out), key)
    m = _meta(res, "zarr_store")
    assert m["uri"] == o.store and m["channels"] == 0 and m["events"] == len(source.events) > 0
    assert "skipped" not in m and m["preview"].startswith("_annotation-only")
    assert not Path(o.preview).exists()
    assert serving.list_groups(o.store) == []
    back = Recording.from_file(o.store)
    assert back.n_channels == 0 and back.metadata["source_checksum"] == \
        source.metadata["source_checksum"]
    assert_recordings_equal(back, source, ignore_metadata_keys=(
        "source_file", "source_format", "original_source_file", "original_source_format",
        "zarr_group", "serving_version"))
    by = {e.check_name: e for e in res.get_asset_check_evaluations()}
    assert all(e.passed for e in by.values()), {n: e.metadata for n, e in by.items()}
    level0 = by["store_level0_within_bound"].metadata
    assert level0["channels_checked"].value == 0 and level0["groups"].value == 0
    done = by["store_complete"].metadata
    assert done["missing_events"].value == 0 and done["unexpected_events"].value == 0
    assert done["store_events"].value == done["source_events"].value == len(source.events)


def test_annotation_only_source_gets_an_events_only_store(tmp_path: Path) -> None:
    """A marker-only XDF (no signal stream): the store serves its events."""
    import numpy as np

    from biosigio_lib.samples import XdfStream, write_xdf

    root = tmp_path / "src" / "markers"
    root.mkdir(parents=True)
    stamps = 1000.0 + np.array([0.5, 1.25, 3.0, 3.0])
    write_xdf(root / "only.xdf", [XdfStream("Markers", "Markers", "string", 0.0, stamps,
                                            ["go", "stop", "go", "go"])])
    key = "markers__only_xdf"
    res = _annotation_only_run(tmp_path / "src", tmp_path / "out", key)
    source = Recording.from_file(Outputs(str(tmp_path / "out"), key).parquet)
    assert source.events["stream"].tolist() == ["Markers"] * 4  # extra columns kept too
    _assert_events_only_store(res, tmp_path / "out", key, source)


@pytest.mark.real_data
def test_annotation_only_real_source(real_data: Path, tmp_path: Path) -> None:
    """SC4001EC-Hypnogram.edf (EDF+, 0 data signals, 154 annotations): an events-only store
    whose events equal the archive's."""
    key = "edf__SC4001EC-Hypnogram_edf"
    res = _annotation_only_run(real_data, tmp_path / "out", key)
    source = Recording.from_file(_meta(res, "parquet_archive")["uri"])
    assert len(source.events) == 154
    _assert_events_only_store(res, tmp_path / "out", key, source)
