"""A reader's starred papers written out: BibTeX (by bibtexparser, the library the import reads
with) and a plain list of arXiv ids, both of which `digest star --file` and the library page read
back.

BibTeX values are LaTeX: a paper's LaTeX source is written where the store kept it (the feed's own
markup), else its text with LaTeX's special characters and non-ASCII letters encoded (pylatexenc).
arXiv papers are @misc entries with eprint / archivePrefix / primaryClass, as arXiv's own export
writes them; the key is the arXiv id, else "paper<id>".
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.domain import Paper


def _latex(text: str) -> str:
    from pylatexenc.latexencode import unicode_to_latex

    return str(unicode_to_latex(text, non_ascii_only=False, replacement_latex_protection="braces"))


def bibtex(papers: Sequence[Paper]) -> str:
    """One BibTeX entry per paper, in the order given."""
    # Imported on first use: only the library's export writes BibTeX. (From the modules that define
    # them: the package's __init__ does not declare its re-exports for a type checker.)
    from bibtexparser.entrypoint import write_string
    from bibtexparser.library import Library
    from bibtexparser.model import Block, Entry, Field

    entries: list[Block] = []
    seen: set[str] = set()
    for p in papers:
        key = p.arxiv_id or f"paper{p.id}"
        if key in seen:
            continue
        seen.add(key)
        title = p.title_latex or _latex(p.title)
        authors = p.authors_latex or tuple(_latex(a) for a in p.authors)
        fields = [Field("title", title)]
        if authors:
            fields.append(Field("author", " and ".join(authors)))
        if p.published is not None:
            fields.append(Field("year", str(p.published.year)))
        if p.arxiv_id:
            fields += [Field("eprint", p.arxiv_id), Field("archivePrefix", "arXiv")]
            if p.categories:
                fields.append(Field("primaryClass", p.categories[0]))
        if p.doi:
            fields.append(Field("doi", p.doi))
        if p.url:
            fields.append(Field("url", p.url))
        entries.append(Entry("misc", key, fields))
    return str(write_string(Library(entries)))


def arxiv_ids(papers: Sequence[Paper]) -> str:
    """The arXiv ids, one per line (papers without one are left out)."""
    return "".join(f"{i}\n" for i in dict.fromkeys(p.arxiv_id for p in papers if p.arxiv_id))
