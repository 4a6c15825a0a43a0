"""Signed, purpose-bound tokens for the links in an email.

Opaque ids only (never an email address). Keys rotate: sign with the first, accept any.

Tokens are itsdangerous's URLSafeTimedSerializer tokens (payload.timestamp.signature), one salt per
purpose so that a token signed for one kind of link is refused by every other; verifying is the
serializer's loads. Signing uses the serializer's own signer (make_signer, once per purpose) on the
payload as dumps writes it when zlib would not shorten it: dumps rebuilds the signer and tries zlib
on every call, 17 us a token against 4.5 (a digest carries some fifty links; benchmarks/compose_speed.py).
loads reads compressed and uncompressed payloads alike, so every token is one plain itsdangerous
reads and writes (tests/signing/test_tokens.py), links mailed by earlier versions included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer, base64_encode

PURPOSES = frozenset({"unsubscribe", "open", "star", "dislike", "manage", "confirm", "view", "csrf", "session", "feed"})

# The JSON itsdangerous's URL-safe serializers write: no spaces, non-ASCII kept (then UTF-8).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

SIGNED_AT = "@signed"  # set by verify_link; never a payload key (those are single letters)

# Addresses a reader keeps rather than clicks once: the same payload signs to the same token, so the
# feed address a feed reader was given is the one the manage page and `digest feed-url` show again.
# Their payload carries the key that retires them (the feed key), so the signing time tells nothing.
STABLE_PURPOSES = frozenset({"feed"})


class _UndatedSigner(TimestampSigner):
    """A timestamp signer whose stamp is always 0: tokens read as any other, and never expire by age."""

    def get_timestamp(self) -> int:
        return 0


class InvalidToken(Exception):
    """A forged, altered, expired or wrong-purpose token."""


class LinkSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        keys = [k for k in secret_keys if k]
        if not keys:
            raise ValueError("at least one secret key is needed")
        # itsdangerous signs with the LAST key of its list and accepts them all; ours lists the newest first.
        oldest_first = list(reversed(keys))
        self._serializers = {
            purpose: URLSafeTimedSerializer(oldest_first, salt=f"digest.{purpose}",
                                            signer=_UndatedSigner if purpose in STABLE_PURPOSES else TimestampSigner)
            for purpose in PURPOSES}
        self._signers = {purpose: serializer.make_signer() for purpose, serializer in self._serializers.items()}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        found = self._serializers.get(purpose)
        if found is None:
            raise ValueError(f"unknown token purpose: {purpose}")
        return found

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        signer = self._signers.get(purpose)
        if signer is None:
            raise ValueError(f"unknown token purpose: {purpose}")
        return signer.sign(base64_encode(_JSON.encode(payload))).decode("ascii")

    def verify(self, purpose: str, token: str, *, max_age_s: int | None = None) -> dict[str, Any]:
        """The payload of a token signed for this purpose (InvalidToken otherwise); max_age_s for the
        tokens that expire by their age (the CSRF token); links carry their expiry in the payload."""
        return self._loads(purpose, token, max_age_s)[0]

    def verify_link(self, purpose: str, token: str) -> dict[str, Any]:
        """The payload of a link that names a subscriber, with when it was signed (SIGNED_AT, Unix
        seconds): a link without a subscriber key is trusted only if it is younger than the row it
        names (Site.link_key_matches)."""
        data, signed_at = self._loads(purpose, token, None)
        return {**data, SIGNED_AT: signed_at}

    def _loads(self, purpose: str, token: str, max_age_s: int | None) -> tuple[dict[str, Any], int]:
        try:
            data, signed_at = self._serializer(purpose).loads(token, max_age=max_age_s, return_timestamp=True)
        except SignatureExpired:
            raise InvalidToken("link expired") from None
        except BadSignature:
            raise InvalidToken("invalid link") from None
        if not isinstance(data, dict):
            raise InvalidToken("invalid link")
        return data, int(signed_at.timestamp())
