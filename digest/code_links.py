"""Code and data links found in a paper's abstract and comment: the "Code" / "Data" buttons.

Authors announce their repository or dataset in the abstract ("Code is available at
https://github.com/..."), or in the arXiv comment field. Found at render time from text already
stored (a regular expression over a few hundred characters: microseconds, cached), so a change to the
rules applies to every stored paper at once, with no migration.

Care for how URLs look in abstracts: a sentence's full stop or a closing bracket after the URL is not
part of it; a URL that arXiv's line wrapping split after a "/" or "-" is joined again; LaTeX's
\\url{...} and \\href{...}{...} leave the bare URL; "github.com/x/y" without a scheme counts. A link
is kept only if it is a plain http(s) URL by digest.text.safe_url's rules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.text import safe_url

URL_MAX = 300  # longer is not a repository link
TEXT_MAX = 20_000  # bound the text searched: abstracts are a few thousand characters

_LATEX = re.compile(r"\\(?:url|href)\{([^{}\s]{1,400})\}(?:\{[^{}]*\})?")
# A URL wrapped after "/", "-" or "_" continues on the next "word" (arXiv's listing folds lines); not
# after ".", which ends sentences far more often than it splits a URL.
_WRAPPED = re.compile(r"(https?://\S*[/\-_])\s+(?!(?:and|or|for|the|to|with|in|on|at|is|are|as|of)\b)"
                      r"(?=[\w\-./~%#?=&]+(?:[\s.,;)]|$))", re.I)
_URL = re.compile(r"(?:https?://|(?<![\w./@-])(?=(?:www\.)?(?:github\.com|gitlab\.com|huggingface\.co|"
                  r"zenodo\.org|bitbucket\.org|codeberg\.org|figshare\.com|osf\.io)/))"
                  r"[^\s<>\"'`{}|\\^]+", re.I)
_TRAILING = ".,;:!?'\"*"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_PROJECT_CUE = re.compile(r"(?:project|web) ?(?:page|site)|homepage|website|demo|videos? (?:are|is) "
                          r"available|more (?:results|details|visuali[sz]ations)", re.I)

# What the words just before a link on another site say it is: "code and data are at ..." is code
# (the site of a project holds both), "our dataset is at ..." data.
_CODE_CUE = re.compile(r"\b(?:code|codes|implementation|source|repository|software|toolkit|library)\b", re.I)
_DATA_CUE = re.compile(r"\b(?:data|dataset|datasets|corpus|corpora)\b", re.I)

_CODE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "sourceforge.net", "gitee.com",
               "anonymous.4open.science")
_DATA_HOSTS = ("zenodo.org", "figshare.com", "osf.io", "dataverse.harvard.edu", "data.mendeley.com")


@dataclass(frozen=True)
class PaperLinks:
    code: str | None = None  # a repository, a model or a demo (Hugging Face spaces), or a project page
    data: str | None = None  # a dataset


def _trim(url: str) -> str:
    """Without the punctuation of the sentence around it: a trailing full stop, comma or quote, and
    a closing bracket it does not open itself ("(see https://x.org/a_(b))." keeps "_(b)")."""
    while url:
        last = url[-1]
        if last in _TRAILING or last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last]):
            url = url[:-1]
        else:
            break
    return url


def _urls(text: str) -> list[tuple[str, str]]:
    """Each URL in text, with the words just before it."""
    text = _LATEX.sub(lambda m: " " + m.group(1) + " ", text[:TEXT_MAX])
    text = _WRAPPED.sub(r"\1", text)
    found = []
    for m in _URL.finditer(text):
        raw = _trim(m.group(0))
        if not raw.lower().startswith(("http://", "https://")):
            raw = "https://" + raw
        url = safe_url(raw) if len(raw) <= URL_MAX else None
        if url is not None and urlsplit(url).username is None:  # no "user:password@" in a button
            found.append((url, text[max(0, m.start() - 80):m.start()]))
    return found


def _kind(url: str, before: str) -> str | None:
    """"code", "data", "project" or None (some other link: a paper, a DOI, a tool's site)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = [p for p in parts.path.split("/") if p]
    if host.endswith(_DATA_HOSTS) or (host == "kaggle.com" and path[:1] == ["datasets"]):
        return "data"
    if host == "doi.org" and "zenodo" in parts.path.lower():
        return "data"
    if host == "huggingface.co":
        if path[:1] == ["datasets"] and len(path) >= 2:
            return "data"
        if path[:1] == ["spaces"] and len(path) >= 2 or len(path) >= 2 and path[0] not in ("papers", "docs", "blog"):
            return "code"  # a demo, or a model's weights
        return None
    if host.endswith(_CODE_HOSTS):
        return "code" if path else None
    if host in ("doi.org", "dx.doi.org", "arxiv.org") or host.endswith(".doi.org"):
        return None  # a paper
    if _CODE_CUE.search(before):
        return "code"
    if _DATA_CUE.search(before):
        return "data"
    if host.endswith(".github.io") or _PROJECT_CUE.search(before):
        return "project"
    return None


@functools.lru_cache(maxsize=4096)
def paper_links(abstract: str, comment: str = "") -> PaperLinks:
    """The first code link and the first data link in the abstract, then the comment; a project page
    stands for the code where no repository is named."""
    code = data = project = None
    for text in (abstract, comment):
        for url, before in _urls(text):
            kind = _kind(url, before)
            if kind == "code" and code is None:
                code = url
            elif kind == "data" and data is None:
                data = url
            elif kind == "project" and project is None:
                project = url
    return PaperLinks(code=code or project, data=data)
