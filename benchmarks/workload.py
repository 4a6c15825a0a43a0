"""A realistic day for the benchmark, built in a real database.

- Past papers: the 16,980 CiteULike-a papers (real titles, abstracts where known), stored as seen a
  month ago, so they are history, never candidates.
- New papers: the day's real arXiv listings from ../shared/data/feeds (RSS, multi-archive, 1,504
  entries) and the bundled cs listing, parsed from their bytes by the project's parser; topped up
  with CiteULike papers held out of the past set when M is larger.
- Subscribers: real CiteULike users, cycled when N is larger than their number: keywords are the
  user's five most used topical tags, and up to 20 papers of their library are imported as stars.
- Models: trained once per distinct user before the timed run (as yesterday's run would have), and
  copied to that user's clones; then a share of subscribers gets a fresh click, so the timed run
  retrains exactly those, as after a day of feedback.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from digest.domain import Paper, Subscriber
from digest.evaluate.data import load_citeulike, tag_popularity, user_keywords
from digest.identity import normalise_title
from digest.ingest.sources import parse_feed
from digest.rank import features
from digest.store import learning
from digest.store import papers as paper_store
from digest.store.schema import events, papers, subscriber_models, subscribers
from digest.training import terms as term_store
from digest.training.models import load_states

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FEEDS = [
    (SHARED / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml", "arxiv_rss"),
    (Path(__file__).resolve().parents[1] / "digest" / "samples" / "arxiv-cs-2024-11-28.xml", "arxiv_rss"),
    (SHARED / "feeds" / "arxiv_api_atom_2026_search-testing_100results.xml", "arxiv_api"),
]
MAX_STARS = 20


@dataclass
class Workload:
    digest_day: datetime
    n_subscribers: int
    n_new_papers: int
    n_past_papers: int
    n_events: int
    n_distinct_users: int
    n_stale: int  # subscribers whose model the timed run retrains
    parse_s: float  # parsing the real feed bytes into papers
    store_s: float  # storing the day's papers (dedup, document frequencies)
    feed_entries: int
    setup_s: float


def parse_listings() -> tuple[list[Paper], float, int]:
    """The day's real listings, parsed from bytes; returns papers, seconds spent parsing, entries."""
    blobs = [(path.read_bytes(), kind, path.stem) for path, kind in FEEDS if path.exists()]
    t0 = time.perf_counter()
    parsed = [parse_feed(data, kind=kind, source_name=name) for data, kind, name in blobs]
    elapsed = time.perf_counter() - t0
    seen: set[str] = set()
    out: list[Paper] = []
    for feed in parsed:
        for p in feed.papers:
            if p.canonical_id not in seen and p.announce_type not in ("replace", "replace-cross"):
                seen.add(p.canonical_id)
                out.append(p)
    return out, elapsed, sum(len(f.papers) for f in parsed)


