"""parse_feed() on the real feed samples, on broken input and on a hostile feed."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.domain import Paper
from digest.errors import FeedError
from digest.ingest.fetch import SAMPLES_DIR
from digest.ingest.sources import ABSTRACT_MAX, AUTHORS_MAX, CATEGORIES_MAX, TITLE_MAX, ParsedFeed, parse_feed

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
MULTI = "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
SAMPLE = SAMPLES_DIR / "arxiv-cs-2024-11-28.xml"
ML_CATEGORIES = {"cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.IR", "stat.ML"}


def parse(name: str, kind: str = "auto") -> ParsedFeed:
    return parse_feed((FIXTURES / name).read_bytes(), kind=kind, source_name="src")


def by_id(feed: ParsedFeed) -> dict[str, Paper]:
    return {p.canonical_id: p for p in feed.papers}


@pytest.fixture(scope="module")
def multi() -> ParsedFeed:
    return parse(MULTI)


# --- arXiv RSS, 2024 format ----------------------------------------------------------------------


def test_multi_archive_listing_counts(multi: ParsedFeed) -> None:
    assert multi.kind == "arxiv_rss" and not multi.empty and multi.skipped == 0 and multi.warning is None
    assert len(multi.papers) == 1504
    assert Counter(p.announce_type for p in multi.papers) == {"new": 926, "replace": 569, "cross": 9}
    assert sum("cs.LG" in p.categories for p in multi.papers) == 218
    assert len({p.canonical_id for p in multi.papers}) == 1504


def test_arxiv_rss_item_fields(multi: ParsedFeed) -> None:
    paper = by_id(multi)["arxiv:2411.17700"]
    assert paper.title.startswith("Exploring the Impact of Generative AI on Cross-Border E-Commerce")
    assert paper.abstract.startswith("This study investigates the influence of generative artificial intelligence")
    assert paper.abstract.endswith("regression and structural equations (PLS-SEM).")
    assert (paper.arxiv_id, paper.version, paper.announce_type) == ("2411.17700", 1, "new")
    assert paper.url == "https://arxiv.org/abs/2411.17700" and paper.pdf_url == "https://arxiv.org/pdf/2411.17700"
    assert paper.authors == ("Jun Cui",) and paper.categories == ("cs.CY",)
    assert paper.published == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
    assert paper.source == "src"
    replaced = by_id(multi)["arxiv:2411.17697"]
    assert (replaced.version, replaced.announce_type, replaced.categories) == (2, "replace", ("cs.CV", "cs.AI"))
    assert replaced.authors[:2] == ("Shuyuan Tu", "Zhen Xing") and len(replaced.authors) == 7


def test_arxiv_rss_abstracts_are_clean_text(multi: ParsedFeed) -> None:
    for paper in multi.papers:
        assert "Announce Type" not in paper.abstract and not paper.abstract.startswith(("arXiv:", "Abstract"))
        assert paper.abstract and paper.authors and paper.version is not None
    # Maths written with "<" survives: it is text, not a tag (and its LaTeX is made readable).
    assert any(r"$\frac{1}{3}<s<1$" in (p.abstract_latex or "") and "1/3<s<1" in p.abstract for p in multi.papers)
    assert any(r"$2<q<2+\frac{4}{N}<p=2^*$" in (p.abstract_latex or "") and "2<q<2+4/N<p=2^*" in p.abstract
               for p in multi.papers)


def test_author_affiliations_are_dropped_and_names_kept(multi: ParsedFeed) -> None:
    paper = next(p for p in multi.papers if p.authors and p.authors[0] == "Tianliang Yan")
    assert paper.authors[:3] == ("Tianliang Yan", "Yubao Liu", "Leonid Prokhorov")
    assert not any("University" in a for a in paper.authors)


def test_bundled_sample_is_a_faithful_cs_excerpt(multi: ParsedFeed) -> None:
    sample = parse_feed(SAMPLE.read_bytes(), source_name="src")
    assert sample.kind == "arxiv_rss" and len(sample.papers) == 521
    assert all(ML_CATEGORIES & set(p.categories) for p in sample.papers)
    full = by_id(multi)
    # Every listing paper of the full day that has one of the categories is in, identical.
    assert {p.canonical_id for p in sample.papers} == {
        p.canonical_id for p in multi.papers if ML_CATEGORIES & set(p.categories)
    }
    assert all(full[p.canonical_id] == p for p in sample.papers)
    # Byte-faithful: each item block is a verbatim slice of the original file.
    original = (FIXTURES / MULTI).read_bytes()
    blocks = re.findall(rb"    <item>\n.*?</item>\n", SAMPLE.read_bytes(), re.DOTALL)
    assert len(blocks) == 521 and all(block in original for block in blocks)


def test_empty_announcement_day_is_empty_not_an_error() -> None:
    feed = parse("arxiv_rss_new2024_empty_test-archive.xml")
    assert feed.empty and feed.papers == [] and feed.kind == "arxiv_rss"


def test_arxiv_error_channel_is_an_error_naming_the_source() -> None:
    with pytest.raises(FeedError, match=r"^src: arXiv reports an error: Feed error for query.*Bad archive 'astroph'"):
        parse("arxiv_rss_new2024_error_bad-archive.xml")


# --- arXiv legacy RDF ------------------------------------------------------------------------------


def test_legacy_rdf_titles_ids_and_announce_types() -> None:
    feed = parse("arxiv_rss_legacy_rdf_hep-ex_2018-05-23_excerpt.xml")
    assert feed.kind == "arxiv_rss"
    got = [(p.title, p.arxiv_id, p.version, p.announce_type) for p in feed.papers]
    assert got == [
        ("Measurement of Transverse Single Spin Asymmetries", "1805.08875", 1, "new"),
        ("Recent Top quark results from the Tevatron", "1805.09166", 1, "cross"),
        ("New Perspective on Hybrid Mesons", "1805.06430", 2, "replace"),
    ]
    first, _, third = feed.papers
    assert first.authors == ("Christopher Dilks",)
    assert third.authors == (
        "Shu-Sheng Xu",
        "Zhu-Fang Cui",
        "Lei Chang",
        "Joannis Papavassiliou",
        "Craig D. Roberts",
        "Hong-Shi Zong",
    )
    assert first.abstract.startswith("In 2015 the first collisions") and "<p>" not in first.abstract
    assert r"range of $2.6<\eta<4$." in (first.abstract_latex or "")  # double-escaped in the feed, plain "<" here
    assert "range of 2.6<η<4." in first.abstract
    assert first.categories == ("hep-ex",) and third.categories == ("nucl-th",)
    assert first.published is not None  # the channel's dc:date stands in


# --- arXiv API Atom --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["arxiv_api_atom_legacy_2016_au-del_maestro.xml", "arxiv_api_atom_legacy_2016_au-del_maestro_ANDNOT.xml"]
)
def test_api_atom_legacy_layout(name: str) -> None:
    feed = parse(name)
    assert feed.kind == "arxiv_api" and len(feed.papers) == 10
    first = feed.papers[0]
    assert (first.canonical_id, first.version, first.doi) == ("arxiv:1201.4869", 1, "10.1142/s021797921244002x")
    assert first.categories == ("cond-mat.mes-hall", "cond-mat.other") and first.announce_type == "new"
    assert first.abstract.startswith("As helium-4 is cooled below 2.17 K") and "\n" not in first.abstract
    assert first.pdf_url == "https://arxiv.org/pdf/1201.4869"
    old_style = by_id(feed)["arxiv:cond-mat/0412498"]
    assert old_style.authors == ("Adrian Del Maestro", "Subir Sachdev")
    assert old_style.url == "https://arxiv.org/abs/cond-mat/0412498"


def test_api_atom_current_layout() -> None:
    feed = parse("arxiv_api_atom_2026_search-testing_100results.xml")
    assert feed.kind == "arxiv_api" and len(feed.papers) == 100
    assert all(p.arxiv_id and p.version for p in feed.papers)
    assert sum(p.doi is not None for p in feed.papers) == 32
    paper = by_id(feed)["arxiv:2202.12139"]
    assert paper.categories[0] == "cs.SE"  # the primary category comes first
    assert paper.doi == "10.1109/icstw55395.2022.00035"
    assert paper.authors == ("Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker")
    assert paper.published == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)


# --- journal feeds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count", "with_doi", "first_id"),
    [
        ("journal_rss2_prism_wiley_taxon_2021-12-21.xml", 66, 66, "doi:10.1002/tax.12650"),
        ("journal_rss2_pubmed_search_2021-12-21.xml", 15, 15, "doi:10.1016/j.parint.2021.102531"),
        ("journal_rss2_oup_zoolinnean_2021-12-21.xml", 14, 14, "doi:10.1093/zoolinnean/zlab078"),
        ("journal_rss2_sciencedirect_mpe_2021-12-21.xml", 51, 0, "title:propagating clade and model uncertainty"),
        ("journal_atom_ojs_contributions-to-entomology_2021-12-21.xml", 9, 0, "title:the cephennium fauna of turkey"),
    ],
)
def test_journal_feeds(name: str, count: int, with_doi: int, first_id: str) -> None:
    feed = parse(name)
    assert feed.kind == "rss" and len(feed.papers) == count and feed.skipped == 0
    assert sum(p.doi is not None for p in feed.papers) == with_doi
    assert feed.papers[0].canonical_id.startswith(first_id)
    for p in feed.papers:
        assert p.arxiv_id is None and p.url and p.url.startswith("https://")
        assert not re.search(r"</?[a-zA-Z]", p.title + p.abstract)  # no markup left ("<78.6 %" is fine)
    # Editorials and front matter have no authors; articles do.
    assert sum(bool(p.authors) for p in feed.papers) >= 0.9 * count


def test_journal_abstracts_start_after_the_heading() -> None:
    oup = parse("journal_rss2_oup_zoolinnean_2021-12-21.xml").papers[0]
    assert oup.abstract.startswith("The Southern Ocean (SO) is the least understood")
    assert oup.authors == ("Brandão S", "Saeedi H", "Brandt A.")
    pubmed = parse("journal_rss2_pubmed_search_2021-12-21.xml").papers[0]
    assert pubmed.abstract.startswith("A new species of Gyrodactylus")  # content:encoded, after "ABSTRACT"
    assert not pubmed.abstract.endswith("...")  # the full text, not the truncated description
    assert pubmed.url and " " not in pubmed.url  # raw spaces in the link are encoded
    wiley = parse("journal_rss2_prism_wiley_taxon_2021-12-21.xml").papers[0]
    assert wiley.abstract.startswith("Leptospermum is an ecologically")
    assert wiley.authors == ("Rachel M. Binks", "Margaret Heslewood", "Peter G. Wilson", "Margaret Byrne")


def test_sciencedirect_authors_come_from_the_description() -> None:
    paper = parse("journal_rss2_sciencedirect_mpe_2021-12-21.xml").papers[1]
    assert paper.authors[:2] == ("Katja E. Boysen", "Susan L. Perkins") and len(paper.authors) == 7


def test_generic_rss_with_arxiv_links_is_treated_as_arxiv() -> None:
    data = b"""<rss version="2.0"><channel><title>Reading list</title>
    <item><title>A</title><link>https://arxiv.org/abs/2411.17700v3</link></item>
    <item><title>B</title><link>https://example.org/b</link><guid>https://doi.org/10.48550/arXiv.2411.17701</guid></item>
    </channel></rss>"""
    a, b = parse_feed(data, source_name="list").papers
    assert (a.canonical_id, a.version, a.url) == ("arxiv:2411.17700", 3, "https://arxiv.org/abs/2411.17700")
    assert b.canonical_id == "arxiv:2411.17701"


# --- Hugging Face daily papers ---------------------------------------------------------------------


def test_hf_daily_papers(multi: ParsedFeed) -> None:
    feed = parse("hf_daily_papers.json")
    assert feed.kind == "hf_daily" and len(feed.papers) == 9
    first = feed.papers[0]
    assert (first.canonical_id, first.upvotes, first.version) == ("arxiv:2411.17760", 42, None)
    assert first.url == "https://arxiv.org/abs/2411.17760" and first.pdf_url == "https://arxiv.org/pdf/2411.17760"
    assert first.authors[0] == "Shijian Deng" and first.published == datetime(2024, 11, 26, 9, 0, tzinfo=UTC)
    # The same papers as in the arXiv listing: same key, title and abstract, so they dedupe.
    listing = by_id(multi)
    for paper in feed.papers:
        assert paper.title == listing[paper.canonical_id].title
        assert paper.abstract == listing[paper.canonical_id].abstract


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"paper": ', "not valid JSON"),
        (b'{"error": "rate limited"}', "JSON is not a Hugging Face daily papers list"),
        (b'[{"title": "x"}]', "JSON is not a Hugging Face daily papers list"),
    ],
)
def test_hf_bad_json(data: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=f"^hf: {message}"):
        parse_feed(data, source_name="hf")


def test_hf_empty_list_and_unusable_items() -> None:
    assert parse_feed(b"[]", source_name="hf").empty
    feed = parse_feed(
        b'[{"paper": {"id": "2411.17760", "title": "Ok", "upvotes": true}},'
        b' {"paper": {"id": "not-an-id", "title": "No id"}}, {"paper": {"id": "2411.17762"}}, 7]',
        source_name="hf",
    )
    assert [p.title for p in feed.papers] == ["Ok"] and feed.skipped == 3
    assert feed.papers[0].upvotes is None  # a boolean is not a count


# --- broken and hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["malformed_truncated.xml", "html_not_a_feed.html"])
def test_not_a_feed(name: str) -> None:
    with pytest.raises(FeedError, match=r"^src: not a feed \(") as err:
        parse(name)
    assert "\n" not in str(err.value)


def test_truncated_after_the_title_with_no_items_is_not_an_empty_day() -> None:
    data = (FIXTURES / MULTI).read_bytes()[:560]  # the channel title is complete, no item
    with pytest.raises(FeedError, match="^src: not a feed"):
        parse_feed(data, source_name="src")


def test_truncated_in_the_middle_keeps_the_complete_entries_with_a_warning() -> None:
    data = (FIXTURES / "arxiv_api_atom_2026_search-testing_100results.xml").read_bytes()
    whole = by_id(parse_feed(data, source_name="src"))
    feed = parse_feed(data[: len(data) // 2], source_name="src")
    assert feed.warning and "no element found" in feed.warning
    # feedparser saw 50 entries, the 50th cut off mid-way: it is dropped, the 49 complete ones are kept.
    assert len(feed.papers) == 49 and feed.skipped == 1
    assert all(whole[p.canonical_id] == p for p in feed.papers)


def test_empty_bytes_and_unknown_kind() -> None:
    with pytest.raises(FeedError, match="^src: empty response"):
        parse_feed(b"  \n", source_name="src")
    with pytest.raises(FeedError, match="^src: unknown feed kind 'atom'"):
        parse_feed(b"<rss/>", kind="atom", source_name="src")
    with pytest.raises(FeedError, match="^src: not valid JSON"):
        parse("arxiv_rss_new2024_empty_test-archive.xml", kind="hf_daily")


def test_bytes_that_name_a_file_are_not_read_as_a_path(tmp_path: Path) -> None:
    # feedparser opens a bytes argument as a path when such a file exists; the parser must not.
    secret = tmp_path / "secret.xml"
    secret.write_bytes((FIXTURES / "arxiv_rss_legacy_rdf_hep-ex_2018-05-23_excerpt.xml").read_bytes())
    with pytest.raises(FeedError, match="not a feed"):
        parse_feed(str(secret).encode(), source_name="src")


HOSTILE = (
    b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Evil</title>
<item>
  <title>&lt;script&gt;alert(1)&lt;/script&gt;Nice &lt;b&gt;title&lt;/b&gt;\xe2\x80\xae&lt;!-- x --&gt;</title>
  <link>javascript:alert(document.cookie)</link>
  <description>&lt;img src=x onerror=alert(1)&gt;&lt;p&gt;Real text&lt;/p&gt;&lt;style&gt;body{}&lt;/style&gt; """
    + b"A" * 1_000_000
    + b"""</description>
  <dc:creator>"""
    + b", ".join(b"Author %d" % i for i in range(500))
    + b"""</dc:creator>
"""
    + b"".join(b"<category>cat%d</category>" % i for i in range(100))
    + b"""
  <guid>https://example.org/p/1</guid>
</item>
<item><title>  </title><link>https://example.org/untitled</link></item>
<item><title>"""
    + b"T" * 5000
    + b"""</title><link>data:text/html,hi</link></item>
</channel></rss>"""
)


