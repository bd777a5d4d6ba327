"""Committing a finished temporary output into place: race-safe, kill-safe, glob-safe.

Used by :func:`biosigio_lib._fs.atomic_target`; the guarantees per backend are documented in
docs/archive.md ("Write guarantees").

Local disk
    The output is written to ``.<name>.tmp-<host>-<pid>-<hex>`` beside the target. Creating
    uses a rename that refuses an existing target (``renameat2(RENAME_NOREPLACE)`` for folders
    on Linux, ``os.link`` + unlink for files); overwriting replaces a file with one
    ``os.replace`` and swaps a folder with one ``renameat2(RENAME_EXCHANGE)``. Where those
    are missing (not Linux, or a filesystem without them) the fallback is ``os.rename`` (it
    refuses a non-empty folder on POSIX and any target on Windows) and, to overwrite a
    folder, two renames through ``.<name>.old-<host>-<pid>-<hex>``.
Object stores and memory://
    Nothing is renamed: the finished temporary prefix is copied into place file by file,
    the completeness marker (``zarr.json`` / the archive manifest) last. One writer at a time
    per target holds ``.<name>.lock``, created with a conditional put (S3 ``If-None-Match``;
    a process-wide lock for memory://). An overwritten folder is first copied to an ``.old``
    sibling and its marker removed, so a killed switch leaves the complete old copy, which the
    next write puts back.
Long names
    A name so long that its siblings would pass 255 bytes gets siblings named after a
    shortened form plus a hash of the full name (``_stem``), so every legal name can be written.
Leftovers
    A sibling belongs to a dead writer ("stale") when its host is this one and its pid is not
    running, or when it is older than :data:`STALE_SECONDS`. Only stale ones are removed or
    restored: a live writer's temporary output is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import fsspec

from .errors import StoreExistsError, WriteError

#: This machine in sibling names: the host name's letters and digits only.
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
#: A sibling (temporary output, old copy, lock) of another host is stale after this long.
STALE_SECONDS = 24 * 3600.0
#: How long a remote writer waits for another live writer's lock on the same target.
LOCK_WAIT_SECONDS = 600.0

_MEMORY_LOCK = threading.Lock()  # memory:// lives in this process: one lock is enough
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


# ------------------------------------------------------------------------- sibling names
#: Bytes a sibling name adds to the target's (``.``, ``.old-``, host, pid, hex); names are
#: at most 255 bytes on common file systems, so a longer target name is shortened + hashed.
_SIBLING_EXTRA = 2 + 4 + 32 + 1 + 10 + 1 + 12
_NAME_MAX = 255


def _stem(name: str) -> str:
    """``name`` itself, or, if a sibling of it would exceed NAME_MAX, a unique shortened form."""
    raw = name.encode("utf-8", "surrogatepass")  # never fails; over-counts escapes: fine
    if len(raw) + _SIBLING_EXTRA <= _NAME_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    keep = raw[:_NAME_MAX - _SIBLING_EXTRA - 17].decode("utf-8", "ignore")
    return f"{keep}~{digest}"


def sibling_name(name: str, tag: str) -> str:
    """``.<name>.<tag>-<host>-<pid>-<hex>``: hidden, and says which process owns it."""
    return f".{_stem(name)}.{tag}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _parse(entry: str, name: str) -> tuple[str, str | None, int | None] | None:
    """(tag, host, pid) of a sibling of ``name`` (host/pid None for the old unnamed form)."""
    m = re.fullmatch(re.escape(f".{_stem(name)}.")
                     + r"(tmp|old)-(?:([A-Za-z0-9]+)-(\d+)-)?[0-9a-f]{12}", entry)
    if m is None:
        return None
    return m.group(1), m.group(2), int(m.group(3)) if m.group(3) else None


def _owner_dead(host: str | None, pid: int | None) -> bool:
    """True only when the owner ran on this host and its pid is no longer running."""
    if host != _HOST or pid is None or os.name != "posix":
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _stale(host: str | None, pid: int | None, age: float | None) -> bool:
    return _owner_dead(host, pid) or (age is not None and age > STALE_SECONDS)


# ---------------------------------------------------------------------- local primitives
@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _call_renameat2(src: str, dst: str, flags: int) -> None:
    fn = _renameat2()
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", src)
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


def _rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``; FileExistsError if ``dst`` exists (atomically where possible)."""
    if os.path.isdir(src) and not os.path.islink(src):
        try:
            _call_renameat2(src, dst, _RENAME_NOREPLACE)
            return
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(errno.EEXIST, "target exists", dst) from None
            if exc.errno not in _UNSUPPORTED:
                raise
        # fallback: rename refuses a non-empty folder (POSIX) or any target (Windows)
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", dst)
        try:
            os.rename(src, dst)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise FileExistsError(errno.EEXIST, "target exists", dst) from None
            raise
        return
    try:
        os.link(src, dst)  # fails if dst exists, whatever it is
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED | {errno.EPERM, errno.EXDEV, errno.EMLINK}:
            raise
        # no hard links here: reserve the name exclusively, then replace the reservation
        os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.replace(src, dst)
        return
    os.unlink(src)


