"""Ranking with a sentence encoder present: meaning, not only words.

Three uses of the paper and keyword vectors (all unit length, from digest.rank.encoder):
- the keyword prior adds how far each paper stands out in cosine to the subscriber's keyword query
  (with the static vectors only for papers at no match level of the keywords: Meaning.order_for);
- the per-subscriber model learns on combined features: the hashed tf-idf columns, the arXiv class
  block (digest.rank.classes), then the embedding dims (scaled), so scoring everyone is still one
  sparse product and one dense one;
- with a sentence encoder, closeness to the papers a reader liked is measured in meaning (the
  reason line's "Like the paper you starred: ..." stays on tf-idf, whose cosines have one scale
  for every text).
Without an encoder none of this runs and the ranking is the tf-idf one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from digest.domain import Subscriber
from digest.rank.classes import N_CLASSES
from digest.rank.features import N_FEATURES

# The embedding block's scale next to the unit tf-idf row: with 1.0 both blocks weigh the same in
# the model's regularised fit.
EMBED_SCALE = 1.0
EMBED_START = N_FEATURES + N_CLASSES  # the first embedding dim's column in a model
# Meaning's part of the keyword prior: at most this much, for a paper whose cosine to the keyword
# query stands MEANING_SPREAD standard deviations above MEANING_CHANCE deviations over the day's
# mean (nothing below: among a thousand papers unrelated to a query a few always stand two
# deviations out, and a reader with an odd query should get a quiet day, not those). Well under the
# gap between two match levels (digest.rank.keywords), so meaning brings in papers that match no
# keyword (and with a sentence encoder orders those within a level too), but never lifts one of
# those above a paper that matches a phrase. Measured per day because cosines of different
# encoders (the static vectors' all sit high) are not comparable as such.
MEANING_WEIGHT = 0.3
MEANING_SPREAD = 4.0
MEANING_CHANCE = 2.0
# A sentence encoder's closeness to the keyword query is a ranker in its own right (all-MiniLM-L6-v2's
# cosine alone: nDCG@10 0.840 on the judged keyword queries, tf-idf's 0.798; in the CiteULike-a
# replay the zotero-arxiv-daily recipe, that cosine alone, beat our keyword levels on the readers'
# first days), where the static vectors' loose neighbours are what buried exact matches. So with
# a sentence encoder meaning orders the papers from one deviation above the day's mean, and up to
# the weight of a title match; what lets a paper into the digest (the support, the picks' floor)
# and the "Close in meaning" line keep the rule above, so a quiet day stays as quiet.
SENTENCE_ORDER_WEIGHT = 1.0
SENTENCE_ORDER_CHANCE = 1.0
# A paper that holds one specific word of a reader's phrase and nothing more of it (keywords.py,
# GROUNDED_SHARE) is let in on that word only where its meaning stands at least this many deviations
# above the day's mean for the reader's keywords: below that the word is a coincidence ("synthesis"
# of tin sulfide for "speech synthesis", "trajectories" on hyperbolic surfaces for "trajectory
# prediction"). Of the judged pairs of both keyword sets (kwj-dev, docs/judged/kwx) grounded by one
# such word, under one deviation none is on the reader's topic (0 of 16 with the static vectors, 0
# of 9 with all-MiniLM-L6-v2); between one and two, 9 of 45 and 2 of 21; above two, 34 of 68 and
# 41 of 99. Measured on single phrases; the ranker asks the reader's whole keyword query.
WORD_AGREEMENT = 1.0

@dataclass(frozen=True)
class Semantic:
    """Encoder vectors for one ranking."""

    papers: np.ndarray  # candidates x dim
    keywords: np.ndarray  # subscribers x dim: each keyword profile (zero row if no keyword vector)
    liked: Sequence[np.ndarray]  # per subscriber: liked papers x dim, in SubscriberState.liked order
    # From a sentence encoder, whose closeness between two abstracts beats tf-idf's; False for the
    # bundled static vectors (word-piece averages), whose closeness did worse than tf-idf's.
    sentences: bool = False

    def rows(self, start: int, end: int) -> Semantic:
        """The same papers, for the subscribers start:end (the ranker scores them in groups)."""
        return Semantic(self.papers, self.keywords[start:end], self.liked[start:end], self.sentences)


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def keyword_text(subscriber: Subscriber) -> str:
    """The subscriber's keywords as one query: embedded as a whole, it reads like the topic it names
    (a better cold-start ranking in the replay than averaging the keywords' own vectors)."""
    return ", ".join(subscriber.keywords)


def keyword_profiles(subscribers: Sequence[Subscriber], vectors: Mapping[str, np.ndarray], dim: int) -> np.ndarray:
    """Each subscriber's keyword query vector (a zero row where there is none)."""
    out = np.zeros((len(subscribers), dim), dtype=np.float32)
    for i, sub in enumerate(subscribers):
        vec = vectors.get(keyword_text(sub))
        if vec is not None:
            out[i] = vec
    return unit_rows(out)


def combine(tfidf: sp.csr_matrix, classes: np.ndarray, embeddings: np.ndarray | None = None) -> sp.csr_matrix:
    """The model's features: tf-idf columns, the arXiv class block (digest.rank.classes) from column
    N_FEATURES on, then the embedding dims, if any, from EMBED_START on."""
    blocks = [tfidf, sp.csr_matrix(classes)]
    if embeddings is not None:
        blocks.append(sp.csr_matrix(EMBED_SCALE * np.asarray(embeddings, dtype=np.float32)))
    return sp.csr_matrix(sp.hstack(blocks, format="csr"))


def uses_embedding(indices: np.ndarray) -> bool:
    """Whether a stored model has weights on embedding dims (it was trained with an encoder)."""
    return bool(indices.size and int(indices.max()) >= EMBED_START)


def deviations(cos: np.ndarray) -> np.ndarray:
    """Each row's cosines as standard deviations above the row's mean. The deviation has a floor, so
    a day of a few near-identical papers does not blow small differences up."""
    mean = cos.mean(axis=1, keepdims=True)
    spread = np.maximum(cos.std(axis=1, keepdims=True), 0.05)
    out: np.ndarray = (cos - mean) / spread
    return out


def past_chance(devs: np.ndarray, chance: float) -> np.ndarray:
    """Deviations (deviations()) less chance (what unrelated papers reach), from 0 to 1
    (MEANING_SPREAD deviations more and above). On a day of n papers no paper can stand more than
    (n - 1) / sqrt(n) deviations out, so chance is at most half that."""
    n = devs.shape[1]
    if n > 1:
        chance = min(chance, 0.5 * (n - 1) / np.sqrt(n))
    out: np.ndarray = np.clip((devs - chance) / MEANING_SPREAD, 0.0, 1.0).astype(np.float32)
    return out


def standing(cos: np.ndarray, chance: float = 0.0) -> np.ndarray:
    """Each row's cosines as deviations above the row's mean, past chance, from 0 to 1."""
    return past_chance(deviations(cos), chance)


@dataclass(frozen=True)
class Meaning:
    """Subscribers x papers: meaning's part of the keyword prior, in the order and toward the floor."""

    order: np.ndarray  # added to the prior's scores
    support: np.ndarray  # added to the prior's support
    standing: np.ndarray  # how far each paper stands out (0 to 1, past MEANING_CHANCE): the reason lines
    agrees: np.ndarray  # bool: meaning does not speak against the paper's words (WORD_AGREEMENT)
    # Whether meaning orders the papers at a match level of the reader's phrases too: a sentence
    # encoder's closeness does; the static vectors' (word-piece averages, close to a query by any
    # word near it) does worse there than the words (BM25): it put a speech-recognition paper titled
    # "multimodal" fifth for "vision-language models, multimodal", above six vision-language papers,
    # and the default install ranked the judged queries below tf-idf alone (dev 0.955 against 0.961).
    orders_matches: bool = True

    def order_for(self, matched: np.ndarray) -> np.ndarray:
        """Meaning's part of the prior's order, given the keyword prior's phrase part (subscribers x
        papers, above 0 at a match level): with the static vectors only for papers at none, the
        recall meaning is for."""
        return self.order if self.orders_matches else self.order * (matched <= 0)


def meaning_scores(sem: Semantic) -> Meaning:
    """How far each paper stands out in meaning for each reader's keyword query, weighed for the
    order and for the floor (see SENTENCE_ORDER_WEIGHT). A reader without a keyword vector has a
    zero row: every paper stands at the mean, so at 0."""
    devs = deviations(sem.keywords @ sem.papers.T)  # once: the floor's and the order's rules share it
    strict = past_chance(devs, MEANING_CHANCE)
    support = MEANING_WEIGHT * strict
    agrees: np.ndarray = devs >= WORD_AGREEMENT
    without_vector: np.ndarray = ~np.any(sem.keywords, axis=1)
    agrees |= without_vector[:, None]  # no keyword vector: meaning has nothing to say
    if not sem.sentences:
        return Meaning(support, support, strict, agrees, orders_matches=False)
    return Meaning(SENTENCE_ORDER_WEIGHT * past_chance(devs, SENTENCE_ORDER_CHANCE), support, strict, agrees)



def nearest_liked(sem: Semantic, block_rows: int = 4000) -> np.ndarray:
    """Subscribers x papers: each paper's cosine in meaning to the closest of the subscriber's liked
    papers (0 for a subscriber without any). Subscribers are taken in runs of about block_rows liked
    papers: one product per run, then each subscriber's maximum over its own rows."""
    out = np.zeros((len(sem.liked), sem.papers.shape[0]), dtype=np.float32)
    first = 0
    while first < len(sem.liked):
        last, rows = first, 0
        while last < len(sem.liked) and (last == first or rows + len(sem.liked[last]) <= block_rows):
            rows += len(sem.liked[last])
            last += 1
        mine = [m for m in sem.liked[first:last] if len(m)]
        if mine:
            cos = np.concatenate(mine).astype(np.float32, copy=False) @ sem.papers.T
            starts = np.cumsum([0] + [len(m) for m in mine[:-1]])
            best = np.maximum.reduceat(cos, starts, axis=0)
            out[[i for i in range(first, last) if len(sem.liked[i])]] = best
        first = last
    return out
