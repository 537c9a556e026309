"""Named pause points, for tests that kill or interrupt a run at an exact moment (never used otherwise).

A test that kills ``bayesvae train`` "in the middle of a checkpoint write" cannot aim with sleeps:
a fast machine finishes before the kill lands, a slow one never reaches the write. Instead it sets

    BAYESVAE_PAUSE_AT=NAME:N      pause the N-th time (N >= 1) the process reaches point NAME
    BAYESVAE_PAUSE_FILE=PATH      where to announce the pause (the file appears with the point's name)

and waits for PATH to appear: the process then sits at exactly that point until a signal arrives.
SIGKILL ends it there; SIGINT or SIGTERM is handed to the process's own handler after the pause, so
an interrupt lands at a known step too. Points in use: ``start`` (data loaded, before the run folder
exists), ``step`` (a training step done), ``evaluate`` (an epoch's steps done, before the test score),
``staged:NAME`` (a new folder staged, not yet renamed into place), ``half-written:NAME`` (half of a
file's bytes written to its temporary), ``written:NAME`` (temporary complete, not yet renamed) and
``pictures`` (last checkpoint written, pictures not drawn). Without the variable every call is a no-op.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

_TARGET = os.environ.get("BAYESVAE_PAUSE_AT", "")
_FILE = os.environ.get("BAYESVAE_PAUSE_FILE", "")
_seen: Counter = Counter()


def _target() -> tuple[str, int] | None:
    name, _, count = _TARGET.rpartition(":")
    if not name or not count.isdigit() or int(count) < 1:
        return None
    return name, int(count)


def pause_point(name: str) -> None:
    """Block here if ``BAYESVAE_PAUSE_AT`` names this point and this is its N-th visit; else return at once."""
    if not _TARGET:
        return
    target = _target()
    _seen[name] += 1
    if target is None or target != (name, _seen[name]):
        return
    if threading.current_thread() is not threading.main_thread():
        _announce(name)
        threading.Event().wait()  # Python runs signal handlers in the main thread only: only SIGKILL ends this pause
    signal.raise_signal(_wait_for_a_signal(name))  # the process's own handler sees it as if it had arrived here


def _wait_for_a_signal(name: str) -> int:
    """Announce the pause, then wait until SIGINT or SIGTERM arrives; return which.

    Recording handlers are installed before the announcement, so no signal is lost between the two;
    the main thread polls what they recorded. (Not ``sigwait``: a signal sent to the process can be
    delivered to any thread that does not block it — a DataLoader's or Lightning's — and then never
    becomes pending for a main thread waiting in ``sigwait``; Python's own handler, in contrast,
    is always run in the main thread, whichever thread the signal was delivered to.)"""
    received: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: received.append(number))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        _announce(name)
        while not received:
            time.sleep(0.01)
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
    return received[0]


def _announce(name: str) -> None:
    if _FILE:
        tmp = Path(f"{_FILE}.tmp-{os.getpid()}")
        tmp.write_text(f"{name} {os.getpid()}\n")
        os.replace(tmp, _FILE)  # the test never reads a half-written announcement
