"""Reading a reader's existing library for a warm start: arXiv ids, or a BibTeX file.

Each entry becomes a reference (ids and whatever text the entry carries), matched later against the
store; a BibTeX entry not in the store can be stored from its own title and abstract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from digest.domain import Paper
from digest.errors import InputError
from digest.ingest.identity import arxiv_id_and_version, arxiv_id_from_doi, canonical_id, normalise_doi
from digest.ingest.latex import readable_paper
from digest.ingest.text import clean_text

MAX_FILE_BYTES = 20_000_000
MAX_ENTRIES = 10_000
_ENTRY_START = re.compile(r"@\s*([A-Za-z]+)\s*[{(]")
_FIELD = re.compile(r"\s*([A-Za-z][\w-]*)\s*=\s*")


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
    if _ENTRY_START.search(text):
        refs = parse_bibtex(text, path)
    else:
        refs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                refs.append(reference_from_id(line, f"{path} line {n}"))
    if not refs:
        raise InputError(f"{path}: no arXiv ids or BibTeX entries found")
    if len(refs) > MAX_ENTRIES:
        raise InputError(f"{path}: more than {MAX_ENTRIES} entries")
    return refs


def _value(text: str, i: int, where: str) -> tuple[str, int]:
    """A BibTeX field value at text[i]: {braced}, "quoted" or a bare word/number."""
    if i >= len(text):
        raise InputError(f"{where}: a field has no value")
    opener = text[i]
    if opener == "{":
        depth, j = 0, i
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j], j + 1
            j += 1
        raise InputError(f"{where}: unbalanced braces")
    if opener == '"':
        j = text.find('"', i + 1)
        if j < 0:
            raise InputError(f"{where}: unterminated quoted value")
        return text[i + 1 : j], j + 1
    m = re.match(r"[\w.:/-]+", text[i:])
    if not m:
        raise InputError(f"{where}: unexpected {text[i]!r}")
    return m.group(0), i + m.end()


def _plain(value: str, limit: int) -> str:
    # The LaTeX stays: as_paper makes it readable and keeps the source.
    return clean_text(value, limit)


def parse_bibtex(text: str, path: str) -> list[Reference]:
    refs: list[Reference] = []
    for m in _ENTRY_START.finditer(text):
        kind = m.group(1).lower()
        line = text.count("\n", 0, m.start()) + 1
        where = f"{path} line {line}"
        if kind in ("comment", "preamble", "string"):
            continue
        end_key = text.find(",", m.end())
        if end_key < 0:
            raise InputError(f"{where}: entry without fields")
        fields: dict[str, str] = {}
        i = end_key + 1
        while True:
            f = _FIELD.match(text, i)
            if not f:
                break
            value, i = _value(text, f.end(), where)
            fields[f.group(1).lower()] = value
            while i < len(text) and text[i] in " \t\r\n#":
                i += 1
            if i < len(text) and text[i] == ",":
                i += 1
        refs.append(_reference(fields, where))
    return refs


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