def _rename_exchange(src: str, dst: str) -> None:
    """Swap ``src`` and ``dst`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    _call_renameat2(src, dst, _RENAME_EXCHANGE)


def remove_local(path: str) -> None:
    """Delete a file or folder; a missing one is fine."""
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def commit_local(tmp: str, target: str, *, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``target``; StoreExistsError if it exists and not overwrite.

    Raises FileExistsError (caller turns it into StoreExistsError) or OSError; ``tmp`` is left
    for the caller to remove.
    """
    if not overwrite:
        _rename_noreplace(tmp, target)
        return
    is_dir = os.path.isdir(tmp)
    while True:
        if not os.path.lexists(target):
            try:
                _rename_noreplace(tmp, target)
                return
            except FileExistsError:
                continue  # another writer created it meanwhile: replace that one
        if not is_dir and not os.path.isdir(target):
            os.replace(tmp, target)  # a file over a file: one atomic rename
            return
        try:
            _rename_exchange(tmp, target)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            _two_renames(tmp, target)
            return
        remove_local(tmp)  # tmp now holds the old output
        return


def _two_renames(tmp: str, target: str) -> None:
    """Fallback overwrite: target -> .old, tmp -> target, delete .old. A kill between the two
    leaves the complete .old, which :func:`recover_local` puts back."""
    parent, name = os.path.split(target)
    old = os.path.join(parent, sibling_name(name, "old"))
    os.rename(target, old)
    try:
        _rename_noreplace(tmp, target)
    except BaseException:
        if not os.path.lexists(target):
            with contextlib.suppress(OSError):
                _rename_noreplace(old, target)
        raise
    remove_local(old)


def recover_local(target: str) -> None:
    """Undo what killed writers left beside ``target``: put back a stale ``.old`` copy if the
    target is missing, then delete stale temporaries. Live writers' siblings are kept."""
    parent, name = os.path.split(target)
    try:
        entries = os.listdir(parent or ".")
    except OSError:
        return
    sibs = []
    for e in entries:
        parsed = _parse(e, name)
        if parsed is None:
            continue
        path = os.path.join(parent, e)
        try:
            age = time.time() - os.lstat(path).st_mtime
        except FileNotFoundError:
            continue
        if _stale(parsed[1], parsed[2], age):
            sibs.append((age, parsed[0], path))
    if not sibs:
        return
    if not os.path.lexists(target):
        for _, _tag, path in sorted(s for s in sibs if s[1] == "old"):  # newest first
            try:
                _rename_noreplace(path, target)
                break
            except FileExistsError:
                break
            except OSError:
                continue
    for _, _tag, path in sibs:
        if os.path.lexists(path):
            remove_local(path)


