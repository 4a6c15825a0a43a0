"""DigestRenderer: escaping, links, subject, quiet day, shortening, plain-text layout, overrides."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest.domain import DigestContent, Paper, Pick, PickLinks
from digest.errors import ConfigError
from digest.mail.render import (
    DigestRenderer,
    bundled_templates_dir,
    format_authors,
    make_subject,
    shorten_abstract,
)
from digest.text import safe_url

DAY = date(2026, 11, 29)
UNSUB = "https://digest.example.org/unsubscribe?t=abc&u=12"
LOREM = (
    "We study sparse attention for long-context diffusion models and show that a learned routing of "
    "queries to a few key blocks keeps quality while cutting memory by an order of magnitude. "
    "Experiments on image and video generation confirm the gains across scales and datasets."
)


def paper(n: int = 1, **kw: object) -> Paper:
    fields: dict[str, object] = {
        "canonical_id": f"arxiv:2611.{n:05d}",
        "title": f"Paper number {n}",
        "abstract": LOREM,
        "authors": ("Ada Lovelace", "Alan Turing"),
        "url": f"https://arxiv.org/abs/2611.{n:05d}",
        "pdf_url": f"https://arxiv.org/pdf/2611.{n:05d}",
    }
    fields.update(kw)
    return Paper(**fields)  # type: ignore[arg-type]


def content(papers: list[Paper], **kw: object) -> DigestContent:
    fields: dict[str, object] = {
        "to_addr": "ada@example.org",
        "digest_date": DAY,
        "picks": tuple(Pick(p, 0.9 - i / 100, ("sparse attention",), "Matches: sparse attention")
                       for i, p in enumerate(papers)),
        "links": tuple(PickLinks(p.url, p.pdf_url) for p in papers),
        "unsubscribe_url": UNSUB,
        "keywords": ("sparse attention", "diffusion models"),
        "candidates": 412,
        "quiet": not papers,
    }
    fields.update(kw)
    return DigestContent(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def renderer() -> DigestRenderer:
    return DigestRenderer()


def test_bundled_templates_found() -> None:
    assert (bundled_templates_dir() / "email" / "digest.html.j2").is_file()
    assert (bundled_templates_dir() / "email" / "digest.txt.j2").is_file()


def test_hostile_paper_text_is_escaped(renderer: DigestRenderer) -> None:
    hostile = paper(
        title='<script>alert(1)</script> "Quoted" <img src=x onerror=alert(2)>',
        abstract="</p><iframe src=https://evil.example></iframe> & more",
        authors=("<b>Mallory</b>",),
    )
    c = content([hostile], keywords=("<svg onload=alert(3)>",))
    c = replace(c, picks=(Pick(hostile, 1.0, (), "<a href=x>reason</a>"),))
    html = renderer.render(c).html
    for raw in ("<script", "<img", "<iframe", "<b>Mallory", "<svg", "<a href=x>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;Quoted&#34;" in html
    # onerror survives only as inert text inside an escaped tag, never as an attribute of a real tag
    assert not re.search(r"<[a-z][^>]*onerror=", html, re.IGNORECASE)
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    text = renderer.render(c).text
    assert "<script>alert(1)</script>" in text  # text/plain shows it verbatim, harmlessly


@pytest.mark.parametrize("bad", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:x", "//evil.example/x", "ftp://example.org/x",
    "https://exa mple.org/", "https://example.org/\nx",
])
def test_non_http_links_are_dropped(renderer: DigestRenderer, bad: str) -> None:
    p = paper(url=bad, pdf_url=bad)
    out = renderer.render(content([p], links=(PickLinks(bad, bad),), unsubscribe_url=bad))
    assert safe_url(bad) is None
    for part in (out.html, out.text):
        assert "script:" not in part.lower()
        assert "data:text" not in part
        assert "evil.example" not in part
    assert "Paper number 1" in out.html
    assert 'href="' not in out.html  # no pick link and no unsubscribe link left
    assert "Unsubscribe" not in out.text


def test_links_rendered(renderer: DigestRenderer) -> None:
    out = renderer.render(content([paper(3)]))
    assert '<a class="link" href="https://arxiv.org/abs/2611.00003"' in out.html  # the title links the abstract
    assert ">Abstract</a>" in out.html and ">PDF</a>" in out.html
    assert 'href="https://digest.example.org/unsubscribe?t=abc&amp;u=12"' in out.html
    lines = [ln.strip() for ln in out.text.splitlines()]
    for url in ("https://arxiv.org/abs/2611.00003", "https://arxiv.org/pdf/2611.00003", UNSUB):
        assert url in lines  # each URL alone on its line


def test_pick_links_fall_back_to_paper_urls(renderer: DigestRenderer) -> None:
    out = renderer.render(content([paper(1), paper(2)], links=(PickLinks("https://t.example/o/1", None),)))
    assert 'href="https://t.example/o/1"' in out.html
    assert 'href="https://arxiv.org/abs/2611.00002"' in out.html


@pytest.mark.parametrize(("n", "expected"), [
    (7, "Your paper digest for 29 Nov 2026: 7 picks"),
    (1, "Your paper digest for 29 Nov 2026: 1 pick"),
    (0, "Your paper digest for 29 Nov 2026: nothing new today"),
])
def test_subject_counts(renderer: DigestRenderer, n: int, expected: str) -> None:
    c = content([paper(i) for i in range(n)])
    assert make_subject(c) == expected
    out = renderer.render(c)
    assert out.subject == expected
    if n:
        assert f"{n} paper{'s' if n > 1 else ''} picked for you from 412 new today" in out.html
        assert out.html.count('class="num') == n


def test_quiet_day(renderer: DigestRenderer) -> None:
    out = renderer.render(content([], quiet=True))
    assert out.subject.endswith("nothing new today")
    for part in (out.html, out.text):
        assert "No new papers matched your interests today" in part
        assert "sparse attention, diffusion models" in part
        assert "Abstract" not in part
    assert 'href="https://digest.example.org/unsubscribe?t=abc&amp;u=12"' in out.html
    assert UNSUB in out.text.splitlines()


def test_header_and_footer(renderer: DigestRenderer) -> None:
    out = renderer.render(content([paper(1), paper(2)]))
    assert "Sunday, 29 November 2026" in out.html and "Sunday, 29 November 2026" in out.text
    assert "2 papers picked for you" in out.text
    for part in (out.html, out.text):
        assert "because you follow" in part
        assert "ranked for you" in part
        assert "Matches: sparse attention" in part


def test_long_author_list_shortened() -> None:
    names = [f"Author {i}" for i in range(1, 9)]
    assert format_authors(names) == "Author 1, Author 2, Author 3, Author 4, Author 5 et al."
    assert format_authors(names[:5]) == "Author 1, Author 2, Author 3, Author 4, Author 5"
    out = DigestRenderer().render(content([paper(authors=tuple(names))]))
    assert "Author 5 et al." in out.html and "Author 6" not in out.html
    assert "Author 5 et al." in out.text and "Author 6" not in out.text


def test_abstract_truncated_at_word_boundary() -> None:
    short = shorten_abstract(LOREM, 80)
    assert short.endswith("\u2026") and len(short) <= 81
    kept = short[:-1]
    assert LOREM.startswith(kept) and LOREM[len(kept)] in " ,."  # cut between words
    assert shorten_abstract("A short abstract.", 80) == "A short abstract."
    assert shorten_abstract("x" * 300, 100) == "x" * 100 + "\u2026"  # one huge token: hard cut
    assert shorten_abstract("  spaced \n\n out\ttext ", 80) == "spaced out text"
    out = DigestRenderer(abstract_chars=80).render(content([paper()]))
    assert short in out.html
    assert LOREM[90:120] not in out.html


def test_plain_text_wrapped_and_first_line(renderer: DigestRenderer) -> None:
    long_title = "A very long title about " + "sparse attention and diffusion models " * 4
    out = renderer.render(content([paper(1, title=long_title), paper(2)]))
    urls = re.compile(r"^\s*https?://\S+$")
    for line in out.text.splitlines():
        assert len(line) <= 78 or urls.match(line), line
    assert out.text.startswith("PAPER DIGEST\nSunday, 29 November 2026\n")
    assert "\n1.  A very long title" in out.text and "\n2.  Paper number 2" in out.text
    assert "&amp;" not in out.text and "&#" not in out.text  # text/plain is not HTML-escaped


def test_html_is_email_safe(renderer: DigestRenderer) -> None:
    html = renderer.render(content([paper(1), paper(2)])).html
    assert "max-width:600px" in html
    assert 'name="viewport"' in html
    for banned in ("<script", "<img", "<link", "@import", "@font-face", "url("):
        assert banned not in html

    class Balance(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.depth: dict[str, int] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.depth[tag] = self.depth.get(tag, 0) + 1

        def handle_endtag(self, tag: str) -> None:
            self.depth[tag] = self.depth.get(tag, 0) - 1

    b = Balance()
    b.feed(html)
    for tag in ("table", "tr", "td", "p", "a", "h1", "h2"):
        assert b.depth.get(tag, 0) == 0, tag


def test_operator_templates_dir_first(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt.j2").write_text("Custom for {{ to_addr }}: {{ count }}\n", encoding="utf-8")
    out = DigestRenderer(templates_dir=str(tmp_path)).render(content([paper()]))
    assert out.text == "Custom for ada@example.org: 1\n"
    assert "Paper number 1" in out.html  # the HTML still comes from the bundled templates


def test_operator_template_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        DigestRenderer(templates_dir=str(tmp_path / "missing"))
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt.j2").write_text("{{ no_such_variable }}\n", encoding="utf-8")
    r = DigestRenderer(templates_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="no_such_variable"):
        r.render(content([paper()]))
    (tmp_path / "email" / "digest.txt.j2").write_text("{% if %}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        DigestRenderer(templates_dir=str(tmp_path))


def test_environment_built_once(renderer: DigestRenderer) -> None:
    env = renderer.env
    renderer.render(content([paper()]))
    renderer.render(content([]))
    assert renderer.env is env


def test_feedback_links_rendered(renderer: DigestRenderer) -> None:
    star, less = "https://digest.example.org/star/tok-1", "https://digest.example.org/less/tok-2"
    p = paper(4)
    out = renderer.render(content([p], links=(PickLinks(p.url, p.pdf_url, star, less),)))
    assert f'href="{star}"' in out.html and "&#9733; Star</a>" in out.html
    assert f'href="{less}"' in out.html and ">Less like this</a>" in out.html
    lines = [ln.strip() for ln in out.text.splitlines()]
    assert star in lines and less in lines  # each URL alone on its line
    for part in (out.html, out.text):
        assert "teach tomorrow" in part
    # Without feedback links (no web app): no buttons and no footer line about them.
    plain = renderer.render(content([p]))
    for part in (plain.html, plain.text):
        assert "Less like this" not in part and "teach tomorrow" not in part
    bad = renderer.render(content([p], links=(PickLinks(p.url, None, "javascript:alert(1)", "data:text/html,x"),)))
    assert "javascript:" not in bad.html and "data:text" not in bad.html and "Less like this" not in bad.html


def _full_safe_url(url: str | None) -> str | None:
    """safe_url without its fast path (the check as it is written in digest.text)."""
    if not url:
        return None
    url = url.strip()
    invisible = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
    if len(url) > 2000 or re.search(r"\s|[<>\"`]|" + invisible, url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def test_safe_url_fast_path_agrees_with_the_full_check() -> None:
    urls = ["https://digest.example.org/o/eyJzIjoxfQ.aBc.dEf-_", "HTTPS://EXAMPLE.ORG", "http://e.org:",
            "https://e.org:99999/x", "https://[::1]/x", "https://[::1/x", "http://a_b.org/", "https://e.org/\u00e9",
            "https:///x", "https://", "http://e.org?x", "http://e.org#f", "https://user:pw@e.org/", " https://e.org/a ",
            "https://e.org/a b", "ftp://e.org/", "https:e.org", "https://e.org/" + "a" * 1990,
            "https://e.org/" + "a" * 1986, "https://e.org/\u202e", "javascript://e.org/%0a",
            "https://xn--bcher-kva.example/", "https://b\u00fccher.example/", "http://1.2.3.4:80/?q=<x>", "",
            'https://e.org/"onmouseover=x', "https://e.org/`x`", "https://e.org/\u200bx", "https://user@"]
    rnd = random.Random(3)
    pieces = ["http", "https", "HTTP", ":", "//", "/", "e.org", "[", "]", "@", "?", "#", ":80", " ", "\u00e9", "a",
              "-", ".", "<", '"', "\u200b"]
    urls += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 9))) for _ in range(3000)]
    for url in urls:
        assert safe_url(url) == _full_safe_url(url), url


def test_cached_texts_follow_their_inputs(tmp_path: Path) -> None:
    long = paper(abstract=LOREM * 3)
    short_view = DigestRenderer(abstract_chars=120).pick_views(content([long]))[0]
    long_view = DigestRenderer(abstract_chars=400).pick_views(content([long]))[0]
    assert len(short_view.abstract) <= 121 < len(long_view.abstract)
    renderer = DigestRenderer()
    assert renderer.render(content([paper(1), paper(2)])) == renderer.render(content([paper(1), paper(2)]))
    # An operator template may wrap what it likes; Markup is wrapped, uncached.
    (tmp_path / "email").mkdir()
    text = "{{ keywords | join(',') | wrap(width=10) }}|{{ subject | wrap(width=30) }}\n"
    (tmp_path / "email" / "digest.txt.j2").write_text(text)
    (tmp_path / "email" / "digest.html.j2").write_text("{{ (subject | e) | wrap(width=20, indent='  ') }}\n")
    out = DigestRenderer(templates_dir=str(tmp_path)).render(content([paper(1)]))
    assert out.text == "sparse\nattention,diffusion\nmodels|Your paper digest for 29 Nov\n2026: 1 pick\n"
    assert out.html.startswith("  Your paper digest\n  for 29 Nov 2026:")
