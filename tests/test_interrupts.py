"""Ctrl-C while diagnose writes its set of files waits for the end of the set (inference/interrupts.py)."""

import signal

import pytest

from bayesvae.inference.interrupts import deferred_interrupts


def test_ctrl_c_inside_a_file_set_takes_effect_after_the_last_file():
    # Python's own Ctrl-C handler, installed again: in the whole suite this test twice saw no
    # KeyboardInterrupt although Python reported that handler in force (something earlier in the process
    # had replaced it below Python, we think; signal.signal puts Python's back)
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        written = []
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupts():
                written.append("plots")
                signal.raise_signal(signal.SIGINT)    # Ctrl-C between two files
                written.append("anatomy.json")
        assert written == ["plots", "anatomy.json"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outside)


def test_no_signal_no_effect_and_errors_pass_through_with_the_handlers_restored():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with deferred_interrupts():
        pass
    with pytest.raises(OSError):
        with deferred_interrupts():
            raise OSError("disk full")
    assert {signum: signal.getsignal(signum) for signum in before} == before