# ---------------------------------------------------------------------- remote primitives
def files_under(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Every file at or below ``path``, listed without glob expansion (names may hold ``[``)."""
    if fs.isfile(path):
        return [path]
    if not fs.isdir(path):
        return []
    return sorted(fs.find(path, withdirs=False))


def remove_remote(fs: fsspec.AbstractFileSystem, path: str) -> None:
    """Delete a file or everything under a prefix, one named file at a time: ``fs.rm`` would
    glob-expand ``[``/``*`` in the name and could delete another output."""
    with contextlib.suppress(FileNotFoundError):
        for f in files_under(fs, path):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(f)
    with contextlib.suppress(OSError, NotImplementedError, ValueError):
        if fs.isdir(path):  # pseudo-folders (memory://) go bottom-up
            dirs = [p for p, d in fs.find(path, withdirs=True, detail=True).items()
                    if d.get("type") == "directory"]
            for d in sorted(dirs, key=len, reverse=True):
                fs.rmdir(d)
            fs.rmdir(path)
    fs.invalidate_cache(path)


def _copy_into_place(fs: fsspec.AbstractFileSystem, src: str, dst: str) -> None:
    """One file copied (server-side on S3); the single object appears whole or not at all."""
    fs.cp_file(src, dst)


def create_exclusive(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``path`` only if it does not exist (FileExistsError otherwise).

    S3 (s3fs): a conditional put (``If-None-Match: *``). memory://: a process-wide lock around
    check-and-write. Other filesystems: fsspec's ``mode="create"`` (for many only a check).
    """
    if fs.protocol == "memory" or "memory" in fs.protocol:
        with _MEMORY_LOCK:
            if fs.exists(path):
                raise FileExistsError(errno.EEXIST, "exists", path)
            fs.pipe_file(path, data)
        return
    try:
        fs.pipe_file(path, data, mode="create")
    except TypeError:  # a filesystem without the ``mode`` keyword
        if fs.exists(path):
            raise FileExistsError(errno.EEXIST, "exists", path) from None
        fs.pipe_file(path, data)
    except FileExistsError:
        raise
    except OSError as exc:
        if "PreconditionFailed" in str(exc) or "412" in str(exc):
            raise FileExistsError(errno.EEXIST, "exists", path) from exc
        raise


def _age(fs: fsspec.AbstractFileSystem, path: str) -> float | None:
    """Seconds since the newest file under ``path`` changed (None if unknown)."""
    newest = None
    with contextlib.suppress(OSError, NotImplementedError, ValueError):
        infos = (fs.find(path, withdirs=False, detail=True) if fs.isdir(path)
                 else {path: fs.info(path)})
        for info in infos.values():
            t = info.get("LastModified") or info.get("created") or info.get("mtime")
            if hasattr(t, "timestamp"):
                t = t.timestamp()
            if isinstance(t, int | float):
                newest = t if newest is None else max(newest, t)
    return None if newest is None else time.time() - float(newest)


#: Filesystems whose ``find(path, maxdepth=1, withdirs=True, prefix=...)`` lists only the
#: names starting with ``prefix`` (a server-side filter): s3fs and gcsfs.
_PREFIX_LISTING = ("s3fs", "gcsfs")


def _sibling_entries(fs: fsspec.AbstractFileSystem, parent: str, name: str) -> list[str]:
    """The entries of ``parent`` that may be siblings of ``name``: on object stores only the
    names starting with ``.<stem>.`` are listed, so a write costs the same beside 10 or
    100,000 other outputs; elsewhere the folder is listed (and filtered by the caller)."""
    fs.invalidate_cache(parent)
    if type(fs).__module__.split(".")[0] in _PREFIX_LISTING:
        try:
            return list(fs.find(parent, maxdepth=1, withdirs=True, prefix=f".{_stem(name)}."))
        except (ValueError, TypeError):  # older s3fs: no prefix with maxdepth/withdirs
            pass
    return list(fs.ls(parent, detail=False))


def _siblings(fs: fsspec.AbstractFileSystem, target: str) -> list[tuple[str, str, str | None,
                                                                            int | None]]:
    parent, _, name = target.rstrip("/").rpartition("/")
    try:
        entries = _sibling_entries(fs, parent, name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for p in entries:
        parsed = _parse(p.rstrip("/").rpartition("/")[2], name)
        if parsed is not None:
            out.append((p.rstrip("/"), *parsed))
    return out


def sweep_remote(fs: fsspec.AbstractFileSystem, target: str) -> None:
    """Delete stale temporary outputs beside ``target`` (killed writers'), keep live ones."""
    for path, tag, host, pid in _siblings(fs, target):
        if tag == "tmp" and (_owner_dead(host, pid) or _stale(host, pid, _age(fs, path))):
            remove_remote(fs, path)


def complete(fs: fsspec.AbstractFileSystem, path: str, marker: str | None) -> bool:
    """Whether a finished output is at ``path``: a file, or a folder holding its marker."""
    fs.invalidate_cache(path)
    if fs.isfile(path):
        return True
    if marker:
        return bool(fs.isfile(f"{path}/{marker}"))
    return bool(files_under(fs, path))


@contextlib.contextmanager
def remote_lock(fs: fsspec.AbstractFileSystem, target: str, url: str) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``target``: one writer at a time commits to it."""
    parent, _, name = target.rstrip("/").rpartition("/")
    lock = f"{parent}/.{name}.lock" if parent else f".{name}.lock"
    body = json.dumps({"host": _HOST, "pid": os.getpid(), "time": time.time(),
                       "id": uuid.uuid4().hex}).encode()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.02
    while True:
        try:
            create_exclusive(fs, lock, body)
            break
        except FileExistsError:
            if _lock_stale(fs, lock):
                remove_remote(fs, lock)
                continue
            if time.monotonic() > deadline:
                raise WriteError(f"another writer has held {lock!r} for over "
                                 f"{LOCK_WAIT_SECONDS:.0f} s; if none is running, delete that "
                                 "lock object and retry", path=url) from None
            time.sleep(delay)
            delay = min(0.5, delay * 2)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            fs.rm_file(lock)
            fs.invalidate_cache(lock)


def _lock_stale(fs: fsspec.AbstractFileSystem, lock: str) -> bool:
    try:
        info = json.loads(fs.cat_file(lock))
        host, pid, t = str(info["host"]), int(info["pid"]), float(info["time"])
    except FileNotFoundError:
        return False  # released meanwhile: try again
    except (ValueError, KeyError, TypeError, OSError):
        return True  # unreadable: not one of ours
    return _stale(host, pid, time.time() - t)


def install(fs: fsspec.AbstractFileSystem, src: str, dst: str, marker: str | None, *,
            create: bool) -> None:
    """Copy the finished ``src`` to ``dst``: the old marker goes first (``dst`` is incomplete
    from then on), the new marker last (conditional put when ``create``), and files of the old
    output that the new one lacks are deleted only once the new marker is in place."""
    files = files_under(fs, src)
    if files == [src]:  # a single object
        if fs.isdir(dst):
            remove_remote(fs, dst)
        _copy_into_place(fs, src, dst)
        return
    if fs.isfile(dst):
        fs.rm_file(dst)
    if marker and fs.isfile(f"{dst}/{marker}"):
        fs.rm_file(f"{dst}/{marker}")
    rels = [f[len(src):].lstrip("/") for f in files]
    for rel in sorted(rels, key=lambda r: r == marker):
        if rel == marker and create:
            create_exclusive(fs, f"{dst}/{rel}", fs.cat_file(f"{src}/{rel}"))
        else:
            _copy_into_place(fs, f"{src}/{rel}", f"{dst}/{rel}")
    keep = set(rels)
    fs.invalidate_cache(dst)
    for f in files_under(fs, dst):
        if f[len(dst):].lstrip("/") not in keep:
            fs.rm_file(f)


def _backup(fs: fsspec.AbstractFileSystem, src: str, dst: str, marker: str | None) -> None:
    files = files_under(fs, src)
    for f in sorted(files, key=lambda f: f.endswith(f"/{marker}") if marker else False):
        rel = f[len(src):].lstrip("/")
        fs.cp_file(f, f"{dst}/{rel}" if rel else dst)


def recover_remote(fs: fsspec.AbstractFileSystem, target: str, marker: str | None) -> None:
    """Under the target's lock: put back the ``.old`` copy of a killed switch, delete the old
    copies and the debris of a killed first write (files without the marker)."""
    olds = [p for p, tag, _h, _p in _siblings(fs, target) if tag == "old"]
    if olds and not complete(fs, target, marker):
        for old in olds:
            if complete(fs, old, marker):
                install(fs, old, target, marker, create=False)
                break
    for old in olds:
        remove_remote(fs, old)
    if not complete(fs, target, marker) and files_under(fs, target):
        remove_remote(fs, target)


def commit_remote(fs: fsspec.AbstractFileSystem, tmp: str, target: str, url: str,
                  marker: str | None, *, overwrite: bool) -> None:
    """Under the target's lock, recover, check and switch ``tmp`` into place (see module doc)."""
    parent, _, name = target.rstrip("/").rpartition("/")
    with remote_lock(fs, target, url):
        recover_remote(fs, target, marker)
        exists = complete(fs, target, marker)
        if exists and not overwrite:
            raise StoreExistsError("already exists (another writer finished it first); pass "
                                   "overwrite=True to replace it", path=url)
        backup = None
        if exists and not (fs.isfile(target) and fs.isfile(tmp)):
            sib = sibling_name(name, "old")
            backup = f"{parent}/{sib}" if parent else sib
            _backup(fs, target, backup, marker)
        try:
            install(fs, tmp, target, marker, create=not overwrite)
        except BaseException:
            with contextlib.suppress(Exception):  # put the old copy back now, if we can
                recover_remote(fs, target, marker)
            raise
        if backup is not None:
            remove_remote(fs, backup)
