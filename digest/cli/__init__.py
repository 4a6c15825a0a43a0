"""The `digest` command: thin commands over the library (one module per concern, registered on the
group in group.py when the package is imported)."""

from digest.cli import channels, library, rate, runs, status, subscribers  # noqa: F401  (registers their commands)
from digest.cli.group import LAZY_COMMANDS, DigestGroup, main

__all__ = ["LAZY_COMMANDS", "DigestGroup", "main"]
