"""Jobs run in forked worker processes that share what the parent has prepared.

The day's features, paper-paper cosines and keyword index take a few hundred MB and a second to
build; forked workers inherit them instead of receiving them pickled. Only the jobs' small results
travel back.

The workers are a concurrent.futures.ProcessPoolExecutor on the "fork" start method: results and
errors come back as futures, a worker that dies fails every future at once (BrokenProcessPool)
instead of leaving a lost task waiting. What it does not offer before Python 3.14
(terminate_workers) is ending a stuck worker, whose pool's shutdown, and the interpreter's exit,
would otherwise wait for ever: the processes it starts are kept through its mp_context, below.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from multiprocessing.context import ForkContext, ForkProcess
from typing import Any, TypeVar

T = TypeVar("T")

_JOB: Callable[[int], Any] | None = None  # set in the parent just before forking; inherited


def _call(i: int) -> Any:
    assert _JOB is not None
    return _JOB(i)


def fork_available() -> bool:
    """Fork is there, and this process may have children (a Celery worker's pool process is
    daemonic, and multiprocessing refuses children to daemonic processes)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


class _TrackedForks(ForkContext):
    """The fork context, keeping the processes the executor starts so that they can be stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[ForkProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> ForkProcess:  # type: ignore[override]
        process = ForkProcess(*args, **kwargs)
        self.started.append(process)
        return process


@contextmanager
def fork_pool(processes: int, initializer: Callable[[], None] | None = None,
              forks: _TrackedForks | None = None) -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor of forked workers, started at once (so that a refused fork raises here,
    and the workers inherit what exists now). On leaving, work not started is cancelled and the
    workers end when their current job is done (a job cut short while it sends its result back
    would leave the executor waiting for the rest). `forks`: to stop a stuck worker (stop_workers)."""
    pool = ProcessPoolExecutor(processes, mp_context=forks or _TrackedForks(), initializer=initializer)
    try:
        pool.submit(int).result()  # forks every worker now (with fork the executor forks all on first use)
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(forks: _TrackedForks) -> None:
    """End a pool's workers now: for one that gives no answer. Its executor sees them gone, fails
    their futures and lets its shutdown return."""
    for process in forks.started:
        if process.is_alive():
            process.kill()


def map_forked(job: Callable[[int], T], n: int, processes: int,
               initializer: Callable[[], None] | None = None) -> list[T]:
    """[job(0), ..., job(n - 1)], in up to `processes` forked processes; in this process when there
    is one job, one process, or no fork on this platform. initializer: run first in each worker
    (for example to drop database connections inherited from the parent). The first job to raise
    stops the others and its error is raised here."""
    global _JOB
    if processes <= 1 or n <= 1 or not fork_available():
        return [job(i) for i in range(n)]
    _JOB = job
    try:
        with fork_pool(min(processes, n), initializer) as pool:
            return list(pool.map(_call, range(n)))
    finally:
        _JOB = None


_RANGE_JOB: Callable[[int], Any] | None = None  # the ForkedWorker's job, inherited like _JOB


def _call_range(start: int, stop: int) -> list[Any]:
    assert _RANGE_JOB is not None
    return [_RANGE_JOB(i) for i in range(start, stop)]


class ForkedWorker:
    """One forked process that runs job(i) for ranges of i handed to it, while this process does
    other work: Python work that would otherwise share this process's interpreter lock. Results come
    back pickled, in the order asked for. One at a time per process (the job is a module global)."""

    def __init__(self, job: Callable[[int], T], initializer: Callable[[], None] | None = None) -> None:
        global _RANGE_JOB
        _RANGE_JOB = job
        self._forks = _TrackedForks()
        self._stack = ExitStack()
        try:
            self._pool = self._stack.enter_context(fork_pool(1, initializer, self._forks))
        except BaseException:
            _RANGE_JOB = None
            raise

    def submit(self, start: int, stop: int) -> Future[list[Any]]:
        return self._pool.submit(_call_range, start, stop)

    def stop(self) -> None:
        """The worker ends now, its work lost: for one that gives no answer."""
        stop_workers(self._forks)

    def close(self) -> None:
        global _RANGE_JOB
        self._stack.close()
        _RANGE_JOB = None
