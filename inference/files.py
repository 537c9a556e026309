"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Write to a temporary file in the same folder, flush and fsync it, then ``os.replace`` it over the
target (atomic on POSIX and Windows); on any error the temporary file is removed. Folders are built
the same way: staged under a hidden name, then renamed into place (:func:`atomic_dir`).
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .pause_points import pause_point


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers infer the format); on success
    it is fsynced and renamed over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    remove_stale_temporaries(path.parent, path.stem)
    try:
        yield tmp
        pause_point(f"written:{path.name}")
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a full disk names the file being written, not its temporary
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder next to ``path``; on success it replaces ``path`` (an existing folder
    there is moved aside first and deleted after), so the folder appears complete or not at all. On any
    error the staging folder is removed and ``path`` is left as it was. A symbolic link to a folder
    stays a link: the folder it points to is the one replaced."""
    path = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    remove_stale_temporaries(path.parent, path.name)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old.tmp-{os.getpid()}")
    try:
        staging.mkdir()
        yield staging
        pause_point(f"staged:{path.name}")
        if path.is_dir():
            path.rename(old)
        staging.rename(path)
    finally:
        for leftover in (staging, old):
            if leftover.exists():
                shutil.rmtree(leftover)
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        write_in_halves(tmp, data, Path(path).name)


def write_in_halves(path: Path, data: bytes, name: str) -> None:
    """Write ``data`` to ``path`` in two parts, so a test can stop the process between them at the
    pause point ``half-written:NAME`` (see :mod:`.pause_points`)."""
    with open(path, "wb") as handle:
        handle.write(data[:len(data) // 2])
        handle.flush()
        pause_point(f"half-written:{name}")
        handle.write(data[len(data) // 2:])


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, name: str = "") -> None:
    """Delete ``.<name>*.tmp-PID...`` files and folders in ``folder`` left by a process killed mid-write
    (PID no longer running); every atomic write cleans up after its killed predecessors this way."""
    if not Path(folder).is_dir():
        return
    for item in Path(folder).glob(f".{name}*.tmp-*"):
        pid = item.name.rsplit(".tmp-", 1)[1].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
            except FileNotFoundError:  # another process cleaned it first
                pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
