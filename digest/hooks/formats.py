"""A digest as each chat service wants it: Slack blocks, Discord embeds, a Matrix m.room.message,
or the documented generic JSON. The picks and signed links are the email's (digest.pipeline.messages).

Paper text is untrusted: it is made one line and bounded (digest.text), escaped for each markup
(Slack mrkdwn, Discord markdown, HTML for Matrix, which nh3 then cleans as well), links kept only
when http(s), and no message can mention @everyone or @here. Each format keeps within its service's
documented limits (Slack: 50 blocks, 3000 characters a section; Discord: 10 embeds, 6000 characters
in all; Matrix: a body the client-server API accepts).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import nh3

from digest.domain import DigestContent, Pick, PickLinks
from digest.mail.render import make_subject
from digest.text import author_line, bound, clean_text, safe_url

JSON_VERSION = 1
MAX_AUTHORS = 3
SLACK_MAX_BLOCKS = 50
DISCORD_MAX_EMBEDS = 10
DISCORD_MAX_TOTAL = 6000
_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>\[\]()#@<:-])")


def _view(p: Pick, links: PickLinks) -> dict[str, Any]:
    """One pick's shown text and links, cleaned once for every format."""
    return {
        "title": clean_text(p.paper.title, 300) or "(untitled)",
        "authors": author_line(p.paper.authors, MAX_AUTHORS, 300),
        "reason": clean_text(p.reason, 300),
        "url": safe_url(links.open_url) or safe_url(p.paper.url),
        "pdf_url": safe_url(links.pdf_url),
        "star_url": safe_url(links.star_url),
        "dislike_url": safe_url(links.dislike_url),
        "arxiv_id": p.paper.arxiv_id,
        "matched": [clean_text(m, 100) for m in p.matched],
    }


def _picks(content: DigestContent) -> list[dict[str, Any]]:
    return [_view(p, links) for p, links in zip(content.picks, content.links, strict=True)]


# --- generic JSON ------------------------------------------------------------------------------


def json_body(content: DigestContent) -> dict[str, Any]:
    """The generic webhook's body (README, "Chat channels"): version, date, subject, view_url,
    manage_url, picks and trending, each pick with title, url, pdf_url, authors, reason, matched,
    arxiv_id, star_url and dislike_url."""
    trending = [_view(p, links) for p, links in zip(content.trending, content.trending_links, strict=True)]
    return {
        "version": JSON_VERSION,
        "date": content.digest_date.isoformat(),
        "subject": make_subject(content),
        "view_url": safe_url(content.view_url),
        "manage_url": safe_url(content.manage_url),
        "picks": _picks(content),
        "trending": trending,
    }


# --- Slack -------------------------------------------------------------------------------------


def _slack_text(text: str) -> str:
    return "".join(_SLACK_ESCAPES.get(c, c) for c in text)


def _slack_link(url: str, label: str) -> str:
    # "|" and ">" end a Slack link: percent-encoded in the URL (safe_url already refused "<" and ">").
    return f"<{url.replace('|', '%7C')}|{_slack_text(label)}>"


