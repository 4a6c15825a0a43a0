"""Progress of a CLI run: a bar when stderr is a terminal, one structured log line per step otherwise
(cron mail, journald), so that a long run shows where it is either way."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

import click

# The name from before the move to digest.process: operators filter these lines by it.
log = logging.getLogger("digest.progress")
log.setLevel(logging.INFO)  # shown without -v: these lines are the non-terminal progress display


class Step(Protocol):
    def __call__(self, event: str, **fields: Any) -> None: ...


def _logfmt(event: str, fields: dict[str, Any]) -> str:
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = str(value)
        parts.append(f"{key}={text!r}" if (" " in text or not text) else f"{key}={text}")
    return " ".join(parts)


@contextmanager
def progress(label: str, length: int, stream: TextIO | None = None) -> Iterator[Step]:
    """Yields step(event, **fields): advances the bar, or logs `event=... key=value` on a non-terminal."""
    out = stream or sys.stderr
    if not out.isatty():
        def line(event: str, **fields: Any) -> None:
            log.info("%s", _logfmt(event, fields))

        yield line
        return
    with click.progressbar(length=max(length, 1), label=label, file=out, show_pos=True) as bar:
        def advance(event: str, **fields: Any) -> None:
            bar.update(1)

        yield advance
