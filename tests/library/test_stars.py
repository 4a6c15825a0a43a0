"""`digest star`: importing a library as stars (the warm start), with bad input refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from digest.cli import main
from digest.config import FetchSettings
from digest.ingest.arxiv_lookup import lookup_ids
from digest.store.schema import events, papers
from tests.http_server import LocalHttpServer, QuietHandler
from tests.smtp_server import free_port

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
ARXIV = FEEDS / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
API_RESPONSE = FEEDS / "arxiv_api_atom_2026_search-testing_100results.xml"  # 2202.12139, 2405.13786, ...
BIB = """% my library
@article{vaswani,
  title = {Attention {I}s All You Need},
  author = {Ashish Vaswani and Noam Shazeer},
  eprint = {1706.03762}, archivePrefix = {arXiv},
  abstract = {The dominant sequence transduction models are based on recurrent networks.},
}
@inproceedings{fam, title = "FAM Diffusion: Frequency and Attention Modulation for High-Resolution Image
  Generation with Stable Diffusion", year = 2024}
@misc{noid, note = {nothing useful}}
"""


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ndatabase: {{url: '{db_url}'}}\n"
                   f"sources: [{{name: arxiv, path: '{ARXIV}'}}]\n")
    env = {"DIGEST_CONFIG": str(cfg)}
    _run(env, "ingest")
    _run(env, "subscribe", "ada@example.org", "--keywords", "diffusion models")
    return env


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _stars(db_url: str) -> list[tuple[str, str]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(papers.c.canonical_id, events.c.origin)
                            .join(papers, papers.c.id == events.c.paper_id).where(events.c.kind == "star")).all()
    engine.dispose()
    return sorted((a, b) for a, b in rows)


def test_star_ids_from_the_store(env: dict[str, str], db_url: str) -> None:
    r = _run(env, "star", "ada@example.org", "2411.18552", "https://arxiv.org/abs/2411.18616v1")
    assert r.exit_code == 0, r.output + r.stderr
    assert "Starred 2 paper(s)" in r.output
    assert _stars(db_url) == [("arxiv:2411.18552", "import"), ("arxiv:2411.18616", "import")]
    again = _run(env, "star", "ada@example.org", "2411.18552")
    assert "Starred 0 paper(s)" in again.output and "1 already starred" in again.output


def test_unknown_ids_are_listed_and_the_known_ones_starred(env: dict[str, str], db_url: str,
                                                            tmp_path: Path) -> None:
    # One rule for the command line and a file: star what is known, list what is not, exit 1.
    r = _run(env, "star", "ada@example.org", "2411.18552", "9912.99999")
    assert r.exit_code == 1 and "Starred 1 paper(s)" in r.output
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: not starred (1): 9912.99999 (not in the store; --fetch-missing")
    assert _stars(db_url) == [("arxiv:2411.18552", "import")]
    ids = tmp_path / "ids.txt"
    ids.write_text("2411.18616\n9912.99998\n")
    r = _run(env, "star", "ada@example.org", "--file", str(ids))
    assert r.exit_code == 1 and "Starred 1 paper(s)" in r.output and "9912.99998 (not in the store" in r.stderr
    assert _stars(db_url) == [("arxiv:2411.18552", "import"), ("arxiv:2411.18616", "import")]
    bad = _run(env, "star", "ada@example.org", "not-an-id")
    assert bad.exit_code == 2 and "not-an-id" in bad.stderr
    nobody = _run(env, "star", "bob@example.org", "2411.18552")
    assert nobody.exit_code != 0 and "bob@example.org" in nobody.stderr


def test_bibtex_library_is_matched_or_stored_but_never_offered_as_new(env: dict[str, str], db_url: str,
                                                                       tmp_path: Path) -> None:
    bib = tmp_path / "lib.bib"
    bib.write_text(BIB)
    r = _run(env, "star", "ada@example.org", "--file", str(bib))
    assert r.exit_code == 1, r.output + r.stderr  # one entry was not starred
    assert "Starred 2 paper(s)" in r.output and "1 stored from the library" in r.output
    assert "lib.bib line 10 (no id or title to match)" in r.stderr  # the entry with nothing to match on
    starred = dict(_stars(db_url))
    assert "arxiv:1706.03762" in starred and "arxiv:2411.18552" in starred  # FAM matched by title
    # The imported Transformer paper is not news: it never appears in a digest.
    out = _run(env, "run", "--no-ingest", "--dry-run", "--date", datetime.now(UTC).date().isoformat())
    assert out.exit_code == 0
    preview = tmp_path / "p.html"
    _run(env, "preview", "ada@example.org", "--out", str(preview))
    assert "Attention Is All You Need" not in preview.read_text()


def test_malformed_library_files(env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.bib"
    broken.write_text("@article{x,\n  title = {Unclosed brace\n")
    r = _run(env, "star", "ada@example.org", "--file", str(broken))
    assert r.exit_code == 2 and "broken.bib line 1" in r.stderr
    ids = tmp_path / "ids.txt"
    ids.write_text("2411.18552\nhello world\n")
    r = _run(env, "star", "ada@example.org", "--file", str(ids))
    assert r.exit_code == 2 and "ids.txt line 2" in r.stderr
    r = _run(env, "star", "ada@example.org", "--file", str(tmp_path / "missing.bib"))
    assert r.exit_code == 2 and "missing.bib" in r.stderr


@dataclass
class _ArxivApi:
    url: str
    queries: list[dict[str, list[str]]]  # each request's query, parsed


@pytest.fixture
def arxiv_api() -> Iterator[_ArxivApi]:
    """A local stand-in for the arXiv API: answers every query with a real API response (100 entries)."""
    queries: list[dict[str, list[str]]] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            parts = urlsplit(self.path)
            assert parts.path == "/api/query"
            queries.append(parse_qs(parts.query))
            self.send_body(API_RESPONSE.read_bytes(), headers={"Content-Type": "application/atom+xml"})

    with LocalHttpServer(Handler) as server:
        yield _ArxivApi(f"{server.base}/api/query", queries)


def _with_api(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "DIGEST_FETCH__ALLOW_PRIVATE": "true", "DIGEST_FETCH__ARXIV_API_URL": url}


def test_fetch_missing_looks_unknown_ids_up_on_arxiv(env: dict[str, str], db_url: str,
                                                     arxiv_api: _ArxivApi) -> None:
    r = _run(_with_api(env, arxiv_api.url), "star", "ada@example.org", "2411.18552", "2202.12139",
             "https://arxiv.org/abs/2405.13786v1", "1901.99999", "--fetch-missing")
    assert r.exit_code == 1, r.output + r.stderr  # one id is not on arXiv
    assert "Starred 3 paper(s)" in r.output and "2 looked up on arXiv" in r.output
    assert r.stderr.strip().splitlines()[-1] == "error: not starred (1): 1901.99999 (not found on arXiv)"
    # One request for the ids not in the store, with max_results (the API's default is 10).
    (query,) = arxiv_api.queries
    assert query["id_list"] == ["2202.12139,2405.13786,1901.99999"] and query["max_results"] == ["3"]
    assert _stars(db_url) == [("arxiv:2202.12139", "import"), ("arxiv:2405.13786", "import"),
                              ("arxiv:2411.18552", "import")]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(papers.c.title, papers.c.first_announce)
                           .where(papers.c.arxiv_id == "2202.12139")).one()
    engine.dispose()
    assert row.title.startswith("Testing Deep Learning Models") and row.first_announce == "import"  # never news


def test_fetch_missing_without_network_says_which_ids_could_not_be_fetched(env: dict[str, str],
                                                                           db_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/query"  # nothing listens there
    r = _run(_with_api(env, dead), "star", "ada@example.org", "2411.18552", "2202.12139", "--fetch-missing")
    assert r.exit_code == 1 and "Starred 1 paper(s)" in r.output
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: not starred (1): 2202.12139 (could not be fetched: ") and "127.0.0.1" in line
    assert _stars(db_url) == [("arxiv:2411.18552", "import")]


def test_lookup_asks_100_ids_a_request_paced_3_s_apart(arxiv_api: _ArxivApi) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    ids = [f"2202.{n:05d}" for n in range(150)] + ["2202.12139"]
    found = lookup_ids(ids, FetchSettings(allow_private=True), api_url=arxiv_api.url, sleep=sleep,
                       clock=lambda: now[0])
    assert [len(q["id_list"][0].split(",")) for q in arxiv_api.queries] == [100, 51]
    assert slept == [3.0]
    assert [p.arxiv_id for p in found.papers] == ["2202.12139"] and len(found.missing) == 150


def test_bibtex_latex_is_read_as_text_with_the_source_kept() -> None:
    from digest.library.references import parse_bibtex

    (ref,) = parse_bibtex('@article{g, title = {Phases of {Pb}$_{0.64}$Sn$_{0.36}$Te},\n'
                          '  author = {G\\"unther, Hans and Pietro Li\\`o}}', "lib.bib")
    paper = ref.as_paper()
    assert paper.title == "Phases of Pb0.64Sn0.36Te" and paper.authors == ("Günther, Hans", "Pietro Liò")
    assert paper.title_latex == "Phases of {Pb}$_{0.64}$Sn$_{0.36}$Te"


def test_bibtex_joins_strings_and_keeps_the_rest_of_the_entry() -> None:
    from digest.library.references import parse_bibtex

    # The hand-written parser stopped at "#": title "Deep", and the eprint and DOI after it were lost.
    (ref, macro) = parse_bibtex('@string{dl = "Deep"}\n'
                                '@article{a, title = "Deep " # "Learning",\n'
                                '  eprint = {1706.03762}, doi = {10.1038/nature14539}}\n'
                                '@article{b, title = dl # { } # "Learning" # { for {Go}}, year = 2016}\n', "lib.bib")
    assert (ref.title, ref.arxiv_id, ref.doi, ref.origin) == ("Deep Learning", "1706.03762", "10.1038/nature14539",
                                                              "lib.bib line 2")
    assert (macro.title, macro.origin) == ("Deep Learning for {Go}", "lib.bib line 4")
    assert macro.as_paper().title == "Deep Learning for Go"


def test_bibtex_quoted_value_with_an_accent() -> None:
    from digest.library.references import parse_bibtex

    # A quoted value holds \" inside braces: the hand-written parser ended the value there.
    (ref,) = parse_bibtex('@article{m, author = "M{\\"u}ller, Hans and Pietro Li{\\`o}",\n'
                          '  title = "{\\"O}ber {\\"a}", eprint = {2411.18552}}', "lib.bib")
    paper = ref.as_paper()
    assert paper.authors == ("Müller, Hans", "Pietro Liò") and paper.title == "Öber ä"
    assert paper.arxiv_id == "2411.18552"


def test_bibtex_duplicates_are_read_and_a_broken_entry_is_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    from digest.errors import InputError
    from digest.library.references import parse_bibtex

    # Exported libraries repeat keys and fields: read as written, the last field winning, as before.
    refs = parse_bibtex("@article{k, title = {A}, title = {B}}\n@article{k, title = {C}}\n", "lib.bib")
    assert [r.title for r in refs] == ["B", "C"]
    with pytest.raises(InputError) as err:
        parse_bibtex("@article{ok, title = {Fine}}\n\n@article{x,\n  title = {Unclosed brace\n", "lib.bib")
    assert str(err.value) == "lib.bib line 3: Unexpectedly reached end of file"
    assert capfd.readouterr().err == ""  # no log lines from the parser beside the one error
