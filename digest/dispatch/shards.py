"""Splitting a day's subscribers into shards, one task each."""

from __future__ import annotations

from collections.abc import Iterable


def shards(subscriber_ids: Iterable[int], size: int) -> list[list[int]]:
    """Sorted ids in consecutive groups of at most ``size``: a redelivered shard is the same group."""
    if size < 1:
        raise ValueError("shard size must be at least 1")
    ordered = sorted(set(subscriber_ids))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]
