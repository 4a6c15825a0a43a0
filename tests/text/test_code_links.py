"""Code and data links found in abstracts and comments, and their buttons in the email."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from digest.code_links import paper_links
from digest.domain import DigestContent, Paper, Pick, PickLinks
from digest.ingest.sources import parse_feed
from digest.mail.render import DigestRenderer
from digest.store import papers as paper_store
from digest.store.engine import create_db_engine, migrate

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
REPO = "https://github.com/iiis-ai/TemplateMath"


@pytest.mark.parametrize(("text", "code", "data"), [
    # A real abstract's closing sentences (arXiv 2411.18104 of the bundled listing).
    ("The TemplateMath Part I: TemplateGSM dataset is publicly available at "
     "https://huggingface.co/datasets/math-ai/TemplateGSM. The code is available at "
     "https://github.com/iiis-ai/TemplateMath.", REPO, "https://huggingface.co/datasets/math-ai/TemplateGSM"),
    ("Code: (https://github.com/a/b).", "https://github.com/a/b", None),
    ("code at https://github.com/a/b, data at https://zenodo.org/records/1234;", "https://github.com/a/b",
     "https://zenodo.org/records/1234"),
    ("Our code is at github.com/foo/bar-baz.", "https://github.com/foo/bar-baz", None),  # no scheme
    ("available at https://github.com/ foo/bar and more", "https://github.com/foo/bar", None),  # wrapped
    ("see https://example.org/ and https://github.com/a/b", "https://github.com/a/b", None),  # not joined
    ("\\url{https://zenodo.org/record/123}", None, "https://zenodo.org/record/123"),
    ("\\href{https://github.com/x/y}{our code}", "https://github.com/x/y", None),
    ("Project page: https://lab.example.org/proj/.", "https://lab.example.org/proj/", None),
    ("More at https://someone.github.io/thing/.", "https://someone.github.io/thing/", None),
    ("A demo: https://huggingface.co/spaces/org/demo", "https://huggingface.co/spaces/org/demo", None),
    # Other sites, by what the sentence says they hold (real abstracts of the 2024-11-28 listing).
    ("We release our datasets at https://acl.mit.edu/SOS-Match/.", None, "https://acl.mit.edu/SOS-Match/"),
    ("We make the code and data publicly available at https://pages.cs.huji.ac.il/adiyoss-lab/salmon/.",
     "https://pages.cs.huji.ac.il/adiyoss-lab/salmon/", None),
    ("Code is at https://anonymous.4open.science/r/EFSA-645E.", "https://anonymous.4open.science/r/EFSA-645E",
     None),
    ("As in https://en.wikipedia.org/wiki/Graph_(math).", None, None),  # a link, not code or data
    ("Published as https://doi.org/10.1000/xyz (code: see the paper).", None, None),
    ("We cite https://arxiv.org/abs/2401.00001.", None, None),
])
def test_links_found_with_care(text: str, code: str | None, data: str | None) -> None:
    found = paper_links(text)
    assert (found.code, found.data) == (code, data)


@pytest.mark.parametrize("text", [
    "javascript:alert(1) github.com/javascript:alert",
    "Code: https://github.com/x/y\u202eevil",  # an invisible direction override
    "Code: https://github.com/" + "a" * 400,
    "Code: https://user:pw@github.com/x/y",
    "Code: https://github.com/x/<script>",
])
def test_hostile_links_give_no_button(text: str) -> None:
    found = paper_links(text)
    for url in (found.code, found.data):
        assert url is None or (url.startswith("https://github.com/") and "<" not in url and "\u202e" not in url
                               and len(url) < 300 and "@" not in url)


def test_the_comment_is_stored_from_the_arxiv_api_and_searched(tmp_path: Path) -> None:
    data = (FEEDS / "arxiv_api_atom_2026_search-testing_100results.xml").read_bytes()
    batch = parse_feed(data, source_name="arxiv-api").papers
    with_comment = [p for p in batch if p.comment]
    assert len(with_comment) >= 90  # nearly every entry of the sample has one
    engine = create_db_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate(engine)
    with engine.begin() as conn:
        paper_store.upsert_papers(conn, batch, datetime(2026, 12, 5), arxiv_authority=True)
        stored = paper_store.papers_by_ids(conn, list(range(1, len(batch) + 1)))
    assert {p.comment for p in stored.values()} >= {p.comment for p in with_comment}
    engine.dispose()
    # A link in the comment alone gives a button.
    assert paper_links("An abstract without links.", "12 pages; code at https://gitlab.com/g/r").code == \
        "https://gitlab.com/g/r"


def test_the_email_and_its_text_part_show_code_and_data_buttons() -> None:
    paper = Paper(canonical_id="arxiv:2611.00001", title="T", abstract="Background here. We propose Xnet. "
                  "Code: https://github.com/a/b. Data: https://zenodo.org/records/9.",
                  url="https://arxiv.org/abs/2611.00001", pdf_url="https://arxiv.org/pdf/2611.00001")
    out = DigestRenderer().render(DigestContent(
        to_addr="ada@example.org", digest_date=date(2026, 12, 5), picks=(Pick(paper, 0.9, (), "Matches: x"),),
        links=(PickLinks(paper.url, paper.pdf_url),), unsubscribe_url="https://example.org/u", keywords=("x",)))
    assert 'href="https://github.com/a/b"' in out.html and ">Code</a>" in out.html
    assert 'href="https://zenodo.org/records/9"' in out.html and ">Data</a>" in out.html
    assert "Code:\n    https://github.com/a/b" in out.text and "Data:\n    https://zenodo.org/records/9" in out.text
    # The gist: the sentence saying what the paper does, above the abstract.
    assert ">We propose Xnet.</p>" in out.html and "In one line: We propose Xnet." in out.text


def test_a_latex_link_in_an_arxiv_abstract_gives_the_code_button() -> None:
    # An arXiv API entry whose abstract ends as 2411.18363's does, with its link in \url{...}.
    entry = (
        "<entry><id>http://arxiv.org/abs/2411.18363v1</id><title>ChatRex: Taming Multimodal LLM for Joint "
        "Perception and Understanding</title><updated>2024-11-27T14:11:06Z</updated>"
        '<link href="https://arxiv.org/abs/2411.18363v1" rel="alternate" type="text/html"/>'
        "<summary>Perception and understanding are two pillars of computer vision. Code is available at "
        "\\url{https://github.com/IDEA-Research/ChatRex}.</summary>"
        '<category term="cs.CV" scheme="http://arxiv.org/schemas/atom"/><published>2024-11-27T14:11:06Z</published>'
        "<author><name>Qing Jiang</name></author></entry>"
    )
    data = ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            f'xmlns:arxiv="http://arxiv.org/schemas/atom"><title>arXiv Query</title>{entry}</feed>').encode()
    (paper,) = parse_feed(data, source_name="arxiv-api").papers
    assert paper.abstract.endswith("Code is available at https://github.com/IDEA-Research/ChatRex.")
    assert paper_links(paper.abstract, paper.comment or "").code == "https://github.com/IDEA-Research/ChatRex"
    out = DigestRenderer().render(DigestContent(
        to_addr="ada@example.org", digest_date=date(2024, 11, 28), picks=(Pick(paper, 0.9, (), "Matches: x"),),
        links=(PickLinks(paper.url, paper.pdf_url or paper.url),), unsubscribe_url="https://example.org/u",
        keywords=("x",)))
    assert 'href="https://github.com/IDEA-Research/ChatRex"' in out.html and ">Code</a>" in out.html
    assert "<>" not in out.text and "ChatRex}" not in out.text