def test_hostile_entry_is_stripped_and_bounded() -> None:
    feed = parse_feed(HOSTILE, source_name="evil")
    assert feed.skipped == 1 and feed.warning is None  # the entry without a title
    evil, long_title = feed.papers
    assert evil.title == "Nice title"  # script content, tags, comment and the bidi override gone
    assert evil.url is None and long_title.url is None  # javascript: and data: links dropped
    assert evil.abstract.startswith("Real text A") and "onerror" not in evil.abstract and "body{}" not in evil.abstract
    assert len(evil.abstract) == ABSTRACT_MAX and evil.abstract.endswith("…")
    assert len(evil.authors) == AUTHORS_MAX and evil.authors[0] == "Author 0"
    assert len(evil.categories) == CATEGORIES_MAX
    assert len(long_title.title) == TITLE_MAX
    for text in (evil.title, evil.abstract, *evil.authors):
        assert not re.search(r"[<>\x00-\x1f\u202e]", text)


def test_control_characters_are_removed() -> None:
    # Not even well-formed XML; feedparser's loose parser still reads it, and the text comes out clean.
    data = b"<rss version='2.0'><channel><title>t</title><item><title>Bell\x07 and \x1b[31mred</title></item>"
    feed = parse_feed(data, source_name="src")
    assert feed.papers[0].title == "Bell and [31mred" and feed.warning


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>t</title><item><title>leak: &xxe; end</title></item></channel></rss>'
    ).encode()
    feed = parse_feed(data, source_name="src")
    assert "TOP-SECRET" not in feed.papers[0].title


