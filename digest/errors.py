"""Typed errors. The CLI turns each into a one-line message and an exit code."""

from __future__ import annotations


class DigestError(Exception):
    """Base class: a problem the user can act on, with a message that names the culprit."""

    exit_code = 1


class ConfigError(DigestError):
    """A bad config file, key or value."""

    exit_code = 2


class InputError(DigestError):
    """Bad user input on the command line: an address, keywords, a date, an id."""

    exit_code = 2


class FeedError(DigestError):
    """A source that could not be fetched or parsed."""


class StoreError(DigestError):
    """The database cannot be reached or is in an unexpected state."""


class StateFileError(StoreError):
    """A state file (the database, the secret key) that exists but cannot be used as it is: bad
    input to fix by hand, never started over."""

    exit_code = 2


class DeliveryError(DigestError):
    """A message could not be delivered (the whole transport, not one recipient)."""


class DispatchError(DigestError):
    """The task queue (Celery broker or workers) cannot be reached or did not answer in time."""
