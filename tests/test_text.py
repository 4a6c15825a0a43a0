"""digest.text: the one rule for text shown to a reader and for links, used by the feeds, the email
and the web pages alike."""

from __future__ import annotations

import pytest

from digest.text import bound, clean_text, feed_url, one_line, safe_url


def test_clean_text_is_one_line_without_hidden_characters() -> None:
    hidden = "a\u200bb\u202ec\u2066d\ufeffe\x00f\x7fg\x85h"
    assert clean_text(hidden) == "abcdefgh"
    assert clean_text("  Deep\n\tlearning  \r\n for   all ") == "Deep learning for all"
    assert clean_text("Cafe\u0301") == "Caf\u00e9"  # NFC: the accent composed, as mail clients show it
    assert clean_text(None) == "" and clean_text(42) == "" and clean_text("") == ""


def test_clean_text_bounds_with_an_ellipsis() -> None:
    assert clean_text("word " * 10, 12) == "word word w…"  # cut at the character, spaces before it dropped
    assert clean_text("word " * 10, 11) == "word word…"
    assert len(clean_text("x" * 100, 20)) == 20
    assert clean_text("short", 20) == "short"
    assert bound("abcdef", 4) == "abc…"


def test_one_line_reads_bytes_and_cuts_at_the_limit() -> None:
    assert one_line(b"550 5.1.1 <a@x.org>:\r\n user unknown") == "550 5.1.1 <a@x.org>: user unknown"
    assert one_line(b"\xff bad byte") == "\ufffd bad byte"
    assert one_line("a " * 300, 10) == "a a a a a "


@pytest.mark.parametrize("good", [
    "https://arxiv.org/abs/2411.00001", "http://example.org", "HTTPS://EXAMPLE.ORG/a?b=c#d",
    "https://b\u00fccher.example/x", "https://e.org/\u00e9", "https://[::1]/x", "https://user:pw@e.org/",
])
def test_safe_url_keeps_http_links_as_they_are(good: str) -> None:
    assert safe_url(good) == good
    assert safe_url(f"  {good}\n") == good  # only the surrounding whitespace goes


@pytest.mark.parametrize("bad", [
    None, "", "javascript:alert(1)", "data:text/html,x", "ftp://e.org/x", "//evil.example/x", "https:///x",
    "https://user@", "https://e.org/a b", "https://e.org/\nx", 'https://e.org/"onmouseover=x', "https://e.org/<x>",
    "https://e.org/`x`", "https://e.org/\u200bx", "https://e.org/\u202ex", "https://[::1/x",
    "https://e.org/" + "a" * 2000,
])
def test_safe_url_refuses_what_could_hide_or_break_out(bad: str | None) -> None:
    assert safe_url(bad) is None


def test_feed_url_repairs_what_feeds_leave_raw_and_refuses_the_rest() -> None:
    # PubMed's links carry raw spaces; percent-encoded they pass the one check.
    assert feed_url(" https://pubmed.ncbi.nlm.nih.gov/1/?utm_source=Mobile Safari ") == \
        "https://pubmed.ncbi.nlm.nih.gov/1/?utm_source=Mobile%20Safari"
    assert feed_url("https://e.org/b\u00fccher") == "https://e.org/b%C3%BCcher"
    for bad in ("https://e.org/\nx", "https://e.org/<x>", "https://e.org/\u200bx", "javascript:alert(1)", None):
        assert feed_url(bad) is None
    for url in ("https://arxiv.org/abs/2411.00001", "https://e.org/a%20b"):
        assert feed_url(url) == url == safe_url(url)
