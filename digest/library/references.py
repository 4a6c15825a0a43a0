"""Reading a reader's existing library for a warm start: arXiv ids, or a BibTeX file.

Each entry becomes a reference (ids and whatever text the entry carries), matched later against the
store; a BibTeX entry not in the store can be stored from its own title and abstract.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from digest.domain import Paper
from digest.errors import InputError
from digest.identity import arxiv_id_and_version, arxiv_id_from_doi, canonical_id, normalise_doi
from digest.ingest.latex import readable_paper
from digest.ingest.text import feed_text

MAX_FILE_BYTES = 20_000_000
MAX_ENTRIES = 10_000
_ENTRY_START = re.compile(r"@\s*([A-Za-z]+)\s*[{(]")


@dataclass(frozen=True)
class Reference:
    """One paper of a reader's library, as given: where it came from, and what it says."""

    origin: str  # "arg 2411.12345" or "file.bib line 12"
    arxiv_id: str | None = None
    doi: str | None = None
    title: str = ""
    abstract: str = ""
    authors: tuple[str, ...] = ()
    url: str | None = None

    def as_paper(self) -> Paper:
        """The paper as stored: BibTeX fields are LaTeX source, shown as readable text (the source kept)."""
        return readable_paper(Paper(canonical_id=canonical_id(self.arxiv_id, self.doi, self.title), title=self.title,
                     abstract=self.abstract, authors=self.authors, arxiv_id=self.arxiv_id, doi=self.doi,
                     url=self.url or (f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None),
                     pdf_url=f"https://arxiv.org/pdf/{self.arxiv_id}" if self.arxiv_id else None,
                     announce_type="import", source="import"))


def reference_from_id(text: str, origin: str) -> Reference:
    found = arxiv_id_and_version(text.strip())
    if found is None:
        raise InputError(f"{origin}: not an arXiv id: {text.strip()[:80]!r}")
    return Reference(origin=origin, arxiv_id=found[0])


def read_library(path: str) -> list[Reference]:
    """A file of arXiv ids (one per line, # comments) or a BibTeX library."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        text = p.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_library(text, path)


def parse_library(text: str, name: str) -> list[Reference]:
    """The references of a library's text: arXiv ids (one per line, # comments) or BibTeX. name: the
    file's name, for the messages."""
    if _ENTRY_START.search(text):
        refs = parse_bibtex(text, name)
    else:
        refs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                refs.append(reference_from_id(line, f"{name} line {n}"))
    if not refs:
        raise InputError(f"{name}: no arXiv ids or BibTeX entries found")
    if len(refs) > MAX_ENTRIES:
        raise InputError(f"{name}: more than {MAX_ENTRIES} entries")
    return refs


def _plain(value: str, limit: int) -> str:
    # The LaTeX stays: as_paper makes it readable and keeps the source.
    return feed_text(value, limit)


def parse_bibtex(text: str, path: str) -> list[Reference]:
    """The entries of a BibTeX library, in file order. bibtexparser splits the file into blocks; the
    field values are joined here (``"Deep " # "Learning"``, @string macros), since bibtexparser 2
    resolves a macro only when it is a field's whole value."""
    # Imported on first use: only `digest star --file` reads BibTeX. (bibtexparser.parse_string is this
    # function; the package's __init__ does not declare its re-exports for a type checker.)
    from bibtexparser.entrypoint import parse_string
    from bibtexparser.model import DuplicateBlockKeyBlock, DuplicateFieldKeyBlock, Entry, ParsingFailedBlock, String

    # A broken block is reported below as one line naming the file; not also as bibtexparser's log lines.
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)
    # No middlewares: the values come raw (braces, quotes and # kept) and are joined below.
    library = parse_string(text, parse_stack=[])
    macros: dict[str, str] = {}
    refs: list[Reference] = []
    for block in library.blocks:
        where = f"{path} line {(block.start_line or 0) + 1}"
        if isinstance(block, (DuplicateBlockKeyBlock, DuplicateFieldKeyBlock)):
            # A key or a field given twice is no reason to refuse a library: read it as written.
            block = block.ignore_error_block or block
        if isinstance(block, ParsingFailedBlock):
            raise InputError(f"{where}: {_reason(block.error)}")
        if isinstance(block, String):
            macros[block.key.lower()] = _joined(str(block.value), macros, where)
        elif isinstance(block, Entry):
            fields: dict[str, str] = {}
            for field in block.fields:  # a field given twice: the last one counts
                fields[field.key.lower()] = _joined(str(field.value), macros, where)
            refs.append(_reference(fields, where))
    return refs


def _reason(error: Exception) -> str:
    reason = getattr(error, "abort_reason", None) or str(error) or type(error).__name__
    return " ".join(str(reason).split()).rstrip(".")[:200]


def _joined(raw: str, macros: dict[str, str], where: str) -> str:
    """A raw BibTeX value as its text: {braced} and "quoted" parts lose their delimiters, a bare word
    is a macro's value (or itself: a number, or a macro nobody defined), and # joins the parts."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(raw):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == '"' and depth == 0:
            quoted = not quoted
        elif ch == "#" and depth == 0 and not quoted:
            parts.append(raw[start:i])
            start = i + 1
    parts.append(raw[start:])
    out = []
    for part in (p.strip() for p in parts):
        if not part:
            raise InputError(f"{where}: a field has an empty part around #")
        if (part[0], part[-1]) in (("{", "}"), ('"', '"')) and len(part) >= 2:
            out.append(part[1:-1])
        else:
            out.append(macros.get(part.lower(), part))
    return "".join(out)


def _reference(fields: dict[str, str], where: str) -> Reference:
    doi = normalise_doi(fields.get("doi"))
    arxiv = None
    for key in ("eprint", "arxivid", "arxiv", "url", "journal", "note"):
        value = fields.get(key, "")
        # A bare id-shaped number counts only in an arXiv field, or where the text says arXiv.
        trusted = key in ("eprint", "arxivid", "arxiv") or "arxiv" in value.lower()
        if trusted and (found := arxiv_id_and_version(value)) is not None:
            arxiv = found[0]
            break
    arxiv = arxiv or arxiv_id_from_doi(doi)
    title = _plain(fields.get("title", ""), 500)
    # An entry with no title, DOI or arXiv id is kept: the import reports it as unmatched.
    authors = tuple(a for a in (_plain(x, 200) for x in re.split(r"\s+and\s+", fields.get("author", ""))) if a)
    url = fields.get("url", "").strip() or None
    if url and not re.match(r"^https?://", url, re.IGNORECASE):
        url = None
    return Reference(origin=where, arxiv_id=arxiv, doi=doi, title=title,
                     abstract=_plain(fields.get("abstract", ""), 10_000), authors=authors[:100], url=url)
