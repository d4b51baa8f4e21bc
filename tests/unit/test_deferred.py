"""signals_deferred: a signal during the block is held, then delivered as it ends."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pgvbench._deferred import signals_deferred


def test_ctrl_c_inside_the_block_is_raised_after_it() -> None:
    finished = False
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        finished = True  # the block runs to its end first
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_installed_handler_receives_the_held_signal() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nested_blocks_deliver_once_at_the_outer_end() -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
        steps.append("after the inner block")  # still held by the outer one
    assert steps == ["after the inner block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_off_the_main_thread_it_changes_nothing() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with signals_deferred():
                pass
        except BaseException as exc:  # signal.signal would raise ValueError here
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []
