"""``biosigio-pipeline``: the demo, conversion without Dagster, scans and store backfills."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from . import settings

__all__ = ["main"]


def _show(text: object) -> str:
    """Text safe to print on a strict UTF-8 console: a non-UTF-8 file name (surrogate-escaped
    bytes) is shown backslash-escaped instead of failing the command after its work is done."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(scale=args.scale, fresh=args.fresh)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert

    params = settings.load_serving_params({"dtype": args.dtype} if args.dtype else None)
    res = convert(args.path, os.fspath(args.out), params, feather=not args.no_feather,
                  progress=not args.quiet)
    for key, urls in res.outputs.items():
        print(f"{_show(key)}:")
        for name, url in urls.items():
            print(f"  {name:<8} {_show(url)}")
    for key, err in res.errors.items():
        print(f"{_show(key)}: FAILED {_show(err)}", file=sys.stderr)
    return 1 if res.errors else 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from biosigio_lib.discovery import discover

    found = discover(args.root, checksums=args.checksums)
    for s in found.sources:
        print(json.dumps(s.to_dict()) if args.json else
              f"{_show(s.key):<60} {s.format:<5} {len(s.files):>3} files {s.size:>12} B")
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from .backfill import backfill_stores
    from .definitions import build_defs

    params = settings.load_serving_params()
    version = params.version()
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home()))
    instance = dg.DagsterInstance.get()
    print(f"serving params {version} (from {settings.serving_params_origin()})")

    def report(key: str, ok: bool) -> None:
        print(f"  {key}: {'rebuilt' if ok else 'FAILED'}", flush=True)

    done = backfill_stores(build_defs(serving_params=params), instance, version,
                           dry_run=args.dry_run, report=report)
    if args.dry_run:
        print(f"{len(done)} stale store(s): {sorted(done)}")
    else:
        print(f"{sum(done.values())}/{len(done)} store(s) rebuilt; archives untouched")
    return 0 if all(done.values()) else 1


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


def _add_view(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    v = sub.add_parser("view", help="serve a web viewer for a store or a storage root")
    v.add_argument("target", help="a serving store, or a folder/fsspec URL holding stores")
    v.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on")
    v.set_defaults(fn=_cmd_view)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="biosigio-pipeline", description=__doc__)
    p.add_argument("--verbose", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate sample data and run the whole pipeline")
    d.add_argument("--fresh", action="store_true", help="delete earlier demo state first")
    d.add_argument("--scale", type=float, default=1.0, help="shorten the sample recordings")
    d.set_defaults(fn=_cmd_demo)

    c = sub.add_parser("convert", help="convert a file or dataset without Dagster")
    c.add_argument("path", help="a recording file, or a dataset folder (BIDS, WFDB, EDF/XDF)")
    c.add_argument("--out", default="converted", help="output folder or fsspec URL")
    c.add_argument("--dtype", choices=("int16", "float32"), help="serving store sample type")
    c.add_argument("--no-feather", action="store_true", help="skip the Feather archive")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(fn=_cmd_convert)

    s = sub.add_parser("scan", help="list the recordings discovered under a source root")
    s.add_argument("root")
    s.add_argument("--checksums", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_scan)

    b = sub.add_parser("backfill-stores",
                       help="rebuild only the serving stores made with other serving params")
    b.add_argument("--dry-run", action="store_true", help="list the stale stores only")
    b.set_defaults(fn=_cmd_backfill)
    _add_view(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biosigio-pipeline`` console script."""
    from biosigio_lib.errors import BiosigIOError

    args = _parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (BiosigIOError, OSError, ValueError, TypeError) as exc:  # a missing path, settings
        if args.verbose:
            raise
        print(f"biosigio-pipeline {args.command}: error: {_show(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
