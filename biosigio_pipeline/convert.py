"""Convert without Dagster: one file or a whole dataset to archives + serving store.

The same steps the assets run (:mod:`biosigio_pipeline.steps`), in a plain loop with a
progress bar on stderr; used by ``biosigio-pipeline convert``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from biosigio_lib.discovery import SourceRecording, checksum, list_sources, safe_key
from biosigio_lib.errors import source_not_found

from . import steps

if TYPE_CHECKING:
    from biosigio_lib.serving import ServingParams

__all__ = ["ConvertResult", "ProgressBar", "convert", "sources_for"]

STEPS = ("import", "parquet", "feather", "zarr", "preview")


class ProgressBar:
    """A one-line text progress bar on a stream (stderr); plain lines when not a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 28):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def update(self, label: str, advance: int = 1) -> None:
        """Advance and redraw with ``label`` as the current item."""
        self.done = min(self.total, self.done + advance)
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"[{bar}] {self.done}/{self.total} {time.perf_counter() - self.t0:6.1f}s "
                f"{label}")
        if self.tty:
            self.stream.write("\r\x1b[2K" + line[:160])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class ConvertResult:
    """Per recording: the output URLs, or the error that stopped it."""

    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def sources_for(path: str | os.PathLike[str]) -> list[SourceRecording]:
    """The recordings of a dataset folder, or the one recording a file is part of."""
    p = Path(path)
    if p.is_dir():
        return list_sources(p)
    if not p.exists():
        raise source_not_found(str(p))
    root = next((a for a in p.absolute().parents if (a / "dataset_description.json").is_file()),
                p.absolute().parent)  # a file inside a BIDS dataset keeps its sidecars and key
    for s in list_sources(root):
        if Path(s.url) == p.absolute() or str(p.absolute()) in s.files:
            return [s]
    st = p.stat()
    name = p.name.replace(".", "_")
    return [SourceRecording(key=safe_key(p.parent.name or "root", name), dataset=p.parent.name,
                            name=name, url=str(p.absolute()), format="file",
                            files=(str(p.absolute()),), size=st.st_size, mtime=st.st_mtime)]


def convert(path: str | os.PathLike[str], out: str, params: ServingParams, *,
            feather: bool = True, progress: bool = True,
            on_error: Callable[[str, BaseException], None] | None = None,
            each: Callable[[str], AbstractContextManager[Any]] | None = None) -> ConvertResult:
    """Convert every recording under ``path`` to ``out``; a failure skips that recording.

    ``each(url)``, when given, is a context entered around each recording's conversion (the
    CLI groups each recording's warnings under its source file with it).
    """
    sources = sources_for(path)
    n_steps = len(STEPS) - (0 if feather else 1)
    bar = ProgressBar(len(sources) * n_steps) if progress else None
    result = ConvertResult()
    for src in sources:
        with each(src.url) if each is not None else nullcontext():
            _one(src, steps.Outputs(out, src.key), params, feather, bar, n_steps, result,
                 on_error)
    if bar:
        bar.close()
    return result


def _one(src: SourceRecording, o: steps.Outputs, params: ServingParams, feather: bool,
         bar: ProgressBar | None, n_steps: int, result: ConvertResult,
         on_error: Callable[[str, BaseException], None] | None) -> None:
    """Convert one recording into ``result`` (its URLs, or the error that stopped it).

    The archives and the store are written at the same time (each archive in a thread of
    its own): each writer streams the lazy source window by window and the encoders release
    the GIL, so every core works. The preview follows the store it is drawn from.
    """
    done = 0
    lock = threading.Lock()

    def run(name: str, fn: Callable[[], Any]) -> Any:
        nonlocal done
        with lock:
            if bar:
                bar.update(f"{src.key}: {name}")
            done += 1
        return fn()

    try:
        src = replace(src, checksum=checksum(src))
        rec = steps.load_source(src)
        urls: dict[str, Any] = {"import": run("import", lambda: rec.metadata.get("source_file"))}
        archives, store = _plan(rec, o, params, feather)
        with ThreadPoolExecutor(len(archives), thread_name_prefix="archive") as pool:
            side = [pool.submit(run, name, fn) for name, fn in archives]
            try:
                for name, fn in store:
                    urls[name] = run(name, fn)
            finally:
                wait(side)  # never leave a writer running behind a failure
            urls.update({name: f.result() for (name, _), f in zip(archives, side)})
        if bar and done < n_steps:  # no preview step for an annotation-only recording
            bar.update(f"{src.key}: done", advance=n_steps - done)
        result.outputs[src.key] = {k: urls[k] for k in STEPS  # in step order
                                   if isinstance(urls.get(k), str)}
    except Exception as exc:  # report it and go on with the next recording
        result.errors[src.key] = f"{type(exc).__name__}: {exc}"
        if bar:
            bar.update(f"{src.key}: FAILED", advance=n_steps - done)
        if on_error:
            on_error(src.key, exc)


def _plan(rec: Any, o: steps.Outputs, params: ServingParams, feather: bool
          ) -> tuple[Sequence[tuple[str, Callable[[], Any]]],
                     Sequence[tuple[str, Callable[[], Any]]]]:
    """The archive steps and the store steps (store, then its preview), run side by side."""
    archives: list[tuple[str, Callable[[], Any]]] = [
        ("parquet", lambda: steps.write_archive(rec, o.parquet, "parquet"))]
    if feather:
        archives.append(("feather", lambda: steps.write_archive(rec, o.feather, "feather")))
    store: list[tuple[str, Callable[[], Any]]] = [
        ("zarr", lambda: steps.write_store(rec, o.store, params))]
    if rec.n_channels:  # an annotation-only recording's events-only store has nothing to draw
        store.append(("preview", lambda: (steps.write_preview(o.store, o.preview), o.preview)[1]))
    return archives, store
