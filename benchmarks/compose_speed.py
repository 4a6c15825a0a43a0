"""Building one digest message, before and after the mailspeed work, timed in the same run.

    python benchmarks/compose_speed.py [--messages 2000] [--baseline 9ca092e]
    python benchmarks/compose_speed.py --writers [--messages 1000]

--writers times the MIME step alone, on the same rendered digests: digest.mail.mime (the hand
writer), EmailMessage as the package composed before it (tests/mime_reference.py: the header
registry and generator, binascii's quoted-printable) and EmailMessage as documented (set_content
with its own quoted-printable), each with as_bytes(policy=SMTP).

What one message costs in DigestPipeline._message: the signed links (LinkBuilder), the render
(DigestRenderer: both templates), compose_message and as_bytes(policy=SMTP). Content is real: the
bundled arXiv cs listing (digest/samples), 10 picks and 3 trending papers per subscriber, each
paper going to many subscribers as on a real day (papers drawn from a window of 200).

"old": digest.links, digest.web.tokens (now digest.signing), digest.mail.render and digest.mail.compose as they were at
the baseline commit, loaded from git into private module names (the bundled templates are the
same). "new": this checkout. Messages alternate old, new, old, ... so load on the machine falls
on both alike; the figures are per message, milliseconds, median of 5 rounds.
"""

from __future__ import annotations

import argparse
import email.policy
import importlib.util
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.domain import DigestContent, Paper, Pick, Subscriber  # noqa: E402
from digest.ingest.sources import parse_feed  # noqa: E402
from digest.mail.compose import compose_message  # noqa: E402
from digest.mail.render import DigestRenderer  # noqa: E402
from digest.signing.links import LinkBuilder  # noqa: E402
from digest.signing.tokens import LinkSigner  # noqa: E402

SAMPLE = ROOT / "digest" / "samples" / "arxiv-cs-2024-11-28.xml"
BASELINE = "9ca092e"  # main before the mailspeed branch
# The old modules, in an order where each one's digest imports are loaded before it.
# Paths at that commit (since moved to digest/signing/).
OLD_MODULES = {"tokens": "digest/web/tokens.py", "render": "digest/mail/render.py",
               "links": "digest/links.py", "compose": "digest/mail/compose.py"}
DAY = date(2024, 11, 28)
NOW = datetime(2024, 11, 28, 6, 0, tzinfo=UTC)
KEYS = ["bench-secret-key-0123456789", "older-key-9876543210"]


def load_baseline(rev: str) -> dict[str, types.ModuleType]:
    """The old modules from git, importing each other instead of this checkout's versions."""
    loaded: dict[str, types.ModuleType] = {}
    for short, path in OLD_MODULES.items():
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True,
                                capture_output=True, text=True).stdout
        for other in loaded:
            source = source.replace(f"from {_dotted(OLD_MODULES[other])} import", f"from _old_{other} import")
        spec = importlib.util.spec_from_loader(f"_old_{short}", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module.__name__] = module
        exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
        loaded[short] = module
    return loaded


def _dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _content(links: Any, sub: Subscriber, picks: list[Pick], trending: list[Pick], delivery_id: int) -> DigestContent:
    """What the pipeline's render() hands the renderer for one digest."""
    return DigestContent(
        trending=tuple(trending),
        trending_links=tuple(links.pick_links(sub.id, p.paper, delivery_id) for p in trending),
        to_addr=sub.email, digest_date=DAY, picks=tuple(picks),
        links=tuple(links.pick_links(sub.id, p.paper, delivery_id) for p in picks),
        unsubscribe_url=links.unsubscribe_url(sub.id), keywords=sub.keywords, candidates=1999,
        quiet=not picks, manage_url=links.manage_url(sub.id), view_url=links.view_url(sub.id, delivery_id))


@dataclass
class Way:
    """One way of building a message: the pipeline's render() and _message() steps."""

    links: Any
    renderer: Any
    compose: Callable[..., Any]

    def message(self, sub: Subscriber, picks: list[Pick], trending: list[Pick], delivery_id: int) -> bytes:
        links = self.links
        rendered = self.renderer.render(_content(links, sub, picks, trending, delivery_id))
        msg = self.compose(rendered, from_addr="digest@example.org", from_name="Paper digest", to_addr=sub.email,
                           message_id=f"<digest-2024-11-28-s{sub.id}-d{delivery_id}@example.org>", date=NOW,
                           unsubscribe_url=links.unsubscribe_url(sub.id))
        return bytes(msg.as_bytes(policy=email.policy.SMTP))


