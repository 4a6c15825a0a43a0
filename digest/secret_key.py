"""The link-signing key kept in <state_dir>/secret_key when the config gives none.

Made once, atomically: the key is written to a file of its own and hard-linked into place, which
fails if another process got there first; every process then reads the one file that won. Several
processes starting at once on a fresh state folder (`digest serve` and a cron'd `digest run`) used to
fail now and then, or read the file while it was still empty.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from digest.errors import StateFileError

MIN_CHARS = 16  # as for web.secret_key: a short key is guessable


def read_key(path: Path) -> str:
    """The key in the file; a short or empty one is refused (StateFileError), never used."""
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_CHARS:
        what = "empty" if not key else f"only {len(key)} characters"
        raise StateFileError(f"secret key file {path} is {what} (at least {MIN_CHARS} needed): delete it to have "
                             "a new one made (links already mailed then stop working), or set web.secret_key")
    return key


def stored_key(path: Path) -> str:
    """The key kept at path, made there first if there is none."""
    try:
        return read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # Complete or absent, never half written; if another process made it first, theirs is used.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return read_key(path)
