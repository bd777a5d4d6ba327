"""``biosigio-pipeline``: the demo, conversion without Dagster, scans, store backfills, and
``info`` / ``verify`` on any readable file, archive or Zarr store.

Exit codes: 0 success (``verify``: equal); 1 some recordings failed to convert, some stores
failed to rebuild, or ``verify`` found differences; 2 an error that stopped the command (a
missing or unreadable input, bad settings, bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from . import __version__, settings

__all__ = ["main"]


def _show(text: object) -> str:
    """Text safe to print on a strict UTF-8 console: a non-UTF-8 file name (surrogate-escaped
    bytes) is shown backslash-escaped instead of failing the command after its work is done."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


# ------------------------------------------------------------------------------ warnings
class WarningLines:
    """Collects the warnings raised while a command runs and prints them as one line per
    recording, without Python source lines; repeats of a message are shown once.

    While :meth:`reading` an input, its warnings are grouped under that input (a message
    about another file, a BIDS sidecar say, keeps that file's name); otherwise under the file
    a message starts with (the library writes ``<path>: <text>``).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.current: str | None = None  # the input being read
        self.by_file: dict[str, list[str]] = {}

    def showwarning(self, message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
        text = " ".join(str(message).split())
        where, sep, rest = text.partition(": ")
        if not (sep and ("/" in where or os.sep in where or os.path.splitext(where)[1])):
            where, rest = "", text
        if self.current is not None and where != self.current:
            rest = f"{os.path.basename(where.rstrip('/'))}: {rest}" if where else rest
            where = self.current
        if not issubclass(category, UserWarning):
            rest = f"{category.__name__}: {rest}"
        found = self.by_file.setdefault(where, [])
        if rest not in found:
            found.append(rest)

    def flush(self) -> None:
        """Print one line per file and forget them."""
        stream = self.stream or sys.stderr
        sys.stdout.flush()
        for where, texts in self.by_file.items():
            head = f"{_show(where)}: " if where else ""
            more = f" ({len(texts)} warnings)" if len(texts) > 1 else ""
            print(f"warning: {head}{_show('; '.join(texts))}{more}", file=stream)
        self.by_file.clear()
        stream.flush()

    @contextmanager
    def installed(self) -> Iterator[WarningLines]:
        """Route warnings here while the block runs, and print them when it ends."""
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.showwarning = self.showwarning
            try:
                yield self
            finally:
                self.flush()

    @contextmanager
    def reading(self, path: str) -> Iterator[None]:
        """Attribute warnings that name no file to ``path`` while the block runs."""
        before, self.current = self.current, path
        try:
            yield
        finally:
            self.current = before


# ------------------------------------------------------------------------------ commands
def _serving_params(overrides: dict[str, Any] | None = None) -> Any:
    """The serving parameters; a bad value names where it came from and what to do."""
    try:
        return settings.load_serving_params(overrides)
    except (ValueError, TypeError) as exc:
        origin = settings.serving_params_origin()
        raise ValueError(f"bad serving parameters (from {origin}): {exc}; fix them there "
                         "(see docs/serving.md for the keys and values)") from exc


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(scale=args.scale, fresh=args.fresh)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert

    params = _serving_params({"dtype": args.dtype} if args.dtype else None)

    def failed(key: str, exc: BaseException) -> None:
        if args.verbose:  # the traceback of this recording's failure, then go on
            print(f"{_show(key)}: traceback of the failure:", file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)

    res = convert(args.path, os.fspath(args.out), params, feather=not args.no_feather,
                  progress=not args.quiet, on_error=failed,
                  each=args.warning_lines.reading)  # one warning line per recording
    for key, urls in res.outputs.items():
        print(f"{_show(key)}:")
        for name, url in urls.items():
            print(f"  {name:<8} {_show(url)}")
    for key, err in res.errors.items():
        print(f"{_show(key)}: FAILED {_show(err)}", file=sys.stderr)
    if res.errors:
        n = len(res.errors) + len(res.outputs)
        hint = ("" if args.verbose else "rerun with --verbose for the tracebacks; ")
        print(f"{len(res.errors)} of {n} recording(s) failed; {hint}"
              "`biosigio-pipeline info FILE` shows what a file holds as far as it is readable",
              file=sys.stderr)
    return 1 if res.errors else 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from biosigio_lib.discovery import discover
    from biosigio_lib.errors import source_not_found

    if "://" not in args.root and not os.path.exists(args.root):
        raise source_not_found(args.root)
    found = discover(args.root, checksums=args.checksums)
    for s in found.sources:
        print(json.dumps(s.to_dict()) if args.json else
              f"{_show(s.key):<60} {s.format:<5} {len(s.files):>3} files {s.size:>12} B")
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from .backfill import backfill_stores, submit_store_backfill
    from .definitions import build_defs

    params = _serving_params()
    version = params.version()
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home()))
    instance = dg.DagsterInstance.get()
    print(f"serving params {version} (from {settings.serving_params_origin()})")
    configured = settings.backfill_batch()
    batch = args.batch_size or configured
    defs = build_defs(serving_params=params, backfill_batch=batch)
    if not args.dry_run and not args.in_process:
        if batch != configured:
            print(f"warning: --batch-size {batch} applies to --in-process runs only: the daemon "
                  "splits a submitted backfill by the code location's BackfillPolicy "
                  "($BIOSIGIO_BACKFILL_BATCH where the code location loads, "
                  f"{configured} here)", file=sys.stderr)
        backfill_id, keys = submit_store_backfill(defs, instance, version)
        if backfill_id is None:
            print("0 stale store(s): nothing to backfill")
            return 0
        print(f"backfill {backfill_id} submitted: zarr_store of {len(keys)} partition(s), "
              f"up to {configured} per run\n"
              "the Dagster daemon (`dagster-daemon run`, or `uv run dg dev`) launches its runs "
              "through the run queue; follow it under Backfills in the UI")
        return 0

    def report(key: str, ok: bool) -> None:
        print(f"  {key}: {'rebuilt' if ok else 'FAILED'}", flush=True)

    done = backfill_stores(defs, instance, version, dry_run=args.dry_run, batch_size=batch,
                           report=report)
    if args.dry_run:
        print(f"{len(done)} stale store(s): {sorted(done)}")
    else:
        print(f"{sum(done.values())}/{len(done)} store(s) rebuilt; archives untouched")
        if not all(done.values()):
            print("see the failed runs in the Dagster UI (`uv run dg dev`) and rerun "
                  "`biosigio-pipeline backfill-stores --in-process` once fixed", file=sys.stderr)
    return 0 if all(done.values()) else 1


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _cmd_view(args: argparse.Namespace) -> int:
    from biosigio_lib.viewer import serve

    server = serve(args.target, args.host, args.port)
    print(f"viewing {len(server.stores)} store(s) under {_show(args.target)} at {server.url}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _add_view(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    v = add("view", "serve a web viewer for a store or a storage root (prints its URL)")
    v.add_argument("target", help="a serving store, or a folder/fsspec URL holding stores")
    v.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on")
    v.set_defaults(fn=_cmd_view)


def _calibration_text(cal: dict[str, Any] | None) -> str:
    """A calibration as its formula from the stored value ``d``."""
    if not cal:
        return "-"
    if "scale" in cal:  # a serving store's int16 quantisation
        return f"d * {_num(cal['scale'])} + {_num(cal['offset'])}"
    base = f"(d - {_num(cal['baseline'])})" if cal.get("baseline") else "d"
    text = f"{base} {'/' if cal.get('divide') else '*'} {_num(cal['gain'])}"
    return text + (f", NaN at {cal['missing']}" if cal.get("missing") is not None else "")


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _info_text(d: dict[str, Any]) -> list[str]:
    rates = ", ".join(f"{_num(r)} Hz" for r in d["rates"]) or "none"
    lines = [f"file:       {d['path']}",
             f"format:     {d.get('format') or '?'} (importer {d['importer']})",
             f"start time: {d.get('start_time') or 'unknown'}",
             f"duration:   {_num(d['duration'])} s",
             f"channels:   {d['n_channels']} at {rates}"]
    if d.get("groups"):
        lines.append(f"groups:     {len(d['groups'])}")
        for g in d["groups"]:
            orig = g.get("original_rate")
            lines.append(f"  {g['name']}: {g['n_channels']} channel(s), {_num(g['rate'])} Hz"
                         + (f" (from {_num(orig)} Hz)" if orig and orig != g["rate"] else "")
                         + f", {g['n_samples']} samples from t0 {_num(g['t0'])} s, "
                         f"{g['dtype']}")
            for lev in g["levels"]:
                shape = "x".join(map(str, lev["shape"] or [])) or "missing"
                lines.append(f"    level {lev['level']}: {lev['path']} {shape} {lev['dtype']} "
                             f"({_num(lev['rate'])} columns/s)")
    else:
        lines.append(f"grids:      {len(d['grids'])}")
        for g in d["grids"]:
            lines.append(f"  {g['name']}: {g['n_channels']} channel(s), {_num(g['rate'])} Hz, "
                         f"{g['n_samples']} samples from t0 {_num(g['t0'])} s "
                         f"({_num(g['duration'])} s)")
    if d["channels"]:
        rows = [["label", "type", "unit", "rate (Hz)", "dtype", "calibration (physical from d)"]]
        rows += [[_show(c["label"]), str(c.get("type") or ""), _show(c.get("unit") or ""),
                  _num(c["rate"]), c["dtype"], _calibration_text(c.get("calibration"))]
                 for c in d["channels"]]
        lines += ["channels:", *_table(rows)]
    ev = d["events"]
    lines.append(f"events:     {ev['count']}")
    if ev["count"]:
        counts = ", ".join(f"{_show(k)} x{v}" for k, v in ev["descriptions"].items())
        lines.append(f"  most frequent: {counts}")
        for e in ev["first"]:
            dur = e.get("duration")
            lines.append(f"  {_num(e.get('onset'))} s  duration {_num(dur)}  "
                         f"{_show(e.get('description'))}")
        if ev["count"] > len(ev["first"]):
            lines.append(f"  ... {ev['count'] - len(ev['first'])} more")
    if d["metadata"]:
        lines.append("metadata:")
        for k, v in d["metadata"].items():
            text = json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
            lines.append(f"  {_show(k)}: {_show(text if len(text) <= 100 else text[:97] + '...')}")
    return lines


def _cmd_info(args: argparse.Namespace) -> int:
    from biosigio_lib.inspection import describe

    with args.warning_lines.reading(args.path):
        try:
            d = describe(args.path, group=args.group, importer=args.importer,
                         n_events=args.events)
        except KeyError as exc:  # no such group in the store
            raise ValueError(f"{exc.args[0] if exc.args else exc}; pass --group with one of "
                             "them, or leave it out to describe the whole store") from exc
    if args.json:
        print(json.dumps(d, indent=2, ensure_ascii=False))
    else:
        print("\n".join(_info_text(d)))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from biosigio_lib.inspection import LOCATION_KEYS, compare, load, location_channel_keys

    if not (args.tolerance >= 0):
        raise ValueError(f"--tolerance must be >= 0, got {args.tolerance}")
    with args.warning_lines.reading(args.a):
        ra = load(args.a, group=args.group_a)
    with args.warning_lines.reading(args.b):
        rb = load(args.b, group=args.group_b)
    ignore = [*args.ignore_metadata, *([] if args.location_metadata else LOCATION_KEYS)]
    ignore_ch = () if args.location_metadata else location_channel_keys()
    diffs = compare(ra, rb, args.tolerance, ignore_metadata_keys=ignore,
                    ignore_channel_keys=ignore_ch,
                    check_metadata=not args.no_metadata, check_events=not args.no_events)
    mode = "exact" if args.tolerance == 0 else f"tolerance {args.tolerance:g}"
    if args.json:
        print(json.dumps({"equal": not diffs, "a": args.a, "b": args.b,
                          "tolerance": args.tolerance, "n_differences": len(diffs),
                          "differences": [d.to_dict() for d in diffs],
                          "ignored_metadata_keys": sorted(ignore)},
                         indent=2, ensure_ascii=False))
        return 1 if diffs else 0
    print(f"A: {_show(args.a)} ({ra!r})".replace("<Recording ", "").replace(">)", ")"))
    print(f"B: {_show(args.b)} ({rb!r})".replace("<Recording ", "").replace(">)", ")"))
    if not diffs:
        print(f"verify passed: B equals A ({mode})")
        return 0
    print(f"verify FAILED: {len(diffs)} difference(s) ({mode}):")
    shown = diffs if args.limit <= 0 else diffs[:args.limit]
    for d in shown:
        print(f"  - {_show(d.message)}")
    if len(shown) < len(diffs):
        print(f"  ... {len(diffs) - len(shown)} more (--limit 0 shows all, --json lists all)")
    return 1


# -------------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or not action.option_strings:
            return text
        if action.default is None or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
    p = argparse.ArgumentParser(prog="biosigio-pipeline",
                                description=(__doc__ or "").replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                   help="print the version and exit")
    p.add_argument("--verbose", action="store_true",
                   help="show the traceback of an error, and of each failed conversion "
                        "(default: False)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                         help="one of these (`biosigio-pipeline COMMAND --help` for its options)")

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=fmt)

    d = add("demo", "generate sample data and run the whole pipeline on it")
    d.add_argument("--fresh", action="store_true", help="delete earlier demo state first")
    d.add_argument("--scale", type=float, default=1.0,
                   help="factor on the length of the sample recordings (0.1: ten times shorter)")
    d.set_defaults(fn=_cmd_demo)

    c = add("convert", "convert a file or dataset to archives and a serving store, "
                       "without Dagster")
    c.add_argument("path", help="a recording file, or a dataset folder (BIDS, WFDB, EDF/XDF)")
    c.add_argument("--out", default="converted", help="output folder or fsspec URL")
    c.add_argument("--dtype", choices=("int16", "float32"),
                   help="serving store sample type (default: the serving parameters' dtype, "
                        "from biosigio_serving.json or BIOSIGIO_SERVING_PARAMS; int16 if unset)")
    c.add_argument("--no-feather", action="store_true", help="skip the Feather archive")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(fn=_cmd_convert)

    s = add("scan", "list the recordings discovered under a source root")
    s.add_argument("root", help="a dataset folder or fsspec URL (BIDS, WFDB, EDF/BDF/XDF files)")
    s.add_argument("--checksums", action="store_true",
                   help="also compute each recording's SHA-256 (reads every file)")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(fn=_cmd_scan)

    b = add("backfill-stores", "rebuild only the serving stores made with other serving params")
    b.add_argument("--dry-run", action="store_true", help="list the stale stores only")
    b.add_argument("--in-process", action="store_true",
                   help="run them here, in batched runs, instead of submitting a Dagster "
                        "backfill for the daemon (no daemon needed)")
    b.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help="stores per run for --in-process (default $BIOSIGIO_BACKFILL_BATCH or "
                        f"{settings.DEFAULT_BACKFILL_BATCH}); a submitted backfill is split by "
                        "the code location's policy, set by $BIOSIGIO_BACKFILL_BATCH there")
    b.set_defaults(fn=_cmd_backfill)

    i = add("info", "summarise a recording: channels, grids, duration, start time, events, "
                    "metadata (and a Zarr store's groups and levels)")
    i.add_argument("path", help="any readable input: EDF/BDF, WFDB .hea, XDF, BIDS data file, "
                                "Parquet/Feather archive or Zarr store")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.add_argument("--group", help="read one group of a Zarr store as a recording (default: "
                                   "describe the whole store from its attributes)")
    i.add_argument("--importer", metavar="NAME",
                   help="force a format: tabular, zarr, edf, wfdb, xdf or bids (default: "
                        "detected from the content and suffix)")
    i.add_argument("--events", type=int, default=5, metavar="N",
                   help="how many of the first events to show")
    i.set_defaults(fn=_cmd_info)

    v = add("verify", "compare two recordings (B against reference A); exit code 0 when "
                      "equal, 1 with the list of differences")
    v.add_argument("a", metavar="A", help="the reference: any readable input")
    v.add_argument("b", metavar="B", help="the recording to check: any readable input")
    v.add_argument("--tolerance", type=float, default=0.0,
                   help="largest absolute difference of physical values (and event times, s) "
                        "that counts as equal; 0 is exact: bit for bit, same dtype and "
                        "calibration")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--group-a", metavar="GROUP",
                   help="read only this group of A if it is a Zarr store (default: all groups)")
    v.add_argument("--group-b", metavar="GROUP",
                   help="read only this group of B if it is a Zarr store (default: all groups)")
    v.add_argument("--ignore-metadata", action="append", default=[], metavar="KEY",
                   help="leave this metadata key out (repeatable)")
    v.add_argument("--location-metadata", action="store_true",
                   help="also compare the metadata naming where each was read from or how it "
                        "was converted (source_file, source_checksum, a store's scale/offset)")
    v.add_argument("--no-metadata", action="store_true", help="do not compare metadata")
    v.add_argument("--no-events", action="store_true", help="do not compare events")
    v.add_argument("--limit", type=int, default=20, metavar="N",
                   help="show at most N differences (0: all)")
    v.set_defaults(fn=_cmd_verify)

    _add_view(add)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biosigio-pipeline`` console script."""
    from biosigio_lib.errors import BiosigIOError, UnsupportedFormatError

    args = _parser().parse_args(argv)
    lines = WarningLines()
    args.warning_lines = lines
    try:
        with lines.installed():
            return int(args.fn(args))
    except (BiosigIOError, OSError, ValueError, TypeError, KeyError) as exc:
        if args.verbose:
            raise
        text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        if isinstance(exc, UnsupportedFormatError):  # the library's hint is for Python callers
            text = text.replace("Pass importer='<name>' to force one.",
                                "`biosigio-pipeline info --importer NAME PATH` forces one.")
        print(f"biosigio-pipeline {args.command}: error: {_show(text)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
