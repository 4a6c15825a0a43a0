"""`digest star`: a reader's existing library imported as stars (digest.library)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from digest.cli.group import Context, fail, main, pass_ctx
from digest.errors import InputError

# Heavy modules are imported inside the commands that use them (see group.py).
if TYPE_CHECKING:
    from digest.config import Settings


@main.command()
@click.argument("email")
@click.argument("ids", nargs=-1)
@click.option("--file", "file_", type=click.Path(dir_okay=False),
              help="A file of arXiv ids (one per line) or a BibTeX library.")
@click.option("--fetch-missing", is_flag=True,
              help="Look arXiv ids that are not in the store up on arXiv (fetch.arxiv_api_url) and star them.")
@pass_ctx
def star(obj: Context, email: str, ids: tuple[str, ...], file_: str | None, fetch_missing: bool) -> None:
    """Import papers EMAIL already likes (arXiv IDS, or --file) as stars: a warm start.

    What is known is starred and what is not is listed; the exit code is 1 when something was not starred."""
    from digest.library.references import read_library, reference_from_id
    from digest.library.stars import Fetcher, import_stars
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    if not ids and not file_:
        raise InputError("give arXiv ids or --file FILE")
    refs = [reference_from_id(i, f"argument {i}") for i in ids]
    if file_:
        refs += read_library(file_)
    fetcher: Fetcher | None = None
    if fetch_missing:
        fetcher = _arxiv_fetcher(obj.settings)
    app = obj.app()
    try:
        result = import_stars(app.engine, addr, refs, now=datetime.now(UTC).replace(tzinfo=None),
                              fetch_missing=fetcher)
    finally:
        app.close()
    click.echo(f"Starred {result.starred} paper(s) for {addr}"
               + (f" ({result.already} already starred)" if result.already else "")
               + (f"; {result.fetched} looked up on arXiv" if result.fetched else "")
               + (f"; {result.stored} stored from the library's own text" if result.stored else ""))
    if result.unmatched:
        shown = ", ".join(result.unmatched[:10]) + (f" and {len(result.unmatched) - 10} more"
                                                     if len(result.unmatched) > 10 else "")
        fail(f"not starred ({len(result.unmatched)}): {shown}")


def _arxiv_fetcher(settings: Settings) -> Callable[[Sequence[str]], tuple[list[Any], dict[str, str]]]:
    from digest.ingest.arxiv_lookup import lookup_ids

    def fetch_ids(ids: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        click.echo(f"Looking {len(ids)} id(s) up on arXiv ({settings.fetch.arxiv_api_url})...", err=True)
        found = lookup_ids(ids, settings.fetch, api_url=settings.fetch.arxiv_api_url)
        return found.papers, found.missing

    return fetch_ids


