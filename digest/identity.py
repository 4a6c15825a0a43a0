"""Canonical paper identities: arXiv ids, DOIs and normalised titles, the dedup keys across sources."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

# Pre-2007 archives; listing them keeps "example.com/abs/1234567" from passing for an arXiv id.
_OLD_ARCHIVES = (
    "acc-phys|adap-org|alg-geom|ao-sci|astro-ph|atom-ph|bayes-an|chao-dyn|chem-ph|cmp-lg|comp-gas|"
    "cond-mat|cs|dg-ga|funct-an|gr-qc|hep-ex|hep-lat|hep-ph|hep-th|math|math-ph|mtrl-th|nlin|nucl-ex|"
    "nucl-th|patt-sol|physics|plasm-ph|q-alg|q-bio|quant-ph|solv-int|supr-con"
)

# New style YYMM.NNNNN: no word character or "<digit>." before it, so the "2022.00035" tail of a DOI
# such as 10.1109/X.2022.00035 is not taken for an id, while "arXiv.2411.12345" still is.
_NEW_ID = re.compile(r"(?<!\w)(?<!\d\.)(\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})(?:v(\d{1,4}))?(?!\d)")
# Old style archive[.SC]/YYMMNNN; the subject class (math.GT) is not part of the id.
_OLD_ID = re.compile(
    r"(?<![\w-])(" + _OLD_ARCHIVES + r")(?:\.[A-Za-z]{2})?"
    r"/(\d{2}(?:0[1-9]|1[0-2])\d{3})(?:v(\d{1,4}))?(?!\d)",
    re.IGNORECASE,
)
# The source kinds that speak for arXiv: only they may change the stored text of a paper with an arXiv id.
ARXIV_KINDS = frozenset({"arxiv_rss", "arxiv_api"})
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>?#]+)")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*|info:doi/|doi\s+)", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)


def arxiv_id_and_version(text: str | None) -> tuple[str, int | None] | None:
    """The first arXiv id in an id, URL or string, without its version, and the version if given.

    "oai:arXiv.org:2411.12345v2" -> ("2411.12345", 2);
    "http://arxiv.org/abs/hep-ex/0605012" -> ("hep-ex/0605012", None).
    """
    if not text:
        return None
    new = _NEW_ID.search(text)
    old = _OLD_ID.search(text)
    if new and (not old or new.start() <= old.start()):
        return new.group(1), int(new.group(2)) if new.group(2) else None
    if old:
        return f"{old.group(1).lower()}/{old.group(2)}", int(old.group(3)) if old.group(3) else None
    return None


def normalise_doi(s: str | None) -> str | None:
    """A bare lower-case DOI ("10.1000/xyz") from a DOI, doi: string or doi.org URL; None if it is not one."""
    if not s:
        return None
    doi = s.strip()
    if _DOI_PREFIX.match(doi):
        doi = unquote(_DOI_PREFIX.sub("", doi, count=1))
    doi = doi.strip().rstrip(".,;").lower()
    if not re.fullmatch(r"10\.\d{4,9}/\S+", doi) or len(doi) > 300:
        return None
    return doi


def doi_in_text(text: str | None) -> str | None:
    """A DOI found anywhere in a string, e.g. a publisher link like https://host/doi/10.1002/tax.12650?af=R."""
    if not text:
        return None
    m = _DOI_IN_TEXT.search(unquote(text))
    return normalise_doi(m.group(1)) if m else None


def arxiv_id_from_doi(doi: str | None) -> str | None:
    """arXiv's own DOIs (10.48550/arXiv.<id>) name an arXiv paper: return its id."""
    m = _ARXIV_DOI.match(doi or "")
    if not m:
        return None
    found = arxiv_id_and_version(m.group(1))
    return found[0] if found else None


def normalise_title(s: str | None) -> str:
    """Casefolded, accents stripped, punctuation as spaces, whitespace collapsed."""
    if not s:
        return ""
    decomposed = unicodedata.normalize("NFKD", s.casefold())
    out = []
    for ch in decomposed:
        cat = unicodedata.category(ch)
        if cat.startswith("M"):  # combining accents
            continue
        out.append(ch if cat[0] in "LN" else " ")
    return " ".join("".join(out).split())


def canonical_id(arxiv_id: str | None, doi: str | None, title: str | None) -> str:
    """The dedup key: "arxiv:<id without version>", else "doi:<doi>", else "title:<normalised title>"."""
    found = arxiv_id_and_version(arxiv_id)
    if found:
        return f"arxiv:{found[0]}"
    norm_doi = normalise_doi(doi)
    if norm_doi:
        return f"doi:{norm_doi}"
    norm_title = normalise_title(title)
    if norm_title:
        return f"title:{norm_title}"
    raise ValueError("a paper needs an arXiv id, a DOI or a title")
