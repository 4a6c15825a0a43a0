"""Signed, purpose-bound tokens for the links in an email.

Opaque ids only (never an email address). Keys rotate: sign with the first, accept any.

Tokens are itsdangerous URLSafeTimedSerializer tokens (payload.timestamp.signature, HMAC-SHA1 over
a django-concat derived key). Verifying goes through itsdangerous itself. Signing writes the same
format directly: a digest carries some fifty links, and itsdangerous rebuilds its signer, derives
the key and tries zlib (about 20 us of allocation) on every call. The one difference: the payload
is never zlib-compressed. itsdangerous compresses only when that saves bytes (rare for id payloads,
e.g. repeated digits) and reads an uncompressed payload either way, so every token verifies here
and with plain itsdangerous; otherwise the output is byte-identical (tests/signing/test_tokens.py).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PURPOSES = frozenset({"unsubscribe", "open", "star", "dislike", "manage", "confirm", "view", "csrf", "session"})

# As itsdangerous's _CompactJSON: no spaces, non-ASCII kept (then UTF-8).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


SIGNED_AT = "@signed"  # set by verify_link; never a payload key (those are single letters)


class InvalidToken(Exception):
    """A forged, altered, expired or wrong-purpose token."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    # base64.urlsafe_b64encode without its Python wrapper, "=" padding dropped as itsdangerous does.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _timestamp(seconds: int) -> bytes:
    # itsdangerous.encoding.int_to_bytes: big-endian, leading zero bytes dropped.
    return _b64(seconds.to_bytes(8, "big").lstrip(b"\x00"))


def _json(payload: dict[str, Any]) -> bytes:
    """_JSON.encode(payload) as UTF-8; the usual payload (ids only) written without the encoder."""
    parts = []
    for key, value in payload.items():
        # int exactly (bool is an int, written true/false); an identifier key needs no escaping.
        if type(value) is not int or type(key) is not str or not key.isidentifier():
            return _JSON.encode(payload).encode("utf-8")
        parts.append(f'"{key}":{value}')
    return ("{" + ",".join(parts) + "}").encode("utf-8")


class LinkSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        keys = [k for k in secret_keys if k]
        if not keys:
            raise ValueError("at least one secret key is needed")
        # itsdangerous signs with the LAST key of the list and accepts them all.
        self._keys = list(reversed(keys))
        self._serializers: dict[str, URLSafeTimedSerializer] = {}
        self._macs: dict[str, hmac.HMAC] = {}
        self._stamp = (-1, b"")  # the last second signed in and its encoding: a digest's links share it

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        found = self._serializers.get(purpose)
        if found is None:
            if purpose not in PURPOSES:
                raise ValueError(f"unknown token purpose: {purpose}")
            found = self._serializers[purpose] = URLSafeTimedSerializer(self._keys, salt=f"digest.{purpose}")
        return found

    def _mac(self, purpose: str) -> hmac.HMAC:
        mac = self._macs.get(purpose)
        if mac is None:
            serializer = self._serializer(purpose)
            # The key itsdangerous derives for this salt and the newest secret (django-concat);
            # copies of this HMAC start from its hashed key pads.
            key = serializer.make_signer(serializer.salt).derive_key()
            mac = self._macs[purpose] = hmac.new(key, digestmod=hashlib.sha1)
        return mac

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        mac = self._mac(purpose).copy()
        seconds = int(time.time())
        cached, stamp = self._stamp  # one read: another thread may replace it
        if cached != seconds:
            stamp = _timestamp(seconds)
            self._stamp = (seconds, stamp)
        value = _b64(_json(payload)) + b"." + stamp
        mac.update(value)
        return (value + b"." + _b64(mac.digest())).decode("ascii")

    def verify(self, purpose: str, token: str, *, max_age_s: int | None = None) -> dict[str, Any]:
        """The payload of a token signed for this purpose (InvalidToken otherwise)."""
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
