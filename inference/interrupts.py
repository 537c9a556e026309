"""Hold Ctrl-C (SIGINT) and SIGTERM while a set of files is written, then act on them.

A command that writes several files (diagnose: a table, its JSON, findings and plots) must not be stopped
between two of them, or the folder mixes new files with old ones. Writing them takes a second or two, so
the signal waits for the end of the set instead. Written by hand: neither the standard library nor the
project's dependencies defer signals around a block; training has its own flag (:mod:`.train`), which the
loop polls between steps.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT/SIGTERM held; afterwards, the first one received takes effect (Ctrl-C as
    KeyboardInterrupt, SIGTERM through its previous handler). Outside the main thread: no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _frame: received.append(signum)) for signum in HELD}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        signal.raise_signal(received[0])   # the handler that was in force now (Python's: KeyboardInterrupt)
