"""LaTeX markup in arXiv titles, abstracts and author names to readable text: `Li\\`o` -> `Liò`,
`G\\"unther` -> `Günther`, `Pb$_{0.64}$` -> `Pb0.64`, `$\\alpha$` -> `α`.

pylatexenc does the conversion. Around it: text without markup is returned as it is; text the converter
would mangle (a bare % starts a comment, & is a table column, ~ a tie) is escaped first; URLs are left
alone, and so are those of \\url{URL} (the URL) and \\href{URL}{text} ("text (URL)"), which pylatexenc
would turn into "<URL>" or fail on; input is bounded; and whatever goes wrong (malformed or hostile
markup, a converter error, an output that lost the words) gives the text back unchanged. It never raises.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from functools import cache
from typing import Any

from digest.domain import Paper

log = logging.getLogger(__name__)

MAX_CHARS = 20_000  # longer text is left as it is: an abstract is bounded to 10,000 characters
MAX_DEPTH = 40  # braces nested deeper than this are not markup a title or an abstract needs
# Markup worth converting: a command (\alpha, \"u, \%), inline math, or braces.
_MARKUP = re.compile(r"\\[A-Za-z]+|\\[^A-Za-z\s]|\$[^$]+\$|[{}]")
# A link is not markup: %20 is no comment, ~ no tie. \url and \href are matched before a bare URL so
# that the URL inside their braces is not taken with the closing brace. Their text may hold markup
# ("{\it et al}. \textbf{24}"): two levels of braces.
_BRACED = r"(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*"
_LINK = re.compile(r"\\url\s*\{\s*(?P<url>[^{}\s]+)\s*\}"
                   r"|\\href\s*\{\s*(?P<href>[^{}\s]+)\s*\}\s*\{(?P<text>" + _BRACED + r")\}"
                   r"|https?://[^\s{}]+", re.IGNORECASE)
_INNER_URL = re.compile(r"\\url\s*\{\s*([^{}\s]+)\s*\}")
# Inside \url and \href a URL's %, #, &, _ and ~ may be written escaped.
_URL_ESCAPE = re.compile(r"\\([%#&_~$])")
_MATH = re.compile(r"\$[^$]*\$")
# A subscript of digits in math is part of a formula (Pb$_{0.64}$, H$_2$O): no "_" in the text.
_NUMERIC_SUB = re.compile(r"_\{\s*([0-9][0-9.,]*)\s*\}|_([0-9])")
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&#])")
# A ~ after a word is a tie (Fig.~3): a space. A ~ on its own (~5 K, about 5 K) is the character.
_LONE_TILDE = re.compile(r"(?:(?<=\s)|^)~")
_COMMAND_NAME = re.compile(r"\\[A-Za-z]+")


@cache
def _converter() -> Any:
    # Imported on first use: most commands never convert any text.
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    # pylatexenc 2.11 drops \texttt{...} with its text ("\texttt{github.com/x/y}" comes out empty), and
    # writes a \url to_text did not take as a link ("\url{}") in angle brackets.
    context = get_default_latex_context_db()
    context.add_context_category("digest", prepend=True, macros=[
        MacroTextSpec("texttt", discard=False), MacroTextSpec("url", simplify_repl="%s")])
    return LatexNodes2Text(math_mode="text", strict_latex_spaces=False, latex_context=context)


def has_markup(text: str) -> bool:
    return bool(_MARKUP.search(text))


def to_text(text: str) -> str:
    """The text with its LaTeX markup turned into plain Unicode; the text itself when it has none, or
    when it cannot be converted without loss."""
    if not text or not has_markup(text) or len(text) > MAX_CHARS or _too_deep(text):
        return text
    try:
        pieces = []
        source = []  # what the text says, to check the output kept its words: a link's URL once
        last = 0
        for link in _LINK.finditer(text):
            pieces.append(_convert(text[last:link.start()]))
            readable, said = _link_text(link)
            pieces.append(readable)
            source += [text[last:link.start()], said]
            last = link.end()
        pieces.append(_convert(text[last:]))
        source.append(text[last:])
        out = " ".join("".join(pieces).split())
    except Exception as exc:  # noqa: BLE001 - malformed markup must never stop an ingest
        log.debug("LaTeX left as it is (%s: %s): %.80r", type(exc).__name__, exc, text)
        return text
    return out if _kept_the_words(" ".join(source), out) else text


def readable_paper(paper: Paper) -> Paper:
    """The paper with readable title, abstract and authors, and their LaTeX source kept beside them
    where it differed. For text that is LaTeX source: arXiv listings, BibTeX."""
    title, abstract = to_text(paper.title), to_text(paper.abstract)
    authors = tuple(to_text(a) for a in paper.authors)
    return replace(paper, title=title, abstract=abstract, authors=authors,
                   title_latex=paper.title if title != paper.title else None,
                   abstract_latex=paper.abstract if abstract != paper.abstract else None,
                   authors_latex=paper.authors if authors != paper.authors else None)


def _convert(part: str) -> str:
    if not part:
        return part
    part = _MATH.sub(lambda m: _NUMERIC_SUB.sub(lambda s: s.group(1) or s.group(2), m.group(0)), part)
    part = _BARE_SPECIAL.sub(r"\\\1", part)
    part = _LONE_TILDE.sub(r"\\textasciitilde{}", part)
    converted: str = _converter().latex_to_text(part)
    # Keep the spaces at the edges: the pieces around a URL are joined as they were. A space the
    # converter kept counts too: "\texttt{https://x.org} and" reads "https://x.org and".
    lead = " " if part[:1].isspace() or converted[:1].isspace() else ""
    trail = " " if part[-1:].isspace() or converted[-1:].isspace() else ""
    return lead + converted.strip() + trail


def _link_text(link: re.Match[str]) -> tuple[str, str]:
    """A link as it reads: the URL; for \\href, its text and the URL after it, or the URL alone when
    the text is the URL itself ("\\href{https://github.com/x/y}{https://github.com/x/y}"). And the
    source it stands for, with that URL once."""
    if link.group("url") is not None:
        return _URL_ESCAPE.sub(r"\1", link.group("url")), link.group(0)
    if link.group("href") is None:
        return link.group(0), link.group(0)
    url = _URL_ESCAPE.sub(r"\1", link.group("href"))
    # "\href{URL}{\url{URL}}" is seen too: the inner \url is its URL, not pylatexenc's "<URL>".
    text = _convert(_INNER_URL.sub(lambda m: _URL_ESCAPE.sub(r"\1", m.group(1)), link.group("text"))).strip()
    if not text or _bare(text) == _bare(url):
        return url, url
    return f"{text} ({url})", link.group(0)


def _bare(url: str) -> str:
    return url.lower().removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")


def _too_deep(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch == "}":
            depth = max(0, depth - 1)
    return False


def _kept_the_words(source: str, out: str) -> bool:
    """False when the conversion dropped letters or digits of the text itself (an unknown environment
    swallowed, a stray \\end{...}): then the source is the better text to show."""
    before = sum(ch.isalnum() for ch in _COMMAND_NAME.sub("", source))
    after = sum(ch.isalnum() for ch in out)
    return after >= 0.9 * before and (bool(out) or not source.strip())
