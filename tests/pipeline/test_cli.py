"""The CLI: convert without Dagster (file and dataset), scan, and the demo main job."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import pytest

from biosigio_lib import Recording
from biosigio_pipeline.cli import main

from .conftest import requires_serving

REPO = Path(__file__).resolve().parents[2]


@requires_serving
def test_convert_one_file(sample_root: Path, tmp_path: Path, capsys) -> None:
    edf = sample_root / "bids_demo" / "sub-02" / "eeg" / "sub-02_task-rest_eeg.edf"
    assert main(["convert", str(edf), "--out", str(tmp_path / "o"), "--dtype", "float32"]) == 0
    out, err = capsys.readouterr()
    assert "bids_demo__sub-02_task-rest_eeg:" in out and "[" in err  # progress bar on stderr
    parquet = tmp_path / "o" / "archive" / "parquet" / "bids_demo__sub-02_task-rest_eeg.parquet"
    rec = Recording.from_file(parquet)
    assert rec.metadata["source_checksum"].startswith("sha256:")
    import zarr

    store = tmp_path / "o" / "serving" / "bids_demo__sub-02_task-rest_eeg.zarr"
    assert zarr.open_group(str(store), mode="r").attrs["serving_params"]["dtype"] == "float32"


@requires_serving
def test_convert_a_file_whose_name_is_not_utf8(sample_root: Path, tmp_path: Path,
                                               capsys) -> None:
    """A Latin-1 file name on Linux (bytes 'caf\xe9') reaches Python surrogate-escaped."""
    import shutil

    edf = sample_root / "bids_demo" / "sub-02" / "eeg" / "sub-02_task-rest_eeg.edf"
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    name = os.fsdecode(b"caf\xe9.edf")
    try:
        src = Path(shutil.copy(edf, src_dir / name))
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system cannot hold a non-UTF-8 file name")
    assert main(["convert", str(src), "--out", str(tmp_path / "o"), "--quiet"]) == 0, \
        capsys.readouterr().err
    parquets = list((tmp_path / "o" / "archive" / "parquet").glob("*.parquet"))
    assert len(parquets) == 1
    rec = Recording.from_file(parquets[0])
    assert rec.metadata["source_file"].endswith(name)  # the exact (surrogate-escaped) name
    assert rec.labels == Recording.from_file(edf).labels


@requires_serving
def test_convert_a_dataset_folder(sample_root: Path, tmp_path: Path) -> None:
    assert main(["convert", str(sample_root / "wfdb_demo"), "--out", str(tmp_path / "o"),
                 "--quiet", "--no-feather"]) == 0
    assert (tmp_path / "o" / "serving" / "wfdb_demo__ecg01.zarr").is_dir()
    assert not (tmp_path / "o" / "archive" / "feather").exists()


@requires_serving
def test_convert_an_annotation_only_file(tmp_path: Path) -> None:
    """No signal: an events-only store and no preview, and the conversion succeeds."""
    import numpy as np

    from biosigio_lib.samples import XdfStream, write_xdf
    from biosigio_lib.serving import ServingParams
    from biosigio_pipeline.convert import convert

    src = tmp_path / "markers.xdf"
    write_xdf(src, [XdfStream("Markers", "Markers", "string", 0.0, np.array([1.0, 2.0]),
                              ["a", "b"])])
    res = convert(src, str(tmp_path / "o"), ServingParams(), progress=False)
    assert not res.errors
    (outputs,) = res.outputs.values()
    assert "preview" not in outputs
    assert Recording.from_file(outputs["zarr"]).events["description"].tolist() == ["a", "b"]


@requires_serving
def test_convert_writers_run_side_by_side_and_a_failed_one_is_reported(
        sample_root: Path, tmp_path: Path, monkeypatch) -> None:
    """Archives and store are written at once; a failing store leaves whole archives, the
    recording is reported as failed, and no writer is still running when convert returns."""
    import threading

    from biosigio_lib.serving import ServingParams
    from biosigio_pipeline import convert as conv
    from biosigio_pipeline import steps

    seen: set[str] = set()
    real_archive = steps.write_archive

    def archive(rec, url, container, *a, **k):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        return real_archive(rec, url, container, *a, **k)

    def store(*a, **k):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        raise RuntimeError("store failed on purpose")

    monkeypatch.setattr(steps, "write_archive", archive)
    monkeypatch.setattr(steps, "write_store", store)
    before = set(threading.enumerate())
    src = sample_root / "wfdb_demo"
    res = conv.convert(src, str(tmp_path / "o"), ServingParams(), progress=False)
    assert res.errors and all("store failed on purpose" in e for e in res.errors.values())
    assert set(threading.enumerate()) - before == set()  # (other tests' threads may end)
    assert threading.main_thread().name in seen and len(seen) >= 3  # main + 2 archive threads
    for key in res.errors:  # the archives finished whole next to the failed store
        assert Recording.from_file(tmp_path / "o" / "archive" / "parquet" / f"{key}.parquet")


def test_convert_reports_failures(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "data" / "broken.edf"
    bad.parent.mkdir()
    bad.write_bytes(b"0       not an edf header")
    assert main(["convert", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_scan_lists_recordings(sample_root: Path, capsys) -> None:
    assert main(["scan", str(sample_root), "--json", "--checksums"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5 and all(r["checksum"].startswith("sha256:") for r in rows)


@pytest.mark.slow
@requires_serving
def test_demo_main_job(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BIOSIGIO_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".biosigio" / "dagster_home"))
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--scale", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "5 partitions registered; 5 to convert" in out
    assert out.count(" ok (") == 5 and "uv run dagster dev -m biosigio_pipeline.definitions" in out
    stores = sorted(p.name for p in (tmp_path / ".biosigio" / "storage" / "serving").iterdir())
    assert len(stores) == 5
    # a second run finds everything up to date
    assert main(["demo", "--scale", "0.1"]) == 0
    assert "0 to convert" in capsys.readouterr().out
    assert os.environ["DAGSTER_HOME"] == str(tmp_path / ".biosigio" / "dagster_home")


@requires_serving
def test_convert_folder_with_one_bad_file(sample_root: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.edf").write_bytes(b"0       not an edf header")
    good = sample_root / "bids_demo" / "sub-02" / "eeg" / "sub-02_task-rest_eeg.edf"
    (data / "good.edf").write_bytes(good.read_bytes())
    assert main(["convert", str(data), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert (tmp_path / "o" / "serving" / "data__good_edf.zarr").is_dir()
    assert "data__good_edf:" in out
    assert "data__broken_edf: FAILED" in err and "broken.edf" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["convert", "{missing}", "--quiet"], ["scan", "{missing}"]])
def test_cli_errors_are_one_clear_line(argv: list[str], tmp_path: Path, capsys) -> None:
    """A missing path or bad settings: exit code 2 and the message, no traceback (unless
    --verbose, which re-raises)."""
    missing = str(tmp_path / "nope")
    argv = [a.format(missing=missing) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert missing in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(FileNotFoundError):
        main(["--verbose", *argv])


def test_cli_bad_serving_params_is_one_clear_line(sample_root: Path, tmp_path: Path,
                                                  monkeypatch, capsys) -> None:
    monkeypatch.setenv("BIOSIGIO_SERVING_PARAMS", '{"dtype": "int8"}')
    assert main(["convert", str(sample_root / "wfdb_demo"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dtype" in err and "int8" in err and "Traceback" not in err


# ------------------------------------------------------------------- help, verbose, warnings
def _subcommands() -> list[str]:
    from biosigio_pipeline.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def _help_entries(text: str) -> dict[str, str]:
    """``{option or positional: its help text}`` from an argparse help page."""
    entries: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):  # a section title: "options:", "positional arguments:"
            current = None
            continue
        m = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m:
            flags = re.findall(r"(?<!\S)--?[A-Za-z][\w-]*", m.group(1))
            current = flags[-1] if flags else m.group(1).split()[0]
            entries[current] = m.group(2) or ""
        elif current and line.startswith("      "):
            entries[current] += " " + line.strip()
    return entries


@pytest.mark.parametrize("command", ["", "demo", "convert", "scan", "backfill-stores", "info",
                                     "verify", "view"])
def test_every_argument_has_a_description_and_default(command: str, capsys) -> None:
    """Parse each help page (and the top-level one): a description for every argument, the
    default of every option."""
    assert not command or command in _subcommands()
    with pytest.raises(SystemExit):
        main([command, "--help"] if command else ["--help"])
    entries = _help_entries(capsys.readouterr().out)
    assert "-h" in entries or "--help" in entries
    for name, text in entries.items():
        if name in ("-h", "--help", "--version"):
            continue
        assert len(text.strip()) > 10, f"{command} {name}: no description"
        if name.startswith("-"):
            assert "(default" in text, f"{command} {name}: the default is not shown: {text}"


def test_all_subcommands_are_tested() -> None:
    assert set(_subcommands()) == {"demo", "convert", "scan", "backfill-stores", "info",
                                   "verify", "view"}


def test_verbose_shows_the_traceback_of_a_failed_conversion(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "data" / "broken.edf"
    bad.parent.mkdir()
    bad.write_bytes(b"0       not an edf header")
    assert main(["convert", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--verbose" in err
    assert main(["--verbose", "convert", str(bad), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "broken.edf" in err
    assert "data__broken_edf: FAILED" in err


def _edf_with_unknown_record_count(sample_root: Path, dst: Path) -> Path:
    """A copy of a sample EDF whose header gives -1 data records (a recording never closed)."""
    src = sample_root / "bids_demo" / "sub-02" / "eeg" / "sub-02_task-rest_eeg.edf"
    data = bytearray(src.read_bytes())
    data[236:244] = b"-1      "
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return dst


def _warning_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_warnings_are_one_line_per_file(sample_root: Path, tmp_path: Path, capsys) -> None:
    edf = _edf_with_unknown_record_count(sample_root, tmp_path / "in" / "open.edf")
    assert main(["info", str(edf)]) == 0
    err = capsys.readouterr().err
    (line,) = _warning_lines(err)
    assert line.startswith(f"warning: {edf}: ") and "-1" in line
    assert "warnings.warn" not in err and ".py:" not in err  # no Python source lines
    assert len(err.strip().splitlines()) == 1


@requires_serving
def test_convert_warnings_name_the_file(sample_root: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "in"
    a = _edf_with_unknown_record_count(sample_root, data / "a.edf")
    b = _edf_with_unknown_record_count(sample_root, data / "b.edf")
    assert main(["convert", str(data), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    lines = _warning_lines(capsys.readouterr().err)
    assert len(lines) == 2 and {line.split(": ")[1] for line in lines} == {str(a), str(b)}
    assert all(".py:" not in line for line in lines)


@pytest.mark.real_data
def test_bids_unit_mismatch_warning_is_grouped_under_the_recording(real_data: Path,
                                                                   capsys) -> None:
    edf = real_data / "bids" / "emg_TwoWristbands" / "sub-01" / "emg" / "sub-01_task-typing_emg.edf"
    assert main(["info", str(edf), "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # the warnings stay off stdout
    (line,) = _warning_lines(err)
    assert line.startswith(f"warning: {edf}: sub-01_task-typing_channels.tsv: ")
    assert "units differ" in line


def test_warning_lines_group_and_deduplicate(tmp_path: Path) -> None:
    import io
    import warnings

    from biosigio_pipeline.cli import WarningLines

    buf = io.StringIO()
    lines = WarningLines(buf)
    with lines.installed():
        warnings.warn("/data/x.edf: first thing", stacklevel=1)
        warnings.warn("/data/x.edf: second thing", stacklevel=1)
        warnings.warn("/data/x.edf: first thing", stacklevel=1)
        with lines.reading("/data/y.edf"):
            warnings.warn("no file named here", stacklevel=1)
            warnings.warn("a FutureWarning", FutureWarning, stacklevel=1)
    assert buf.getvalue().splitlines() == [
        "warning: /data/x.edf: first thing; second thing (2 warnings)",
        "warning: /data/y.edf: no file named here; FutureWarning: a FutureWarning "
        "(2 warnings)",
    ]


def test_default_convert_output_is_gitignored() -> None:
    from biosigio_pipeline.cli import _parser

    args = _parser().parse_args(["convert", "x.edf"])
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert f"/{args.out}/" in ignored or f"{args.out}/" in ignored


def test_version(capsys) -> None:
    from biosigio_pipeline import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


@pytest.mark.real_data
@requires_serving
def test_convert_groups_a_recordings_warnings_in_one_line(real_data: Path, tmp_path: Path,
                                                          capsys) -> None:
    """A BIDS recording whose sidecar warns: one line, under the recording's data file."""
    ds = real_data / "bids" / "emg_TwoWristbands"
    assert main(["convert", str(ds), "--out", str(tmp_path / "o"), "--quiet",
                 "--no-feather"]) == 0
    lines = _warning_lines(capsys.readouterr().err)
    edf = ds / "sub-01" / "emg" / "sub-01_task-typing_emg.edf"
    assert len(lines) == 1 and lines[0].startswith(f"warning: {edf}: ")
    assert "sub-01_task-typing_channels.tsv: " in lines[0]
