"""Jobs run in forked worker processes that share what the parent has prepared.

The day's features, paper-paper cosines and keyword index take a few hundred MB and a second to
build; forked workers inherit them instead of receiving them pickled. Only the jobs' small results
travel back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.pool import AsyncResult
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


def map_forked(job: Callable[[int], T], n: int, processes: int,
               initializer: Callable[[], None] | None = None) -> list[T]:
    """[job(0), ..., job(n - 1)], in up to `processes` forked processes; in this process when there
    is one job, one process, or no fork on this platform. initializer: run first in each worker
    (for example to drop database connections inherited from the parent)."""
    global _JOB
    if processes <= 1 or n <= 1 or not fork_available():
        return [job(i) for i in range(n)]
    _JOB = job
    try:
        with multiprocessing.get_context("fork").Pool(min(processes, n), initializer=initializer) as pool:
            return pool.map(_call, range(n), chunksize=1)
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
        self._pool = multiprocessing.get_context("fork").Pool(1, initializer=initializer)

    def submit(self, start: int, stop: int) -> AsyncResult[list[Any]]:
        return self._pool.apply_async(_call_range, (start, stop))

    def close(self) -> None:
        global _RANGE_JOB
        self._pool.terminate()
        self._pool.join()
        _RANGE_JOB = None
