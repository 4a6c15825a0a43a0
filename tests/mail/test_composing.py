"""Composing ahead of the send loop: on a thread, or in a forked process for a large batch."""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from digest.domain import OutgoingMessage
from digest.mail import ahead as composing
from digest.process import forked
from digest.process.forked import fork_available


def _composers(n: int, refused: int) -> list[Callable[[], OutgoingMessage]]:
    def make(i: int) -> Callable[[], OutgoingMessage]:
        def compose() -> OutgoingMessage:
            if i == refused:
                raise ValueError(f"to_addr: not an address: reader{i}")
            return OutgoingMessage(i, f"reader{i}@example.org", f"<m{i}@example.org>",
                                   f"{os.getpid()}:{i}:".encode() + b"x" * 2000)
        return compose
    return [make(i) for i in range(n)]


def _drain(composer: composing.Composer, n: int) -> list[OutgoingMessage | str]:
    out: list[OutgoingMessage | str] = []
    try:
        for _ in range(n):
            fut = composer.next()
            try:
                out.append(fut.result())
            except ValueError as exc:
                out.append(str(exc))
    finally:
        composer.close()
    return out


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_a_forked_composer_gives_the_threads_messages_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(composing, "CHUNK", 3)  # 41 messages: many requests, a short last one
    monkeypatch.setattr(composing, "WINDOW", 2)
    jobs = _composers(41, refused=17)
    on_thread = _drain(composing.ThreadComposer(jobs), 41)
    forked = _drain(composing.ForkedComposer(jobs), 41)
    assert on_thread[17] == forked[17] == "to_addr: not an address: reader17"  # refused, the rest go on
    me = str(os.getpid()).encode()
    for i in range(41):
        if i == 17:
            continue
        a, b = on_thread[i], forked[i]
        assert isinstance(a, OutgoingMessage) and isinstance(b, OutgoingMessage)
        assert (a.key, a.to_addr, a.message_id) == (b.key, b.to_addr, b.message_id) == (
            i, f"reader{i}@example.org", f"<m{i}@example.org>")
        assert a.data.split(b":", 1)[1] == b.data.split(b":", 1)[1]
        assert a.data.startswith(me) and not b.data.startswith(me)  # the forked one ran elsewhere


def test_large_batches_go_to_a_process_small_ones_stay_on_a_thread() -> None:
    small = composing.open_composer(_composers(3, refused=-1))
    assert isinstance(small, composing.ThreadComposer)
    small.close()
    if fork_available():
        large = composing.open_composer(_composers(composing.PROCESS_MIN, refused=-1))
        assert isinstance(large, composing.ForkedComposer)
        assert _drain(large, 2)[1] != ""  # closed early: the process goes, nothing hangs
        # With another thread running (the service), no fork: a lock it held would stay held.
        release = threading.Event()
        other = threading.Thread(target=release.wait)
        other.start()
        try:
            busy = composing.open_composer(_composers(composing.PROCESS_MIN, refused=-1))
            assert isinstance(busy, composing.ThreadComposer)
            busy.close()
        finally:
            release.set()
            other.join()


def _kind_in_a_daemon(out: Any) -> None:
    composer = composing.open_composer(_composers(composing.PROCESS_MIN, refused=-1))
    out.put(type(composer).__name__)
    composer.close()


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_a_daemonic_process_composes_on_a_thread() -> None:
    """A Celery worker's pool process is daemonic and may not start a process of its own."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    daemon = ctx.Process(target=_kind_in_a_daemon, args=(out,), daemon=True)
    daemon.start()
    try:
        assert out.get(timeout=30) == "ThreadComposer"
    finally:
        daemon.join(timeout=30)
    assert daemon.exitcode == 0


def _dies_at_3(i: int) -> OutgoingMessage:
    if i == 3:
        os._exit(1)  # the forked composer dies mid-batch (in the test process this is never called)
    return OutgoingMessage(i, "a@example.org", f"<m{i}@example.org>", b"x")


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_a_dead_composing_process_stops_the_run_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(composing, "CHUNK", 2)
    monkeypatch.setattr(composing, "ANSWER_TIMEOUT_S", 3.0)
    composer = composing.ForkedComposer([functools.partial(_dies_at_3, i) for i in range(8)])
    try:
        assert [composer.next().result().key for _ in range(2)] == [0, 1]  # 2 and 3: one lost request
        with pytest.raises(RuntimeError, match="composing process gave no message"):
            composer.next()
    finally:
        composer.close()


def _stuck_at_3(i: int) -> OutgoingMessage:
    if i == 3:
        time.sleep(600)  # the forked composer hangs (in the test process this is never called)
    return OutgoingMessage(i, "a@example.org", f"<m{i}@example.org>", b"x")


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_a_stuck_composing_process_stops_the_run_and_closing_does_not_wait_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(composing, "CHUNK", 2)
    monkeypatch.setattr(composing, "ANSWER_TIMEOUT_S", 1.0)
    composer = composing.ForkedComposer([functools.partial(_stuck_at_3, i) for i in range(8)])
    try:
        assert [composer.next().result().key for _ in range(2)] == [0, 1]
        with pytest.raises(RuntimeError, match="composing process gave no message in 1 s"):
            composer.next()
    finally:
        started = time.monotonic()
        composer.close()
    assert time.monotonic() - started < 30
    assert threading.active_count() == 1  # the executor's thread is gone: the next batch may fork


def _group(i: int) -> int:
    if i == 2:
        raise KeyError(f"group {i}")
    return i * 10


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_map_forked_runs_in_order_elsewhere_and_carries_errors_back() -> None:
    me = os.getpid()
    assert forked.map_forked(lambda i: (i, os.getpid() != me), 5, 2) == [(i, True) for i in range(5)]
    with pytest.raises(KeyError, match="group 2"):
        forked.map_forked(_group, 5, 2)
    with pytest.raises(BrokenProcessPool):  # a worker that dies fails the map, it does not hang
        forked.map_forked(lambda i: os._exit(1) if i == 1 else i, 3, 2)
    assert threading.active_count() == 1