def test_entity_expansion_bomb_stays_small() -> None:
    entities = "".join(f'<!ENTITY l{i + 1} "{f"&l{i};" * 10}">' for i in range(9))
    data = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{entities}]>'
        '<rss version="2.0"><channel><title>t</title><item><title>&l9;</title></item></channel></rss>'
    ).encode()
    feed = parse_feed(data, source_name="src")  # 3 * 10**9 characters if expanded
    assert all(len(p.title) <= TITLE_MAX for p in feed.papers) and feed.warning


def test_a_malformed_feed_that_yields_no_paper_has_failed() -> None:
    # Not "1 skipped": a source that gives nothing because it could not be parsed failed.
    with pytest.raises(FeedError, match=r"^src: malformed feed, no usable entry \(.*unclosed token"):
        parse_feed(b"<rss><channel><item><title>oops</ti", source_name="src")


def test_latex_in_arxiv_text_is_made_readable_and_its_source_kept() -> None:
    item = (
        '<item><title>Superconductivity in Pb$_{0.64}$Sn$_{0.36}$Te near $T_c$</title>'
        '<link>https://arxiv.org/abs/2411.00001</link><guid isPermaLink="false">oai:arXiv.org:2411.00001v1</guid>'
        '<description>arXiv:2411.00001v1 Announce Type: new \nAbstract: We follow G\\"unther and improve by 12% '
        'on the $\\alpha$-phase.</description>'
        '<dc:creator>Pietro Li\\`o, Ada Lovelace</dc:creator></item>'
    )
    data = ('<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:arxiv="http://arxiv.org/schemas/atom"><channel><title>cond-mat updates on arXiv.org</title>'
            f'<link>http://rss.arxiv.org/rss/cond-mat</link><description>x</description>{item}</channel></rss>')
    (paper,) = parse_feed(data.encode(), kind="arxiv_rss", source_name="src").papers
    assert paper.title == "Superconductivity in Pb0.64Sn0.36Te near T_c"
    assert paper.abstract == "We follow Günther and improve by 12% on the α-phase."
    assert paper.authors == ("Pietro Liò", "Ada Lovelace")
    assert paper.title_latex == "Superconductivity in Pb$_{0.64}$Sn$_{0.36}$Te near $T_c$"
    assert paper.authors_latex == ("Pietro Li\\`o", "Ada Lovelace")
    # Text without markup is left as it is and keeps no second copy.
    plain = parse("arxiv_api_atom_2026_search-testing_100results.xml").papers
    assert sum(p.title_latex is None for p in plain) > 80


