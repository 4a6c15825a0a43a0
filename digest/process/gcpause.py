"""Ranking with the cyclic garbage collector paused.

Ranking a group makes hundreds of thousands of small objects (feedback rows, sets, picks) that
reference counting frees on its own, none of them in cycles. Each burst of allocations still sets
off the collector, whose full passes walk every live object of the run (the stored papers read so
far, the day's candidates): about a tenth of the ranking time. Paused for a group and resumed after,
the collector catches any cycle at its next pass.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
