"""Ingesting a source (fetch, parse, store): which feeds may change the stored text of an arXiv paper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from digest.config import FetchSettings, SourceSettings
from digest.domain import Paper
from digest.ingest.sources import parse_feed
from digest.pipeline.collect import ingest_source
from digest.store.engine import open_engine
from digest.store.schema import papers
from tests.http_server import LocalHttpServer, QuietHandler

ARXIV = Path(__file__).parents[1] / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
NOW = datetime(2024, 11, 29, 6, 0)
SETTINGS = FetchSettings(allow_private=True, deadline_s=10)
PHISH = "Your arXiv account is locked: verify it at arxiv-login.example"


def _journal_feed(arxiv_id: str) -> bytes:
    """A journal-style RSS item whose link claims an arXiv paper, with a title and abstract of its own."""
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Journal of Things</title>
    <link>https://journal.example.org/</link><description>Latest articles</description>
    <item><title>{PHISH}</title><link>https://arxiv.org/abs/{arxiv_id}v9</link>
    <description>Abstract: Click the link within 24 hours.</description></item>
    </channel></rss>""".encode()


def _arxiv_look_alike(arxiv_id: str) -> bytes:
    """An arXiv RSS listing in every detail but where it comes from."""
    return f"""<?xml version="1.0"?><rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>cs updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs</link><description>cs updates</description>
    <item><title>{PHISH}</title><link>https://arxiv.org/abs/{arxiv_id}</link>
    <description>arXiv:{arxiv_id}v9 Announce Type: replace Abstract: Click the link within 24 hours.</description>
    <guid isPermaLink="false">oai:arXiv.org:{arxiv_id}v9</guid><arxiv:announce_type>replace</arxiv:announce_type>
    <dc:creator>Eve</dc:creator></item></channel></rss>""".encode()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def real() -> Paper:
    return parse_feed(ARXIV.read_bytes(), kind="arxiv_rss", source_name="arxiv").papers[0]


def _stored(engine: Engine, arxiv_id: str) -> tuple[str, str]:
    with engine.connect() as conn:
        row = conn.execute(select(papers.c.title, papers.c.abstract).where(papers.c.arxiv_id == arxiv_id)).one()
    return row.title, row.abstract


def _file_source(tmp_path: Path, name: str, data: bytes, kind: str = "auto") -> SourceSettings:
    path = tmp_path / f"{name}.xml"
    path.write_bytes(data)
    return SourceSettings(name=name, path=str(path), kind=kind)  # type: ignore[arg-type]


ARXIV_SOURCE = SourceSettings(name="arxiv", path=str(ARXIV), kind="arxiv_rss")


def test_a_generic_feed_claiming_an_arxiv_paper_does_not_rewrite_it(engine: Engine, tmp_path: Path,
                                                                    real: Paper) -> None:
    assert real.arxiv_id and ingest_source(engine, ARXIV_SOURCE, SETTINGS, NOW).new == 1504
    journal = ingest_source(engine, _file_source(tmp_path, "journal", _journal_feed(real.arxiv_id)), SETTINGS, NOW)
    assert (journal.status, journal.new, journal.updated, journal.duplicate) == ("ok", 0, 0, 1)
    assert _stored(engine, real.arxiv_id) == (real.title, real.abstract)


def test_a_paper_first_seen_in_a_generic_feed_is_updated_by_arxiv(engine: Engine, tmp_path: Path,
                                                                  real: Paper) -> None:
    assert real.arxiv_id
    journal = ingest_source(engine, _file_source(tmp_path, "journal", _journal_feed(real.arxiv_id)), SETTINGS, NOW)
    assert journal.new == 1 and _stored(engine, real.arxiv_id)[0] == PHISH  # adding a paper is allowed
    arxiv = ingest_source(engine, ARXIV_SOURCE, SETTINGS, NOW)
    assert (arxiv.new, arxiv.updated) == (1503, 1)
    assert _stored(engine, real.arxiv_id) == (real.title, real.abstract)


def test_an_arxiv_look_alike_from_another_host_does_not_rewrite_it(engine: Engine, real: Paper) -> None:
    assert real.arxiv_id
    body = _arxiv_look_alike(real.arxiv_id)

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_body(body)

    with LocalHttpServer(Handler) as server:
        url = f"{server.base}/rss/cs"
        ingest_source(engine, ARXIV_SOURCE, SETTINGS, NOW)
        # Detected as arXiv RSS from its content, but it came from 127.0.0.1, not arxiv.org.
        detected = ingest_source(engine, SourceSettings(name="mirror", url=url), SETTINGS, NOW)
        assert (detected.status, detected.updated, detected.duplicate) == ("ok", 0, 1)
        assert _stored(engine, real.arxiv_id) == (real.title, real.abstract)
        # An operator who configures a source as arXiv's vouches for it: its listing is arXiv's word.
        vouched = ingest_source(engine, SourceSettings(name="mirror", url=url, kind="arxiv_rss"), SETTINGS, NOW)
        assert vouched.updated == 1 and _stored(engine, real.arxiv_id)[0] == PHISH
