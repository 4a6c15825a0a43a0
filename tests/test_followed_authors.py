"""Following authors from the command line against real parts: a real arXiv feed over HTTP, a real
database and a real SMTP server on 127.0.0.1. The followed author's paper heads the email with its
label, whatever the reader's keywords; a name that cannot be used is refused at subscribe time."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

from tests.smtp_server import SmtpServer
from tests.test_end_to_end import _cli, _config, _FeedServer, _parse, _today, feed_server  # noqa: F401

TREES = "Generating Trees and Fibonacci Polyominoes"  # by Andrés R. Vindas-Meléndez, on the sample day
RINGS = "Multi-Frequency Models of Black Hole Photon Rings"  # by Alejandro Cárdenas-Avendaño


def _titles(html: str) -> list[str]:
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", t)).strip()
            for t in re.findall(r'<a class="link"[^>]*>(.*?)</a>', html, flags=re.S)]


def test_a_followed_authors_papers_head_the_digest_with_their_label(
        tmp_path: Path, db_url: str, feed_server: _FeedServer, smtp_server: SmtpServer) -> None:  # noqa: F811
    env = _config(tmp_path, db_url, feed_server.url, smtp_server.port)
    made = _cli(env, "subscribe", "ada@example.org", "--keywords", "diffusion models",
                "--authors", "Vindas-Melendez, Andres R.; A. Cardenas-Avendano")
    assert made.exit_code == 0, made.output
    assert "follows Vindas-Melendez, Andres R.; A. Cardenas-Avendano" in made.output
    assert "(follows: Vindas-Melendez, Andres R.; A. Cardenas-Avendano)" in _cli(env, "subscribers").output
    assert _cli(env, "subscribe", "alan@example.org", "--keywords", "diffusion models").exit_code == 0

    run = _cli(env, "run", "--date", _today())
    assert run.exit_code == 0, run.output + run.stderr
    by_rcpt = {m.rcpt_tos[0]: _parse(m.data) for m in smtp_server.handler.messages}
    ada = by_rcpt["ada@example.org"]
    html = ada.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = ada.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    titles = _titles(html)
    assert len(titles) == 12 and {t[:len(RINGS)] for t in titles[:2]} >= {TREES, RINGS}
    assert "By an author you follow: Vindas-Melendez, Andres R." in html
    assert "[By an author you follow: A. Cardenas-Avendano]" in text
    # The reader who follows no one gets the same ten picks, without the two.
    alan = _titles(by_rcpt["alan@example.org"].get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert alan == titles[2:]


def test_an_author_list_that_cannot_be_used_is_refused_and_nothing_changes(
        tmp_path: Path, db_url: str, feed_server: _FeedServer, smtp_server: SmtpServer) -> None:  # noqa: F811
    env = _config(tmp_path, db_url, feed_server.url, smtp_server.port)
    assert _cli(env, "subscribe", "ada@example.org", "--keywords", "diffusion models",
                "--authors", "Max Welling").exit_code == 0
    for bad in ("Welling", "M.", "1234", "x" * 300):
        refused = _cli(env, "subscribe", "ada@example.org", "--authors", bad)
        assert refused.exit_code != 0
        line = refused.stderr.strip()
        assert line.startswith("error: --authors:") and "\n" not in line, line
    assert "(follows: Max Welling)" in _cli(env, "subscribers").output
    # "" follows no one any more.
    assert _cli(env, "subscribe", "ada@example.org", "--authors", "").exit_code == 0
    assert "follows" not in _cli(env, "subscribers").output
