"""digest.mail.mime writes the bytes EmailMessage used to: parsed by the stdlib parser, the new
message has the same headers and the same decoded bodies as the old one (tests/mime_reference.py)."""

from __future__ import annotations

import binascii
import email
import email.header
import email.policy
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.domain import DigestContent, Pick
from digest.ingest.sources import parse_feed
from digest.mail import mime
from digest.mail.compose import compose_message
from digest.mail.render import DigestRenderer, RenderedDigest
from digest.signing.links import LinkBuilder
from digest.signing.tokens import LinkSigner
from tests.mime_reference import compose_stdlib

SAMPLE = Path(__file__).resolve().parents[2] / "digest" / "samples" / "arxiv-cs-2024-11-28.xml"
NOW = datetime(2026, 11, 29, 6, 0, 5, tzinfo=UTC)
ARGS: dict[str, object] = {"from_addr": "digest@example.org", "from_name": "Paper digest", "to_addr": "ada@example.org",
                           "message_id": "<digest-2026-11-29-s12-d345@example.org>", "date": NOW,
                           "unsubscribe_url": "https://digest.example.org/unsubscribe/" + "Ab0_-." * 30}
HEADERS = ("To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version")


def real_digest() -> RenderedDigest:
    papers = parse_feed(SAMPLE.read_bytes(), source_name="arxiv").papers
    papers = [replace(p, id=i + 1, upvotes=i % 5) for i, p in enumerate(papers)]
    links = LinkBuilder("https://digest.example.org", LinkSigner(["k"]))
    picks = tuple(Pick(p, 0.5, ("diffusion models",)) for p in papers[40:50])
    trending = tuple(Pick(p, 4.0, reason="4 upvotes") for p in papers[:3])
    content = DigestContent(
        to_addr="ada@example.org", digest_date=date(2024, 11, 28), picks=picks,
        links=tuple(links.pick_links(12, p.paper, 345) for p in picks), unsubscribe_url=links.unsubscribe_url(12),
        keywords=("diffusion models", "Schr\u00f6dinger bridges"), candidates=521, trending=trending,
        trending_links=tuple(links.pick_links(12, p.paper, 345) for p in trending),
        manage_url=links.manage_url(12), view_url=links.view_url(12, 345))
    return DigestRenderer().render(content)


EDGY = RenderedDigest(
    subject="Your paper digest: Schr\u00f6dinger bridges \u2014 \u201cquoted\u201d \u6f22\u5b57 " + "word " * 40,
    text="Line with trailing spaces   \nCR\ronly\r\nCRLF\nFrom the start\n.\n= sign =3D ==\n" + "x" * 300 + "\n\t\n",
    html="<p>caf\u00e9 &amp; \U0001f600</p>\r\n" + "<a href='https://e.org/?a=1&b=2'>" * 20,
)
CASES: list[tuple[RenderedDigest, dict[str, object]]] = [
    (EDGY, {}),
    (EDGY, {"from_name": "Paper digest \u00b7 M\u00fcnchen"}),
    (EDGY, {"from_name": 'Smith, J. "Doc" (team) \\ x'}),
    (EDGY, {"from_name": "x" * 120}),
    (EDGY, {"from_name": "\u00dcn\u00efcode " * 15}),
    (EDGY, {"from_name": ""}),
    (EDGY, {"unsubscribe_url": None}),
    (EDGY, {"unsubscribe_url": "http://localhost:8000/u/abc"}),
    (EDGY, {"date": datetime(2026, 11, 29, 7, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))}),
    (EDGY, {"date": datetime(2026, 11, 29, 7, 0)}),  # naive: -0000
    (EDGY, {"to_addr": '"ada lovelace"@example.org'}),
    (EDGY, {"to_addr": "Ada.Lovelace+digest@Sub.Example.ORG"}),
    (RenderedDigest(subject="Top pick: <b>x</b>\r\nBcc: victim@example.net", text="", html=""),
     {"from_name": "Digest\r\nBcc: victim@example.net", "to_addr": "ada@example.org\r\n"}),
    (RenderedDigest(subject="s" * 400, text="t", html="h"), {}),
]


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def assert_equivalent(new: bytes, old: bytes) -> None:
    a, b = parse(new), parse(old)
    assert [k.lower() for k in a.keys()] == [k.lower() for k in b.keys()]  # noqa: SIM118 (Message)
    for name in HEADERS:
        assert str(a[name]) == str(b[name]), name
    (mine,), (theirs,) = a["From"].addresses, b["From"].addresses
    assert mine.addr_spec == theirs.addr_spec
    if len(mine.display_name.encode()) <= 42:
        assert str(a["From"]) == str(b["From"])
    else:
        # A long non-ASCII name takes several encoded-words, and the stdlib's address parser (unlike
        # mail readers) puts a space between them: in the old message too, even inside a word.
        assert "".join(mine.display_name.split()) == "".join(theirs.display_name.split())
    assert a["Date"].datetime == b["Date"].datetime
    assert a.get_content_type() == b.get_content_type() == "multipart/alternative"
    new_parts, old_parts = list(a.iter_parts()), list(b.iter_parts())
    assert len(new_parts) == len(old_parts) == 2
    for mine, theirs in zip(new_parts, old_parts, strict=True):
        assert list(mine.items()) == list(theirs.items())
        assert mine.get_content() == theirs.get_content()
    assert a.defects == [] and all(p.defects == [] for p in new_parts)