@pytest.mark.parametrize("text", ["{" * 5000 + "x", "\\begin{" * 1000, "\\href{https://x.org}{code",
                                  "\\end{document} lost words", "$" * 3001, "a" * 30_000 + "\\'e",
                                  "\\newcommand{\\x}{ab} text", "\\newcommand{\\x}{"])
def test_malformed_or_huge_latex_never_raises_and_falls_back_to_the_source(text: str) -> None:
    from digest.ingest.latex import to_text

    out = to_text(text)
    assert isinstance(out, str) and len(out) <= len(text)
    if text.startswith(("{", "\\begin", "\\href", "\\end", "a" * 100, "\\newcommand")):
        assert out == text  # nothing readable would come of it: the source is shown


# Real abstracts' closing sentences (the 2024-11-28 listing): links written as LaTeX commands.
@pytest.mark.parametrize(("source", "readable"), [
    ("The source code is publicly available at \\url{https://github.com/ch9397/FixedWing-MonoPPO}.",
     "The source code is publicly available at https://github.com/ch9397/FixedWing-MonoPPO."),
    ("The experiment code is open-sourced at \\href{https://github.com/Kanyooo/EEG-DCNet}{here}.",
     "The experiment code is open-sourced at here (https://github.com/Kanyooo/EEG-DCNet)."),
    # The link's text is the URL: it is said once.
    ("open-sourced for further exploration: \\href{https://github.com/MaeChd/SurrogateVarStabe}"
     "{https://github.com/MaeChd/SurrogateVarStabe}",
     "open-sourced for further exploration: https://github.com/MaeChd/SurrogateVarStabe"),
    ("made available at \\href{https://eduardzamfir.github.io/moceir/}{\\texttt{eduardzamfir.github.io/MoCE-IR/}}",
     "made available at eduardzamfir.github.io/MoCE-IR/ (https://eduardzamfir.github.io/moceir/)"),
    ("in every bipartition [\\href{https://iopscience.iop.org/article/10.1088/1367-2630/ac9e14}{Shi {\\it et al}. "
     "New J. Phys. \\textbf{24}, 113-025 (2022)}]. However,",
     "in every bipartition [Shi et al. New J. Phys. 24, 113-025 (2022) "
     "(https://iopscience.iop.org/article/10.1088/1367-2630/ac9e14)]. However,"),
    ("presented at ``Escola de Cosmologia e Gravita\\c{c}\\~ao\" \\url{https://cosmosecontexto.org.br/ecg-inscricoes}"
     " and webcast at \\url{https://shorturl.at/2ZSI7} -- in Portuguese",
     "presented at “Escola de Cosmologia e Gravitação\" https://cosmosecontexto.org.br/ecg-inscricoes"
     " and webcast at https://shorturl.at/2ZSI7 – in Portuguese"),
    # A URL's %, ~ and escaped _ and # are the URL's, not a comment, a tie or markup.
    ("Data: \\url{https://x.org/a%20b~c} and \\href{https://x.org/d\\_e\\#f}{the \\emph{tables}}.",
     "Data: https://x.org/a%20b~c and the tables (https://x.org/d_e#f)."),
])
def test_latex_links_read_as_their_urls(source: str, readable: str) -> None:
    from digest.ingest.latex import to_text

    assert to_text(source) == readable


