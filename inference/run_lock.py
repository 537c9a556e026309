"""One writer per run folder: an OS file lock held for as long as a command writes the run.

Two ``train --out D`` started together, or ``train --force --out D`` while another ``train`` still
writes D, would otherwise both succeed and leave one run's config beside the other's checkpoint. The
lock is ``fcntl.flock`` on ``PARENT/.NAME.lock`` (beside the folder, not inside: ``--force`` replaces
the folder itself). The OS releases it when the process ends in any way, SIGKILL included, so a
stale lock never blocks anyone; the holder writes its PID into the file, which a refused writer
names. The file is removed on release; a writer that locked a file someone had just removed checks
the inode and tries again (the usual lock-file race). Written with fcntl rather than the ``filelock``
library because the refusal must name the holder, which needs the file's content under the lock.
On systems without ``fcntl`` (Windows) no lock is taken.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bayesvae.models.errors import BadInput

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def lock_path(folder: str | os.PathLike) -> Path:
    folder = Path(os.path.realpath(folder))  # a link and its folder share one lock
    return folder.with_name(f".{folder.name}.lock")


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextmanager
def run_folder_lock(folder: str | os.PathLike | None, doing: str = "writing") -> Iterator[None]:
    """Hold the lock of run folder ``folder`` (None: no folder, no lock) or raise :class:`BadInput`
    naming the PID that holds it. A missing parent folder is created (callers lock right before writing)."""
    if folder is None or fcntl is None:
        yield
        return
    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"cannot create run folder {folder}: {error.strerror or error}") from None
    for _ in range(100):  # each retry means another process removed the file in between
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            verb = "lock" if Path(folder).exists() else "create"
            raise BadInput(f"cannot {verb} run folder {folder}: {error.strerror or error} ({path})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BadInput(f"{folder} is in use: {_holder(path)} is {doing} it (lock {path}); wait for it "
                           f"to finish or stop it") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - a hundred removals in a row
        raise BadInput(f"cannot lock run folder {folder}: its lock file keeps disappearing ({path})")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        try:
            path.unlink()  # while still locked: a waiter that opened it sees the inode change and retries
        except FileNotFoundError:
            pass
        os.close(fd)
