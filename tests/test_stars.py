"""`digest star`: importing a library as stars (the warm start), with bad input refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from digest.cli import main
from digest.store.schema import events, papers

ARXIV = Path(__file__).parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
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


def test_unknown_id_stars_nothing(env: dict[str, str], db_url: str) -> None:
    r = _run(env, "star", "ada@example.org", "2411.18552", "9912.99999")
    assert r.exit_code != 0 and "9912.99999" in r.stderr and "\n" not in r.stderr.strip()
    assert _stars(db_url) == []
    bad = _run(env, "star", "ada@example.org", "not-an-id")
    assert bad.exit_code == 2 and "not-an-id" in bad.stderr
    nobody = _run(env, "star", "bob@example.org", "2411.18552")
    assert nobody.exit_code != 0 and "bob@example.org" in nobody.stderr


def test_bibtex_library_is_matched_or_stored_but_never_offered_as_new(env: dict[str, str], db_url: str,
                                                                       tmp_path: Path) -> None:
    bib = tmp_path / "lib.bib"
    bib.write_text(BIB)
    r = _run(env, "star", "ada@example.org", "--file", str(bib))
    assert r.exit_code == 0, r.output + r.stderr
    assert "Starred 2 paper(s)" in r.output and "1 stored from the library" in r.output
    assert "lib.bib line 10" in r.output  # the entry with nothing to match on
    starred = dict(_stars(db_url))
    assert "arxiv:1706.03762" in starred and "arxiv:2411.18552" in starred  # FAM matched by title
    # The imported Transformer paper is not news: it never appears in a digest.
    out = _run(env, "run", "--no-ingest", "--dry-run")
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