def build(engine: Engine, n_subscribers: int, n_papers: int, *, seed: int = 1, stale_share: float = 0.1,
          day: datetime = datetime(2026, 11, 30)) -> Workload:
    t_setup = time.perf_counter()
    rng = random.Random(seed)
    data = load_citeulike()
    corpus = data.corpus
    listing, parse_s, entries = parse_listings()
    new = listing[:n_papers]
    # Held-out CiteULike papers top the day up when M is larger than the real listings.
    order = list(range(len(corpus)))
    rng.shuffle(order)
    held = order[: max(0, n_papers - len(new))]
    held_set = set(held)
    new += [Paper(canonical_id=f"citeulike:{i}", title=corpus.titles[i], abstract=corpus.abstracts[i],
                  url=f"https://www.citeulike.org/article/{corpus.ids[i]}", source="citeulike") for i in held]
    past_at = day - timedelta(days=30)
    with engine.begin() as conn:
        # Past papers in bulk: the per-paper dedup of upsert_papers is ingest's job, not setup's.
        rows = [{"canonical_id": f"citeulike-past:{i}", "title_key": normalise_title(corpus.titles[i])[:600] or "-",
                 "title": corpus.titles[i], "abstract": corpus.abstracts[i], "authors": [], "categories": [],
                 "url": f"https://www.citeulike.org/article/{corpus.ids[i]}", "source": "citeulike",
                 "first_seen_at": past_at, "updated_at": past_at}
                for i in range(len(corpus)) if i not in held_set]
        for start in range(0, len(rows), 2000):
            conn.execute(insert(papers), rows[start:start + 2000])
        past_id = {int(cid.rsplit(":", 1)[1]): pid for pid, cid in conn.execute(
            select(papers.c.id, papers.c.canonical_id).where(papers.c.canonical_id.like("citeulike-past:%")))}
        past = [paper_store.row_to_paper(r) for r in conn.execute(select(papers))]
        term_store.add_papers(conn, past, past_at)  # as ingest stored them, day by day
    # The day's papers are stored as ingest stores them: dedup, then term counts and document frequencies.
    t_store = time.perf_counter()
    with engine.begin() as conn:
        _, fresh = paper_store.upsert_papers(conn, new, day)
        term_store.add_papers(conn, fresh, day)
    store_s = time.perf_counter() - t_store

    # Real users with a library worth learning from, cycled to N subscribers.
    users = sorted((u for u, likes in data.likes.items() if len(likes) >= 5), key=lambda u: int(u))
    rng.shuffle(users)
    popularity = tag_popularity(data)
    profiles: dict[str, tuple[tuple[str, ...], list[int]]] = {}
    sub_rows, user_of = [], []
    for n in range(n_subscribers):
        user = users[n % len(users)]
        if user not in profiles:
            likes = [i for i in data.likes[user] if i in past_id]
            stars = rng.sample(likes, min(MAX_STARS, len(likes)))
            kws = user_keywords(data, user, stars, popularity=popularity) or ("machine learning",)
            profiles[user] = (kws, [past_id[i] for i in stars])
        sub_rows.append({"email": f"user{n}@bench.example.org", "keywords": list(profiles[user][0]), "exclude": [],
                         "active": True, "created_at": past_at, "updated_at": past_at})
        user_of.append(user)
    with engine.begin() as conn:
        for start in range(0, len(sub_rows), 5000):
            conn.execute(insert(subscribers), sub_rows[start:start + 5000])
        sub_ids = list(conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalars())
        ev_rows = [{"subscriber_id": sid, "paper_id": pid, "kind": "star", "origin": "import", "flagged": False,
                    "created_at": past_at} for sid, user in zip(sub_ids, user_of, strict=True)
                   for pid in profiles[user][1]]
        for start in range(0, len(ev_rows), 10000):
            conn.execute(insert(events), ev_rows[start:start + 10000])

    # Yesterday's models: one fit per distinct user, copied to its clones.
    first_of: dict[str, int] = {}
    for sid, user in zip(sub_ids, user_of, strict=True):
        first_of.setdefault(user, sid)
    with engine.connect() as conn:
        stats = learning.load_df(conn, features.N_FEATURES)
    assert stats is not None
    space = features.FeatureSpace.from_stats(stats[1], stats[0], terms=term_store.StoredTerms(engine))
    reps = [Subscriber(id=sid, email="", keywords=profiles[user][0]) for user, sid in first_of.items()]
    for start in range(0, len(reps), 2000):
        load_states(engine, reps[start:start + 2000], [], space, past_at)
    with engine.begin() as conn:
        models = {r.subscriber_id: r for r in conn.execute(select(subscriber_models))}
        # A clone's model is as fresh as its own events (same papers, other event ids).
        latest = dict(conn.execute(select(events.c.subscriber_id, func.max(events.c.id))
                                   .group_by(events.c.subscriber_id)).all())
        copies = [{"subscriber_id": sid, "weights": models[first_of[user]].weights,
                   "n_pos": models[first_of[user]].n_pos, "n_neg": models[first_of[user]].n_neg,
                   "last_event_id": latest[sid], "trained_at": past_at}
                  for sid, user in zip(sub_ids, user_of, strict=True)
                  if sid != first_of[user] and first_of[user] in models]
        for start in range(0, len(copies), 5000):
            conn.execute(insert(subscriber_models), copies[start:start + 5000])
        # A day of feedback: a share of subscribers clicked a past paper since their model was trained.
        stale = rng.sample(sub_ids, int(len(sub_ids) * stale_share))
        past_ids = list(past_id.values())
        conn.execute(insert(events), [{"subscriber_id": sid, "paper_id": rng.choice(past_ids), "kind": "click",
                                       "origin": "email", "flagged": False, "created_at": day - timedelta(hours=12)}
                                      for sid in stale])
    return Workload(digest_day=day, n_subscribers=n_subscribers, n_new_papers=len(fresh),
                    n_past_papers=len(rows), n_events=len(ev_rows) + len(stale), n_distinct_users=len(first_of),
                    n_stale=len(stale), parse_s=parse_s, store_s=store_s, feed_entries=entries,
                    setup_s=time.perf_counter() - t_setup)