def assert_well_formed(data: bytes) -> None:
    assert max(data) < 128  # 7-bit: no relay needs 8BITMIME
    bare = data.replace(b"\r\n", b"")
    assert data.endswith(b"\r\n") and b"\n" not in bare and b"\r" not in bare  # CRLF line ends only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    unsubscribe = [line for line in head if line.startswith("List-Unsubscribe:")]
    assert len(unsubscribe) <= 1  # one physical line, no continuation
    if unsubscribe:
        i = head.index(unsubscribe[0])
        assert not head[i + 1].startswith((" ", "\t"))


def test_real_digest_parses_the_same_as_before() -> None:
    rendered = real_digest()
    new = compose_message(rendered, **ARGS).as_bytes()  # type: ignore[arg-type]
    old = compose_stdlib(rendered, **ARGS).as_bytes(policy=email.policy.SMTP)  # type: ignore[arg-type]
    assert_well_formed(new)
    assert_equivalent(new, old)
    assert len(new) == pytest.approx(len(old), rel=0.01)
    # The pipeline's own call, with the stock SMTP policy, gives the same bytes.
    assert parse(compose_message(rendered, **ARGS).as_bytes(policy=email.policy.SMTP))["Subject"] == rendered.subject  # type: ignore[arg-type]


@pytest.mark.parametrize(("rendered", "overrides"), CASES)
def test_edge_cases_parse_the_same_as_before(rendered: RenderedDigest, overrides: dict[str, object]) -> None:
    args = {**ARGS, **overrides}
    new = compose_message(rendered, **args).as_bytes()  # type: ignore[arg-type]
    old = compose_stdlib(rendered, **args).as_bytes(policy=email.policy.SMTP)  # type: ignore[arg-type]
    assert_well_formed(new)
    assert_equivalent(new, old)


def test_idn_domain_is_written_as_punycode() -> None:
    # EmailMessage wrote an RFC 2047 word inside the domain, which no server accepts.
    msg = parse(compose_message(EDGY, **{**ARGS, "to_addr": "ada@b\u00fccher.example"}).as_bytes())  # type: ignore[arg-type]
    assert msg["To"] == "ada@xn--bcher-kva.example"


def test_header_lookup_and_boundary() -> None:
    composed = compose_message(EDGY, **ARGS)  # type: ignore[arg-type]
    assert composed["message-id"] == ARGS["message_id"] and composed["Bcc"] is None
    assert composed["Subject"] == EDGY.subject.strip()[:250].rstrip()
    boundary = parse(composed.as_bytes()).get_boundary()
    assert boundary is not None and "==" in boundary
    assert b"==" not in mime.quoted_printable("= == === \u00e9=" * 50)


def test_long_display_name_decodes_exactly_as_readers_do() -> None:
    name = "\u00dcn\u00efcode " * 14 + "\u00dcn\u00efcode"
    head = compose_message(EDGY, **{**ARGS, "from_name": name}).as_bytes().split(b"\r\nTo:")[0].decode("ascii")
    phrase = head.removeprefix("From: ").rsplit(" <", 1)[0]
    # decode_header follows RFC 2047: whitespace between adjacent encoded-words is dropped.
    assert str(email.header.make_header(email.header.decode_header(phrase))) == name


def test_encoded_words_never_split_a_character() -> None:
    text = "\u00e9\U0001f600a" * 40
    words = mime.encoded_words(text)
    assert all(len(w) <= 75 for w in words)
    assert "".join(str(email.header.make_header(email.header.decode_header(w))) for w in words) == text


@pytest.mark.parametrize("seed", range(5))
def test_quoted_printable_is_binascii_of_the_whole_text(seed: int) -> None:
    # Encoding line by line (and reusing lines) gives binascii's bytes for the whole text.
    rnd = random.Random(seed)
    alphabet = ["a", "b", " ", "\t", ".", "=", "\u00e9", "\U0001f600", "https://x.org/?a=1", "\n", "\n", "\r", "\r\n"]
    texts = ["", "\n", ".", ". \n", "x" * 500, real_digest().html]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 400))) for _ in range(200)]
    for text in texts * 3:  # kept from the second time, read from the cache the third
        normal = text.replace("\r\n", "\n").replace("\r", "\n")
        normal = normal if normal.endswith("\n") else normal + "\n"
        assert mime.quoted_printable(text) == binascii.b2a_qp(normal.encode(), istext=True).replace(b"\n", b"\r\n")
