"""Hold Ctrl-C (SIGINT) and SIGTERM while a set of files is written, then act on them.

A command that writes several files (diagnose: a table, its JSON, findings and plots) must not be stopped
between two of them, or the folder mixes new files with old ones. Writing them takes a second or two, so
the signal waits for the end of the set instead. Written by hand: neither the standard library nor the
project's dependencies defer signals around a block. Training routes the same two signals
(:func:`route_interrupts`) to a flag that its loop polls between steps (:mod:`.train`).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

HELD = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM arrived outside training: raised like Ctrl-C's KeyboardInterrupt (a BaseException, so no
    ``except Exception`` swallows it) so that every clean-up runs (staged folders and temporaries are
    removed) instead of the process ending where it stood."""


def terminate_by_exception() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` (the command line's default; training and deferred blocks
    route it elsewhere while they run); returns what puts the previous handler back."""
    def raise_terminated(_signum, _frame):
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    return lambda: signal.signal(signal.SIGTERM, previous)


def route_interrupts(handler: Callable[[int, object], None]) -> Callable[[], None]:
    """Send SIGINT and SIGTERM to ``handler(signum, frame)``; returns what puts the previous handlers back.
    Signals can only be handled in the main thread: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {signum: signal.signal(signum, handler) for signum in HELD}
    return lambda: [signal.signal(signum, old) for signum, old in previous.items()]


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT/SIGTERM held; afterwards, the first one received takes effect (Ctrl-C as
    KeyboardInterrupt, SIGTERM through its previous handler: on the command line :class:`Terminated`).
    Outside the main thread: no change."""
    received: list[int] = []
    restore = route_interrupts(lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        restore()
    if received:
        signal.raise_signal(received[0])   # the handler that was in force now (Python's: KeyboardInterrupt)