def workload(n: int) -> list[tuple[Subscriber, list[Pick], list[Pick]]]:
    papers: list[Paper] = [replace(p, id=i + 1, upvotes=(i * 37) % 11)
                           for i, p in enumerate(parse_feed(SAMPLE.read_bytes(), source_name="arxiv").papers)]
    hot = sorted(papers, key=lambda p: -(p.upvotes or 0))[:3]
    out = []
    for s in range(n):
        sub = Subscriber(id=1000 + s, email=f"reader{s}@uni-{s % 97}.example.edu",
                         keywords=("diffusion models", "graph neural networks", "reinforcement learning"))
        start = (s * 13) % 190
        picks = [Pick(p, 0.9 - i / 50, ("diffusion models",) if i % 2 else (),
                      "" if i % 3 else "Close to a paper you starred") for i, p in enumerate(papers[start:start + 10])]
        trending = [Pick(p, float(p.upvotes or 0), reason=f"{p.upvotes} upvotes") for p in hot]
        out.append((sub, picks, trending))
    return out


def stdlib_documented(rendered: Any, *, from_addr: str, from_name: str, to_addr: str, message_id: str,
                      date: datetime, unsubscribe_url: str | None) -> Any:
    """The same message through EmailMessage's documented path: set_content, SMTP policy."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = Address(display_name=from_name, addr_spec=from_addr)
    msg["To"] = Address(addr_spec=to_addr)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return msg


def compare_writers(jobs: list[tuple[Subscriber, list[Pick], list[Pick]]], rounds: int) -> None:
    from tests.mime_reference import compose_stdlib

    links = LinkBuilder("https://digest.example.org", LinkSigner(KEYS))
    renderer = DigestRenderer()
    rendered = []
    t0 = time.perf_counter()
    for n, (sub, picks, trending) in enumerate(jobs):
        rendered.append((sub, renderer.render(_content(links, sub, picks, trending, n)), links.unsubscribe_url(sub.id),
                         n))
    before = (time.perf_counter() - t0) / len(jobs) * 1000
    ways: dict[str, Callable[..., Any]] = {"digest.mail.mime": compose_message, "EmailMessage, before": compose_stdlib,
                                           "EmailMessage, set_content": stdlib_documented}
    spent: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        totals = dict.fromkeys(ways, 0.0)
        for i, (sub, digest, unsubscribe, n) in enumerate(rendered):
            order = list(ways.items())
            for name, way in order[i % 3:] + order[:i % 3]:  # rotated, so load falls on all alike
                t = time.perf_counter()
                way(digest, from_addr="digest@example.org", from_name="Paper digest", to_addr=sub.email,
                    message_id=f"<digest-2024-11-28-s{sub.id}-d{n}@example.org>", date=NOW,
                    unsubscribe_url=unsubscribe).as_bytes(policy=email.policy.SMTP)
                totals[name] += time.perf_counter() - t
        for name in ways:
            spent[name].append(totals[name] / len(rendered) * 1000)
    print(f"{len(rendered)} messages, {rounds} rounds; links and render before the MIME step: {before:.3f} ms/message")
    hand = statistics.median(spent["digest.mail.mime"])
    for name, figures in spent.items():
        median = statistics.median(figures)
        print(f"{name:28s} {median:6.3f} ms/message  {median / hand:4.1f}x   "
              f"(rounds: {', '.join(f'{x:.2f}' for x in figures)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000, help="messages per way per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the old code")
    ap.add_argument("--writers", action="store_true", help="time the MIME writers alone (see above)")
    args = ap.parse_args()
    if args.writers:
        compare_writers(workload(args.messages), args.rounds)
        return

    old_mods = load_baseline(args.baseline)
    old = Way(old_mods["links"].LinkBuilder("https://digest.example.org", old_mods["tokens"].LinkSigner(KEYS)),
              old_mods["render"].DigestRenderer(), old_mods["compose"].compose_message)
    new = Way(LinkBuilder("https://digest.example.org", LinkSigner(KEYS)), DigestRenderer(), compose_message)
    jobs = workload(args.messages)

    sizes = [len(w.message(*jobs[0], delivery_id=1)) for w in (old, new)]
    print(f"{len(jobs)} messages per round, {args.rounds} rounds; message size old {sizes[0]:,} B, "
          f"new {sizes[1]:,} B; baseline {args.baseline}")
    spent: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        totals = {"old": 0.0, "new": 0.0}
        for n, job in enumerate(jobs):
            for name, way in (("old", old), ("new", new)) if n % 2 else (("new", new), ("old", old)):
                t0 = time.perf_counter()
                way.message(*job, delivery_id=5000 + n)
                totals[name] += time.perf_counter() - t0
        for name in spent:
            spent[name].append(totals[name] / len(jobs) * 1000)
    before, after = statistics.median(spent["old"]), statistics.median(spent["new"])
    print(f"old  {before:6.3f} ms/message   (rounds: {', '.join(f'{x:.2f}' for x in spent['old'])})")
    print(f"new  {after:6.3f} ms/message   (rounds: {', '.join(f'{x:.2f}' for x in spent['new'])})")
    print(f"speed-up {before / after:.1f}x")


if __name__ == "__main__":
    main()