def test_links_in_the_bundled_listing_are_readable(multi: ParsedFeed) -> None:
    papers = by_id(multi)
    assert papers["arxiv:2411.18363"].abstract.endswith("Code is available at https://github.com/IDEA-Research/ChatRex.")
    assert "\\url" in (papers["arxiv:2411.18363"].abstract_latex or "")
    # No abstract is left with pylatexenc's "<URL>" or a \url's closing brace.
    for paper in multi.papers:
        assert "<http" not in paper.abstract and not re.search(r"https?://[^\s]*\}", paper.abstract)


# Real abstracts' fragments (the 2024-11-28 listing and the 2026 API sample) with commands pylatexenc
# does not know: each used to come out with a word missing ("add-ons (, IP-Adapter)").
@pytest.mark.parametrize(("source", "readable"), [
    ("embedding-based add-ons (\\eg, IP-Adapter, ED-LoRA)", "embedding-based add-ons (e.g., IP-Adapter, ED-LoRA)"),
    ("metadata (\\ie names, creators, descriptions, \\etc) and",
     "metadata (i.e. names, creators, descriptions, etc.) and"),
    ("Collected using two 360{\\deg} cameras", "Collected using two 360° cameras"),
    ("a mass-loss rate $\\dot{M}_\\star \\lesssim 0.3 \\dot{M}_\\sun$", "a mass-loss rate Ṁ_⋆≲ 0.3 Ṁ_⊙"),
    ("deployed in production since \\DuMPOnline, which", "deployed in production since \\DuMPOnline, which"),
    ("equal for a \\textup{Type-II BCG}. Finally", "equal for a Type-II BCG. Finally"),
    ("unless $\\textsf{NP} \\subseteq \\textsf{coNP}/poly$.", "unless NP⊆coNP/poly."),
    # A font switch changes how text looks; a formula's own commands stay out of the text; the
    # degree of a polynomial is not an angle.
    ("[{\\it Phys. Rev. E} {\\bf 105}]", "[Phys. Rev. E 105]"),
    ("$e^{-\\beta \\Hcal_N}$ where $\\deg(v) = 3$", "e^-β_N where deg(v) = 3"),
])
def test_unknown_latex_commands_keep_the_word_they_stand_for(source: str, readable: str) -> None:
    from digest.ingest.latex import to_text

    assert to_text(source) == readable


def test_the_authors_command_for_their_system_reads_as_the_titles_name(multi: ParsedFeed) -> None:
    paper = by_id(multi)["arxiv:2411.17849"]
    assert paper.title.startswith("GNN 101: Visual Learning")
    assert "we present GNN 101, an educational visualization tool" in paper.abstract
    assert "\\name" in (paper.abstract_latex or "")
    # Without a short name before a colon in the title, the command is shown as the authors wrote it.
    from digest.ingest.latex import title_name, to_text

    assert title_name("What is the amount of baryonic dark matter in galaxies?") is None
    assert title_name("A Long Descriptive Lead of Many Words: and more") is None
    assert to_text("we present \\name, a tool", own_name=title_name("Plain title")) == "we present \\name, a tool"
