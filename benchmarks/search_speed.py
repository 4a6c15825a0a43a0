"""Search over many stored papers: the full-text index against a scan, timed in the same run.

    python benchmarks/search_speed.py [--papers 100000] [--database-url postgresql+psycopg://...]

The store is filled with real text: the CiteULike-a papers (about 17,000 titles, abstracts where
known) and the arXiv listings of ../shared/data/feeds (with their authors), cycled up to --papers
(each copy its own row, so the index holds as many postings as that many papers would). Rows go in
through the papers table, so the index is built the way ingest builds it (SQLite: the triggers).

Timed per query: digest.store.search.search_papers for the first page (20) and the fifth, median
of 7 calls after one warm-up. Baseline: the same words matched with LIKE over title and abstract
(what a search without an index does: every row read, every match found to be ranked), one call.

Similar papers (digest.pipeline.similar, the paper page's list): the papers' term counts are stored
as ingest stores them, then 25 papers spread over the store are looked up, each twice (the figure is
the second call; the first call of the run also reads the word statistics from the database).
Baseline: the same vectors' cosine of the paper against every stored paper (what the list costs
without the index gathering candidates), for 3 of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, and_, func, insert, or_, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workload import parse_listings  # noqa: E402
from digest.evaluate.data import load_citeulike  # noqa: E402
from digest.identity import normalise_title  # noqa: E402
from digest.pipeline.similar import similar_papers  # noqa: E402
from digest.rank import features  # noqa: E402
from digest.store import learning  # noqa: E402
from digest.store import papers as paper_store  # noqa: E402
from digest.store.engine import open_engine  # noqa: E402
from digest.store.schema import papers  # noqa: E402
from digest.store.search import query_words, search_papers  # noqa: E402
from digest.training import terms as term_store  # noqa: E402
from digest.training.terms import StoredTerms  # noqa: E402

QUERIES = [
    "graph neural networks", "protein folding", "quantum error correction", "reinforcement learning",
    "social network analysis", "gene expression microarray", "learning", "analysis", "model",
    "superconducting qubits", "large language models reasoning", "zanzibar", "Smith",
]
STORED_AT = datetime(2026, 11, 1)


def _rows(n: int) -> list[dict[str, object]]:
    listing, _, _ = parse_listings()
    corpus = load_citeulike().corpus
    texts = [(p.title, p.abstract, list(p.authors)) for p in listing]
    texts += [(corpus.titles[i], corpus.abstracts[i], []) for i in range(len(corpus))]
    rows: list[dict[str, object]] = []
    for k in range(n):
        title, abstract, authors = texts[k % len(texts)]
        rows.append({"canonical_id": f"bench:{k}", "title_key": normalise_title(title)[:600] or "-", "title": title,
                     "abstract": abstract, "authors": authors, "categories": [], "source": "bench",
                     "first_seen_at": STORED_AT, "updated_at": STORED_AT})
    return rows


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=100_000)
    ap.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/search.db"
        engine = open_engine(url)
        rows = _rows(args.papers)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for start in range(0, len(rows), 2000):
                conn.execute(insert(papers), rows[start:start + 2000])
        store_s = time.perf_counter() - t0
        print(f"{engine.dialect.name}: {args.papers:,} papers stored and indexed in {store_s:.1f} s")
        print(f"{'query':34} {'hits p1':>7} {'page 1 ms':>10} {'page 5 ms':>10} {'LIKE scan ms':>13} {'ratio':>7}")
        firsts = []
        with engine.connect() as conn:
            for q in QUERIES:
                hits = len(search_papers(conn, q).papers)
                first = _median_ms(lambda: search_papers(conn, q), 7)  # noqa: B023 (called here, in this turn)
                fifth = _median_ms(lambda: search_papers(conn, q, offset=80), 7)  # noqa: B023
                words = query_words(q)
                scan = select(papers.c.id).where(and_(*(
                    or_(func.lower(papers.c.title).like(f"%{w}%"), func.lower(papers.c.abstract).like(f"%{w}%"))
                    for w in words)))  # every match: a ranked search must see them all
                t1 = time.perf_counter()
                conn.execute(scan).all()
                scan_ms = (time.perf_counter() - t1) * 1000
                firsts.append(first)
                print(f"{q:34} {hits:7d} {first:10.1f} {fifth:10.1f} {scan_ms:13.1f} {scan_ms / first:6.1f}x")
        print(f"slowest first page {max(firsts):.1f} ms, median {statistics.median(firsts):.1f} ms")
        _similar(engine)
        engine.dispose()


def _similar(engine: Engine) -> None:
    t0 = time.perf_counter()
    with engine.connect() as conn:
        stored = [paper_store.row_to_paper(r) for r in conn.execute(select(papers))]
    with engine.begin() as conn:
        term_store.add_papers(conn, stored, STORED_AT)
    print(f"term counts of {len(stored):,} papers stored in {time.perf_counter() - t0:.1f} s")
    sample = stored[:: max(1, len(stored) // 25)][:25]
    times, found = [], []
    for paper in sample:
        similar_papers(engine, paper)
        t1 = time.perf_counter()
        found.append(len(similar_papers(engine, paper)))
        times.append((time.perf_counter() - t1) * 1000)
    print(f"similar papers: median {statistics.median(times):.1f} ms, slowest {max(times):.1f} ms, "
          f"{statistics.mean(found):.1f} neighbours shown on average")
    with engine.connect() as conn:
        n_docs, df = learning.load_df(conn, features.N_FEATURES) or (0, None)
    assert df is not None
    space = features.FeatureSpace.from_stats(df, n_docs, terms=StoredTerms(engine))
    scan = []
    for paper in sample[:3]:
        t1 = time.perf_counter()
        vectors = space.paper_vectors(stored)
        (vectors @ space.paper_vectors([paper]).T).toarray()
        scan.append((time.perf_counter() - t1) * 1000)
        space = features.FeatureSpace.from_stats(df, n_docs, terms=StoredTerms(engine))  # no cache between
    print(f"  against every stored paper: median {statistics.median(scan):.0f} ms "
          f"({statistics.median(scan) / statistics.median(times):.0f}x)")


if __name__ == "__main__":
    main()
