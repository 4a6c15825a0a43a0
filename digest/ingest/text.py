"""Feed text that may hold HTML to plain text (the rules for text and links are digest.text's)."""

from __future__ import annotations

import html
import re

import nh3

from digest.text import clean_text

_HTML_TAGS = (
    "a|abbr|address|article|aside|audio|b|base|bdi|bdo|big|blockquote|body|br|button|canvas|caption|"
    "center|cite|code|col|colgroup|dd|del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|"
    "figure|font|footer|form|frame|frameset|h1|h2|h3|h4|h5|h6|head|header|hr|html|i|iframe|img|input|ins|"
    "kbd|label|legend|li|link|main|mark|math|meta|mi|mn|mo|mrow|msub|msup|nav|noscript|object|ol|optgroup|"
    "option|p|param|picture|pre|q|s|samp|script|section|select|small|source|span|strike|strong|style|sub|"
    "summary|sup|svg|table|tbody|td|template|textarea|tfoot|th|thead|time|title|tr|track|tt|u|ul|var|"
    "video|wbr"
)
# A "<" that does not open a known HTML tag is text: arXiv abstracts are full of "$x<y$", which an HTML
# parser would read as a <y ...> tag and swallow.
_NOT_A_TAG = re.compile(r"<(?!!|/?(?:" + _HTML_TAGS + r")[\s/>])", re.IGNORECASE)
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|blockquote|section|article|pre|hr)\b[^>]*>", re.I)


def html_to_text(raw: str) -> str:
    """HTML (or text that may hold HTML) to plain text; block elements become line breaks."""
    if "<" not in raw and "&" not in raw:
        return raw
    marked = _BLOCK_TAG.sub(lambda m: "\n" + m.group(0), _NOT_A_TAG.sub("&lt;", raw))
    # tags=set(): keep no element at all; script/style lose their content too (nh3's default).
    return html.unescape(nh3.clean(marked, tags=set()))


def feed_text(value: object, limit: int) -> str:
    """Untrusted feed text or HTML to one line of plain text of at most limit characters."""
    if not isinstance(value, str) or not value:
        return ""
    return clean_text(html_to_text(value[: limit * 8 + 1_000]), limit)
