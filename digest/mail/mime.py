"""Write a multipart/alternative message as bytes, without EmailMessage and its generator.

Kept by measurement (benchmarks/compose_speed.py --writers, 1,000 real digests, 2026-12): this
writer 0.65 ms a message, EmailMessage with SMTP policy 2.46 ms (3.8x; 3.70 ms, 5.7x, with
set_content's own quoted-printable), against 0.88 ms for links and render. The composing process
must keep ahead of the send loop (about 2.3 ms a message to a local relay): with EmailMessage a
message costs 3.3 to 4.6 ms to build, so composing, not the relay, would set the pace of delivery.

The stdlib path (header registry objects, a policy-driven folder, the generator) cost about 2 ms a
digest, most of a run's composing time. What a digest needs is small and fixed, so it is written
directly: header lines already checked by digest.mail.compose, text parts quoted-printable
(binascii, as before), CRLF line ends. The output parses with the stdlib parser to the same
headers and decoded bodies as the EmailMessage path did (tests/mail/test_mime.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

# Header lines are folded to stay near 78 octets (RFC 5322's SHOULD); none can pass 998 (its MUST):
# compose bounds every value well below that.
FOLD_AT = 78
# UTF-8 bytes per RFC 2047 encoded-word: "=?utf-8?b?" + 56 base64 chars + "?=" is 68 chars, so
# "Subject: " plus one word stays under 78.
_WORD_BYTES = 42
# RFC 5322 atext: a display name made of these words (and single spaces) needs no quoting.
_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@dataclass(frozen=True)
class ComposedMessage:
    """A finished message: its bytes and, for callers that look one up, its header values.

    ``as_bytes`` mirrors EmailMessage.as_bytes so callers can treat both alike; the bytes are
    already in SMTP form (CRLF, 7-bit), whatever policy is passed.
    """

    headers: tuple[tuple[str, str], ...]  # (name, unencoded value), in order
    data: bytes

    def as_bytes(self, unixfrom: bool = False, policy: object = None) -> bytes:
        return self.data

    def __bytes__(self) -> bytes:
        return self.data

    def __getitem__(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def encoded_words(value: str) -> list[str]:
    """RFC 2047 base64 encoded-words for ``value``, cut after a space where possible, never inside
    a character. Readers drop the whitespace between adjacent encoded-words; the stdlib's address
    parser puts a space there instead, so a cut after a space costs it an extra space, not a split word."""
    words: list[str] = []
    chunk = bytearray()
    for piece in re.findall(r"[^ ]* ?", value)[:-1] or [""]:  # "a b" -> ["a ", "b"]
        raw = piece.encode("utf-8")
        if chunk and len(chunk) + len(raw) > _WORD_BYTES:
            words.append(_word(bytes(chunk)))
            chunk.clear()
        if len(raw) <= _WORD_BYTES:
            chunk += raw
            continue
        for char in piece:  # one word longer than an encoded-word: cut between characters
            encoded = char.encode("utf-8")
            if len(chunk) + len(encoded) > _WORD_BYTES:
                words.append(_word(bytes(chunk)))
                chunk.clear()
            chunk += encoded
    if chunk or not words:
        words.append(_word(bytes(chunk)))
    return words


def _word(raw: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(raw).decode('ascii')}?="


def _needs_encoding(value: str) -> bool:
    # "=?" in plain text would be decoded by the reader as if it were an encoded-word.
    return not value.isascii() or "=?" in value


def unstructured(name: str, value: str) -> str:
    """One header field (no line end) for free text such as Subject: folded at spaces, and
    encoded-words when the text is not plain ASCII. ``value`` is one line (compose.header_value)."""
    if _needs_encoding(value):
        return f"{name}: " + "\r\n ".join(encoded_words(value))
    return _fold(f"{name}:", value.split(" "))


def mailbox(name: str, display_name: str, addr_spec: str) -> str:
    """From/To: ``Name <addr>``, or the bare address when there is no name. ``addr_spec`` is checked ASCII."""
    if not display_name:
        return f"{name}: {addr_spec}"
    if _needs_encoding(display_name):
        words = encoded_words(display_name)
    elif _ATEXT_PHRASE.fullmatch(display_name):
        words = display_name.split(" ")
    else:
        words = ['"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _fold(f"{name}:", [*words, f"<{addr_spec}>"])


def _fold(head: str, words: Sequence[str]) -> str:
    """``head`` and the words separated by single spaces; a space becomes CRLF + space where the
    line would pass FOLD_AT (unfolding restores the space). A long word stays whole."""
    lines: list[str] = []
    line = head
    for word in words:
        if len(line) + 1 + len(word) > FOLD_AT and line != head:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines)


def quoted_printable(body: str) -> bytes:
    """The body as quoted-printable lines with CRLF ends, ending with a line end: binascii's
    encoding of the whole text, byte for byte.

    CR and CRLF become LF first: the generator did the same with every line break, and encoding
    after that lets binascii protect trailing spaces on every line. binascii.b2a_qp encodes each
    line on its own (its state restarts at a line end), so lines seen before are reused: most of a
    digest's lines are the template's and its papers' (abstracts are the longest), the same for
    every subscriber; binascii took about 0.4 ms for a 38 KB HTML part.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] or len(lines) == 1:
        lines.append("")  # the text gets a final line end (an empty text: one empty line)
    del lines[-1]
    known = _LINES.lines.get
    return b"".join([known(line) or _LINES.miss(line) for line in lines])  # an encoded line is never b""


class _LineCache:
    """Encoded lines by text, kept from a line's second use: a subscriber's own lines (their
    signed links) are seen once and cost only a hash in ``seen``. Emptied when full; a day of
    2,000 papers needs some 25,000 lines (about 10 MB)."""

    def __init__(self, size: int, seen: int) -> None:
        self.size, self.seen_max = size, seen
        self.lines: dict[str, bytes] = {}
        self.seen: set[int] = set()

    def miss(self, line: str) -> bytes:
        encoded = binascii.b2a_qp(line.encode("utf-8") + b"\n", istext=True).replace(b"\n", b"\r\n")
        key = hash(line)
        if key in self.seen:
            if len(self.lines) >= self.size:
                self.lines.clear()
            self.lines[line] = encoded
        else:
            if len(self.seen) >= self.seen_max:
                self.seen.clear()
            self.seen.add(key)
        return encoded


_LINES = _LineCache(size=40_000, seen=100_000)


def new_boundary() -> str:
    # "==" never occurs in quoted-printable output ("=" is always "=XX" or a soft break), so no
    # body line can start with this delimiter.
    return f"=_{secrets.token_hex(16)}=="


def multipart_alternative(header_lines: Sequence[str], parts: Sequence[tuple[str, str]]) -> bytes:
    """The whole message: header lines (no line ends), then one quoted-printable UTF-8 part per
    (subtype, body), in order: text/plain first for a plain-then-HTML alternative."""
    boundary = new_boundary()
    out = [("\r\n".join(header_lines) + "\r\n").encode("ascii"),
           f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode("ascii")]
    delimiter = f"--{boundary}\r\n".encode("ascii")
    for subtype, body in parts:
        out.append(delimiter)
        out.append(f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii"))
        out.append(quoted_printable(body))
        out.append(b"\r\n")  # the CRLF before a delimiter belongs to the delimiter, not the body
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)
