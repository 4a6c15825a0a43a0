"""LaTeX markup in arXiv titles, abstracts and author names to readable text: `Li\\`o` -> `Liò`,
`G\\"unther` -> `Günther`, `Pb$_{0.64}$` -> `Pb0.64`, `$\\alpha$` -> `α`.

pylatexenc does the conversion. Around it: text without markup is returned as it is; text the converter
would mangle (a bare % starts a comment, & is a table column, ~ a tie) is escaped first; URLs are left
alone, and so are those of \\url{URL} (the URL) and \\href{URL}{text} ("text (URL)"), which pylatexenc
would turn into "<URL>" or fail on; input is bounded; and whatever goes wrong (malformed or hostile
markup, a converter error, an output that lost the words) gives the text back unchanged. It never raises.
A command pylatexenc does not know is not dropped with the word it stands for: the style files'
shorthands read as what they abbreviate (\\eg: "e.g."), the authors' command for their own system
("\\name") as the title's lead ("GNN 101"), and any other as written.
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
# The shorthands of the CVPR and ICCV style files, which authors carry into their abstracts
# ("add-ons (\eg, IP-Adapter)"), and the AAS journals' solar symbol (M_\sun): pylatexenc does not
# know them and dropped them. \deg is the degree sign in text ("360{\deg} cameras") and the degree
# of a polynomial in math.
_SHORTHANDS = {"eg": "e.g.", "ie": "i.e.", "etal": "et al.", "wrt": "w.r.t.", "etc": "etc.", "vs": "vs.",
               "cf": "cf.", "deg": "°", "sun": "⊙"}
# Old font and size switches ({\it Phys. Rev. E}, {\bf 105}): how text looks, not what it says.
_SWITCHES = frozenset((
    "it", "bf", "em", "sc", "rm", "sl", "sf", "tt", "up", "md", "cal", "bfseries", "itshape", "scshape", "slshape",
    "upshape", "mdseries", "rmfamily", "sffamily", "ttfamily", "normalfont", "tiny", "scriptsize", "footnotesize",
    "small", "normalsize", "large", "Large", "LARGE", "huge", "Huge"))
# A command of the authors' own that stands for the name of what the paper presents ("we present
# \name, an educational visualization tool" under the title "GNN 101: Visual Learning of ...").
_SELF_NAMES = frozenset((
    "name", "method", "ours", "ourmethod", "model", "modelname", "methodname", "system", "sys", "sysname", "approach",
    "tool", "toolname", "framework", "dataset", "benchmark", "algname"))
_SELF_NAME = re.compile(r"\\(" + "|".join(sorted(_SELF_NAMES)) + r")(?![A-Za-z])")
# The title's lead before a colon: the paper's own name for itself, when it is short.
_TITLE_LEAD = re.compile(r"^\s*([^:]{1,40}?)\s*:\s*\S")


@cache
def _converter() -> Any:
    # Imported on first use: most commands never convert any text.
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    # pylatexenc 2.11 drops \texttt{...} with its text ("\texttt{github.com/x/y}" comes out empty), and
    # so \textup, \textmd, \textsf and \mbox ("equal for a \textup{Type-II BCG}." read "equal for a ."),
    # and writes a \url to_text did not take as a link ("\url{}") in angle brackets.
    context = get_default_latex_context_db()
    kept = [MacroTextSpec(name, discard=False) for name in ("texttt", "textup", "textmd", "textsf", "mbox")]
    context.add_context_category("digest", prepend=True, macros=[*kept, MacroTextSpec("url", simplify_repl="%s")])
    # A command pylatexenc does not know was dropped, and with it a word of the sentence ("deployed
    # in production since \DuMPOnline, which" read "since , which"). In text it is now shown as
    # written, unless it is a shorthand, a font switch or takes arguments (whose text is kept); in
    # math it is still dropped (\Hcal, \R: a formula's markup).
    context.set_unknown_macro_spec(MacroTextSpec("", simplify_repl=_unknown_command))
    return LatexNodes2Text(math_mode="text", strict_latex_spaces=False, latex_context=context)


def _unknown_command(node: Any, **_: Any) -> str:
    name = str(node.macroname)
    in_math = bool(getattr(node.parsing_state, "in_math_mode", False))
    # LaTeX swallows the space after a command's name; where the command stands for a word, keep it.
    space = str(getattr(node, "macro_post_space", "") or "")
    if name == "deg":
        return ("deg" if in_math else "°") + space
    if name in _SHORTHANDS:
        return _SHORTHANDS[name] + space
    if in_math or name in _SWITCHES or _takes_arguments(node):
        return ""
    return "\\" + name + space


def _takes_arguments(node: Any) -> bool:
    r"""Whether the command has arguments (\citealt{key}, \ion{N}{ii}): the parser read them, or
    a brace or bracket follows it."""
    parsed = getattr(node, "nodeargd", None)
    if parsed is not None and any(a is not None for a in getattr(parsed, "argnlist", None) or ()):
        return True
    source, start = getattr(node.parsing_state, "s", None), getattr(node, "pos", None)
    if not isinstance(source, str) or start is None:
        return True  # cannot tell: drop it, as pylatexenc does
    return source[start + int(getattr(node, "len", 0)):].lstrip()[:1] in ("{", "[")


def has_markup(text: str) -> bool:
    return bool(_MARKUP.search(text))


def to_text(text: str, own_name: str | None = None) -> str:
    """The text with its LaTeX markup turned into plain Unicode; the text itself when it has none, or
    when it cannot be converted without loss. own_name: what the paper calls what it presents (its
    title's lead), for the authors' own command that stands for it."""
    if not text or not has_markup(text) or len(text) > MAX_CHARS or _too_deep(text):
        return text
    if own_name:
        text = _named(text, own_name)
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
    title = to_text(paper.title)
    abstract = to_text(paper.abstract, own_name=title_name(title))
    authors = tuple(to_text(a) for a in paper.authors)
    return replace(paper, title=title, abstract=abstract, authors=authors,
                   title_latex=paper.title if title != paper.title else None,
                   abstract_latex=paper.abstract if abstract != paper.abstract else None,
                   authors_latex=paper.authors if authors != paper.authors else None)


def title_name(title: str) -> str | None:
    """The title's lead before a colon, when it is a name (at most four words): "GNN 101" of "GNN 101:
    Visual Learning of Graph Neural Networks in Your Web Browser"."""
    lead = _TITLE_LEAD.match(title)
    if lead is None or len(lead.group(1).split()) > 4 or "$" in lead.group(1) or "\\" in lead.group(1):
        return None
    return lead.group(1)


def _named(text: str, name: str) -> str:
    """The authors' command for their own system's name replaced by that name, outside math."""
    parts = re.split(f"({_MATH.pattern})", text)  # the math kept, between the text's parts
    return "".join(p if p.startswith("$") else _SELF_NAME.sub(lambda _: name, p) for p in parts)


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
