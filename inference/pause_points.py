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
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "sigwait"):
        _announce(name)
        threading.Event().wait()  # no signal masks here: only SIGKILL ends the pause
    awaited = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, awaited)  # no signal is lost between announce and wait
    try:
        _announce(name)
        received = signal.sigwait(awaited)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    signal.raise_signal(received)  # the process's own handler sees it as if it had arrived here


def _announce(name: str) -> None:
    if _FILE:
        tmp = Path(f"{_FILE}.tmp-{os.getpid()}")
        tmp.write_text(f"{name} {os.getpid()}\n")
        os.replace(tmp, _FILE)  # the test never reads a half-written announcement
