"""LinkSigner's tokens are URLSafeTimedSerializer's: the bytes dumps writes (uncompressed), read by
plain itsdangerous; tokens itsdangerous signs (any key of the list, compressed or not) and links
mailed by earlier versions still verify."""

from __future__ import annotations

import random
import time
import zlib
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer

from digest.signing.tokens import PURPOSES, SIGNED_AT, STABLE_PURPOSES, InvalidToken, LinkSigner

KEYS = ["new-key-0123456789abcdef", "old-key-fedcba9876543210"]


def payloads() -> list[dict[str, Any]]:
    rnd = random.Random(7)
    out: list[dict[str, Any]] = [{"s": 1}, {"s": 12, "p": 345, "d": 6789}, {"s": 12, "p": 345, "d": 6789, "t": "pdf"},
                                 {"s": 3, "e": 1_900_000_000}, {"g": 5, "n": "Zx_-9aB", "e": 1_800_000_000},
                                 {"c": "r\u00e9sum\u00e9 \u2603"}, {"s": True, "p": False}, {"a-b": 1, "\u00e9": -5},
                                 {"s": 1, "x": None, "y": 1.5}, {"s": 1111111111, "p": 1111111111, "d": 1111111111}]
    for _ in range(300):
        keys = rnd.sample(["s", "p", "d", "t", "e", "g", "n"], rnd.randint(1, 5))
        out.append({k: rnd.choice([rnd.randint(0, 10 ** rnd.randint(1, 10)), "pdf", "a" * rnd.randint(0, 30)])
                    for k in keys})
    return out


def compresses(payload: dict[str, Any]) -> bool:
    raw = URLSafeTimedSerializer("k").serializer.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return len(zlib.compress(raw.encode())) < len(raw.encode()) - 1


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both signers read time.time(); one second for both makes the outputs comparable.
    monkeypatch.setattr("time.time", lambda: 1_764_400_000.25)


def test_same_bytes_as_itsdangerous(frozen: None) -> None:
    signer = LinkSigner(KEYS)
    compared = 0
    for purpose in sorted(PURPOSES):
        reference = URLSafeTimedSerializer(list(reversed(KEYS)), salt=f"digest.{purpose}")
        for payload in payloads():
            token = signer.sign(purpose, payload)
            assert signer.verify(purpose, token) == payload
            assert reference.loads(token) == payload  # plain itsdangerous reads it
            if compresses(payload) or purpose in STABLE_PURPOSES:
                continue  # itsdangerous would zlib this payload (or date it); ours is still valid
            assert token == reference.dumps(payload)
            compared += 1
    assert compared > 1000


def test_a_feed_address_is_the_same_whenever_it_is_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A feed reader keeps the address: the manage page shown again tomorrow must show that one, not
    # another that also works. Links that are clicked once stay dated.
    signer = LinkSigner(KEYS)
    payload = {"s": 12, "f": "feedkey", "k": "linkkey"}
    monkeypatch.setattr("time.time", lambda: 1_764_400_000.25)
    feed, star = signer.sign("feed", payload), signer.sign("star", payload)
    monkeypatch.setattr("time.time", lambda: 1_764_400_000.25 + 86_400 * 400)
    assert signer.sign("feed", payload) == feed
    assert signer.sign("star", payload) != star
    assert signer.verify("feed", feed) == payload
    assert URLSafeTimedSerializer(list(reversed(KEYS)), salt="digest.feed").loads(feed) == payload
    with pytest.raises(InvalidToken):
        signer.verify("star", feed)


def test_tokens_signed_by_itsdangerous_still_verify() -> None:
    signer = LinkSigner(KEYS)
    for key in KEYS:  # the current key and the rotated-out one
        for payload in ({"s": 12, "p": 345, "d": 6789}, {"s": 1111111111, "p": 1111111111, "d": 1111111111}):
            old = URLSafeTimedSerializer([key], salt="digest.open").dumps(payload)
            assert signer.verify("open", old) == payload


# Signed by the code of 0c9822d (its own writer on itsdangerous's internals) at 1_764_400_000 with
# KEYS[0], as they sit in mailboxes today. The first payload itsdangerous's dumps would compress
# (".eJy..."); that writer never did.
MAILED = [({"s": 1111111111, "p": 1111111111, "d": 1111111111},
           "eyJzIjoxMTExMTExMTExLCJwIjoxMTExMTExMTExLCJkIjoxMTExMTExMTExfQ.aSqbgA.4kcitbKRk2wXIHwpqLjtPcn8QrI"),
          ({"s": 12, "p": 345, "d": 6789, "k": "Zx_-9aBc"},
           "eyJzIjoxMiwicCI6MzQ1LCJkIjo2Nzg5LCJrIjoiWnhfLTlhQmMifQ.aSqbgA.kmJnLsTBecHvq0lpGsWY-SA5kt0")]


def test_links_mailed_by_earlier_versions_still_verify() -> None:
    for signer in (LinkSigner(KEYS), LinkSigner(["newer-key-0000000000000000", *KEYS])):  # and after a rotation
        for payload, token in MAILED:
            assert signer.verify_link("open", token) == {**payload, SIGNED_AT: 1_764_400_000}
    with pytest.raises(InvalidToken):
        LinkSigner(KEYS[1:]).verify("open", MAILED[0][1])  # the key it was signed with is gone


def test_a_token_serves_its_purpose_only() -> None:
    signer = LinkSigner(KEYS)
    for purpose in PURPOSES:
        token = signer.sign(purpose, {"s": 1})
        for other in PURPOSES - {purpose}:
            with pytest.raises(InvalidToken):
                signer.verify(other, token)


def test_purpose_key_and_expiry_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = LinkSigner(KEYS)
    token = signer.sign("star", {"s": 1, "p": 2})
    with pytest.raises(InvalidToken):
        signer.verify("dislike", token)
    with pytest.raises(InvalidToken):
        LinkSigner(["someone-elses-key"]).verify("star", token)
    with pytest.raises(InvalidToken):
        signer.verify("star", token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    with pytest.raises(ValueError, match="unknown token purpose"):
        signer.sign("nope", {"s": 1})
    later = time.time() + 3600
    monkeypatch.setattr("time.time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify("star", token, max_age_s=60)
