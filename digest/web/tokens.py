"""Signed, purpose-bound tokens for the links in an email.

Opaque ids only (never an email address). Keys rotate: sign with the first, accept any.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PURPOSES = frozenset({"unsubscribe", "open", "star", "dislike", "manage", "confirm", "view", "csrf"})


class InvalidToken(Exception):
    """A forged, altered, expired or wrong-purpose token."""


class LinkSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        keys = [k for k in secret_keys if k]
        if not keys:
            raise ValueError("at least one secret key is needed")
        # itsdangerous signs with the LAST key of the list and accepts them all.
        self._keys = list(reversed(keys))

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose: {purpose}")
        return URLSafeTimedSerializer(self._keys, salt=f"digest.{purpose}")

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        return str(self._serializer(purpose).dumps(payload))

    def verify(self, purpose: str, token: str, *, max_age_s: int | None = None) -> dict[str, Any]:
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age_s)
        except SignatureExpired:
            raise InvalidToken("link expired") from None
        except BadSignature:
            raise InvalidToken("invalid link") from None
        if not isinstance(data, dict):
            raise InvalidToken("invalid link")
        return data
