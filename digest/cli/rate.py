"""`digest rate`: the sign-up rating at a terminal, for operators who subscribe people by hand.

The same dozen papers as the rating page (digest.pipeline.rating), one at a time, each answered
with y (want these), n (not for me), s (skip) or q (stop); every answer is recorded as it is given
(a star or "less like this", origin cli:rate), so stopping or Ctrl-C keeps what was rated. The
prompt is questionary's (prompt_toolkit: a real terminal's keys, resizing, Ctrl-C); without a
terminal the command refuses, since there is nobody to ask.
"""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, datetime

import click

from digest.cli.group import Context, main, pass_ctx
from digest.errors import InputError

ABSTRACT_CHARS = 500
ANSWERS = {"y": "star", "n": "dislike"}


@main.command()
@click.argument("email")
@pass_ctx
def rate(obj: Context, email: str) -> None:
    """Ask EMAIL's reader (at this terminal) to rate a dozen recent papers, one at a time."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("digest rate asks one paper at a time: run it in a terminal")
    import questionary

    from digest.pipeline.rating import papers_to_rate
    from digest.store import events as event_store
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email
    from digest.text import author_line, clean_text

    addr = normalise_email(email)
    app = obj.app()
    try:
        with app.engine.connect() as conn:
            sub = sub_store.require_subscriber(conn, addr)
        papers = papers_to_rate(app.engine, sub, datetime.now(UTC))
        if not papers:
            click.echo(f"No recent papers to rate for {addr}: ingest a listing first (digest ingest).")
            return
        counts = {"star": 0, "dislike": 0}
        choices = [questionary.Choice("Want these", "y", shortcut_key="y"),
                   questionary.Choice("Not for me", "n", shortcut_key="n"),
                   questionary.Choice("Skip", "s", shortcut_key="s"),
                   questionary.Choice("Stop here", "q", shortcut_key="q")]
        for n, paper in enumerate(papers, 1):
            click.echo("")
            click.echo(click.style(f"{n}/{len(papers)}  {clean_text(paper.title, 300)}", bold=True))
            if paper.authors:
                click.echo(author_line(paper.authors, 6, 300))
            if paper.abstract:
                click.echo(textwrap.fill(clean_text(paper.abstract, ABSTRACT_CHARS), width=100))
            answer = questionary.select("Your rating:", choices=choices, use_shortcuts=True).ask()
            if answer is None or answer == "q":  # Ctrl-C, or stop
                break
            kind = ANSWERS.get(answer)
            if kind is not None and paper.id is not None:
                with app.engine.begin() as conn:
                    event_store.set_opinion(conn, subscriber_id=sub.id, paper_id=paper.id, kind=kind,
                                            origin="cli:rate", now=datetime.now(UTC).replace(tzinfo=None))
                counts[kind] += 1
    finally:
        app.close()
    click.echo(f"\nRated for {addr}: {counts['star']} wanted, {counts['dislike']} not for me. "
               "The next digest learns from them.")