def slack_body(content: DigestContent) -> dict[str, Any]:
    subject = make_subject(content)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": bound(subject, 150)}}]
    picks = _picks(content)
    room = (SLACK_MAX_BLOCKS - 3) // 3  # three blocks a pick, a header and a footer
    for i, v in enumerate(picks[:room], 1):
        title = _slack_link(v["url"], v["title"]) if v["url"] else _slack_text(v["title"])
        text = f"*{i}. {title}*" + (f"\n{_slack_text(v['reason'])}" if v["reason"] else "")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": bound(text, 3000)}})
        if v["authors"]:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                             "text": bound(_slack_text(v["authors"]), 3000)}]})
        buttons = [(label, v[key]) for label, key in (("Star", "star_url"), ("Less like this", "dislike_url"),
                                                       ("PDF", "pdf_url")) if v[key]]
        if buttons:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url,
                 "action_id": f"pick{i}-{n}"} for n, (label, url) in enumerate(buttons)]})
    footer = _footer_links(content, len(picks) - room, _slack_link)
    if footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": bound(footer, 3000)}]})
    return {"text": subject, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _footer_links(content: DigestContent, left_out: int, link: Callable[[str, str], str]) -> str:
    parts = []
    if left_out > 0:
        parts.append(f"{left_out} more in the browser")
    view, manage = safe_url(content.view_url), safe_url(content.manage_url)
    if view:
        parts.append(link(view, "View in browser"))
    if manage:
        parts.append(link(manage, "Manage"))
    return " · ".join(parts)


# --- Discord -----------------------------------------------------------------------------------


def _discord_text(text: str) -> str:
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def _discord_link(url: str, label: str) -> str:
    return f"[{_discord_text(label)}](<{url.replace(')', '%29').replace('>', '%3E')}>)"


def discord_body(content: DigestContent) -> dict[str, Any]:
    """One embed a pick, ten at most (the last says how many more, with the browser link); all the
    text within Discord's 6000 characters. allowed_mentions: a title never pings anyone."""
    picks = _picks(content)
    subject = make_subject(content)
    room = DISCORD_MAX_EMBEDS if len(picks) <= DISCORD_MAX_EMBEDS else DISCORD_MAX_EMBEDS - 1
    budget = DISCORD_MAX_TOTAL - len(subject) - 200  # the footer embed's room
    embeds: list[dict[str, Any]] = []
    for i, v in enumerate(picks[:room], 1):
        links = [_discord_link(v[k], label) for label, k in (("Star", "star_url"), ("Less like this", "dislike_url"),
                                                             ("PDF", "pdf_url")) if v[k]]
        lines = [_discord_text(v["reason"])] if v["reason"] else []
        lines.append(" · ".join(links))
        embed: dict[str, Any] = {"title": bound(f"{i}. {v['title']}", 256),
                                 "description": bound("\n".join(lines), 4096)}
        if v["url"]:
            embed["url"] = v["url"]
        if v["authors"]:
            embed["footer"] = {"text": bound(v["authors"], 2048)}
        size = len(embed["title"]) + len(embed["description"]) + len(embed.get("footer", {}).get("text", ""))
        if size > budget:
            break
        budget -= size
        embeds.append(embed)
    footer = _footer_links(content, len(picks) - len(embeds), _discord_link)
    if footer:
        embeds.append({"description": bound(footer, 190)})
    return {"content": bound(subject, 2000), "embeds": embeds, "allowed_mentions": {"parse": []}}


# --- Matrix ------------------------------------------------------------------------------------

_MATRIX_TAGS = {"h4", "ol", "li", "a", "strong", "em", "br", "p", "small"}


def _a(url: str | None, label: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>' if url else html.escape(label)


def matrix_body(content: DigestContent) -> dict[str, Any]:
    """m.room.message, m.notice (a bot's message: other bots do not answer it), with a plain body
    and an HTML formatted_body that nh3 cleans to a few tags and http(s) links."""
    subject = make_subject(content)
    picks = _picks(content)
    text, items = [subject], []
    for i, v in enumerate(picks, 1):
        text.append(f"{i}. {v['title']}" + (f" <{v['url']}>" if v["url"] else ""))
        if v["reason"]:
            text.append(f"   {v['reason']}")
        actions = " · ".join(_a(v[k], label) for label, k in (("Star", "star_url"), ("Less like this", "dislike_url"),
                                                               ("PDF", "pdf_url")) if v[k])
        items.append(f"<li><strong>{_a(v['url'], v['title'])}</strong>"
                     + (f"<br><em>{html.escape(v['reason'])}</em>" if v["reason"] else "")
                     + (f"<br><small>{html.escape(v['authors'])}</small>" if v["authors"] else "")
                     + (f"<br>{actions}" if actions else "") + "</li>")
    footer = _footer_links(content, 0, lambda url, label: _a(url, label))
    view = safe_url(content.view_url)
    if view:
        text.append(f"View in browser: {view}")
    formatted = f"<h4>{html.escape(subject)}</h4><ol>{''.join(items)}</ol>" + (f"<p>{footer}</p>" if footer else "")
    clean = nh3.clean(formatted, tags=_MATRIX_TAGS, attributes={"a": {"href"}}, url_schemes={"http", "https"},
                      link_rel=None)
    return {"msgtype": "m.notice", "body": "\n".join(text), "format": "org.matrix.custom.html",
            "formatted_body": clean}


FORMATS: dict[str, Callable[[DigestContent], dict[str, Any]]] = {
    "slack": slack_body, "discord": discord_body, "matrix": matrix_body, "json": json_body,
}
