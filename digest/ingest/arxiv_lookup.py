"""Looking papers up by arXiv id through the arXiv API (its id_list query), for a warm start from a
list of ids on a fresh install.

Through the same safe fetcher as the feeds (digest.ingest.fetch) and the same parser as the arXiv API
source (digest.ingest.sources); at most 100 ids a request, and requests paced 3 s apart, as the arXiv
API's terms of use ask. The clock and the sleep are passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from digest.config import FetchSettings
from digest.domain import Paper
from digest.errors import FeedError
from digest.ingest.fetch import fetch
from digest.ingest.sources import parse_feed

log = logging.getLogger(__name__)

BATCH = 100  # ids per request
PACE_S = 3.0  # between two requests


@dataclass
class Lookup:
    papers: list[Paper] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # arXiv id -> why it was not found


def lookup_ids(ids: Sequence[str], settings: FetchSettings, *, api_url: str,
               sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
               pace_s: float = PACE_S) -> Lookup:
    """The papers of these arXiv ids (without version), and the ids that could not be had, with why."""
    out = Lookup()
    wanted = list(dict.fromkeys(ids))
    last: float | None = None
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start:start + BATCH]
        if last is not None and (wait := last + pace_s - clock()) > 0:
            sleep(wait)
        last = clock()
        url = f"{api_url}?id_list={quote(','.join(batch), safe=',/')}&max_results={len(batch)}"
        try:
            fetched = fetch(url, settings=settings)
            if fetched.content is None:
                raise FeedError(f"{api_url}: no content")
            parsed = parse_feed(fetched.content, kind="arxiv_api", source_name="arXiv API")
        except FeedError as exc:
            log.info("arXiv API lookup of %d id(s) failed: %s", len(batch), exc)
            out.missing.update({i: f"could not be fetched: {exc}" for i in batch})
            continue
        found = {p.arxiv_id: p for p in parsed.papers if p.arxiv_id}
        for i in batch:
            if i in found:
                out.papers.append(found[i])
            else:
                out.missing[i] = "not found on arXiv"
        last = clock()  # paced from the end of a request: a slow answer is no reason to ask sooner
    return out
