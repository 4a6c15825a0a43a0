"""Ranking a day for every subscriber: keyword prior and learned model, blended, then selection.

Scoring is matrix work over all subscribers at once; only the final top-k selection (a few dozen
papers per subscriber) loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from digest.domain import Paper, Pick, Subscriber
from digest.rank import classes, followed, learner, semantic
from digest.rank.features import FeatureSpace
from digest.rank.keywords import KeywordScores, PaperIndex, score_keywords
from digest.rank.select import LIKED_REASON_SIMILARITY, LikedWords, PaperSimilarity, mentions_any, select_group
from digest.rank.semantic import Semantic

# Feedback moves papers on top of the keyword prior (digest.rank.keywords), by what is known:
# - a paper close to one the reader starred or opened gains up to LIKE_WEIGHT: how far its tf-idf
#   cosine to the nearest of them stands out among the day's papers (the nearest, not their
#   average: two stars on two topics pull in both topics, not the space between them);
# - one closer to a paper marked "less like this" than to any liked paper loses up to DISLIKE_WEIGHT
#   by that margin: a dislike says "not this", not "not your topic";
# - the learned model's centred probability (-1 to 1) counts MODEL_WEIGHT * n / (n + MODEL_EVIDENCE)
#   after n explicit signals, while the prior keeps PRIOR_EVIDENCE / (n + PRIOR_EVIDENCE) of its
#   weight: a handful of stars refines the keywords, a library of them takes over.
# Chosen on the judged keyword queries' day-two protocol (two stars and a dislike) and the
# CiteULike-a replay's tuning seeds 3 and 5 (warm readers bring 3 to 100 stars); the few-stars
# figures hardly move with them, the replay's warm figure needs the prior to give way.
LIKE_WEIGHT = 1.0
DISLIKE_WEIGHT = 0.6
# A paper holding one of the reader's own phrases (in its title: fully) keeps this share of its score
# against the push of papers waved away: "less like this" narrows the keywords, it does not erase
# them. Without it, a new reader who rated a dozen papers "not for me" on a day with none on their
# topic (the sign-up rating) lost the next day's papers titled with their very phrase, which shared
# a common word with those ("systems" for "recommender systems").
DISLIKE_SHIELD = 0.5
MODEL_WEIGHT = 3.0
MODEL_EVIDENCE = 5.0
PRIOR_EVIDENCE = 5.0
# Toward the picks' floor, the model counts by what speaks for a paper: its positive word weights
# the paper holds (and with vectors, its weights on the paper's meaning), by how far that stands
# out among the day's papers past MEANING_CHANCE deviations (the rule of meaning and of closeness
# to a liked paper), up to its share n / (n + MODEL_EVIDENCE). Its probability lent no support: it
# is under one half for nearly every paper a few stars in (the fit balances them against hundreds
# of background papers), so starring two quantum-error-correction papers left the paper the model
# put first among the rest ("Fault-Tolerant Constant-Depth Clifford Gates on Toric Codes") under
# the floor, while papers the keywords' loose meaning let in were picked. Not the probability's own
# standing: after a dozen "not for me" it stands highest for papers merely unlike those (a
# video-tracking paper for a superconductivity reader on the judged queries), no evidence for them.


# A paper in a reader's "trending today" block needs this much support (the evidence a pick needs
# min_score of): on the judged keyword queries (dev and 16 more, static vectors, no feedback), 81% of
# the judged papers with this much are on the reader's topic (67% at 0.2, 41% at 0.1).
TRENDING_FLOOR = 0.3

# Subscribers are scored in groups of this many: the dense score matrices stay a few tens of MB
# whatever the number of subscribers.
SCORE_CHUNK = 2000


@dataclass(frozen=True)
class DayPapers:
    """The day's candidates with what every group of subscribers needs of them, computed once."""

    papers: Sequence[Paper]
    vectors: sp.csr_matrix
    index: PaperIndex
    similarity: PaperSimilarity
    popular: Sequence[int]  # the papers with upvotes, most first: the "trending" block's candidates

    @cached_property
    def words_and_classes(self) -> sp.csr_matrix:
        """Features x papers: the tf-idf rows, then the arXiv class block (digest.rank.classes), the
        learned models' features before any embedding dims. Sparse, as a paper is in a class or
        three: through the models' sparse product they cost next to nothing."""
        block = sp.csr_matrix(classes.paper_classes(self.papers).T)
        return sp.csr_matrix(sp.vstack([self.similarity.transposed, block], format="csr"))

    @cached_property
    def authors(self) -> followed.DayAuthors:
        """The day's authors by surname, made once for every group that has readers following someone."""
        return followed.DayAuthors(self.papers)

    @classmethod
    def build(cls, papers: Sequence[Paper], space: FeatureSpace) -> DayPapers:
        vectors = space.paper_vectors(papers)
        popular = sorted((c for c, p in enumerate(papers) if (p.upvotes or 0) > 0),
                         key=lambda c: -(papers[c].upvotes or 0))
        return cls(papers, vectors, PaperIndex(papers), PaperSimilarity(vectors), popular)


@dataclass(frozen=True)
class LikedToDay:
    """A group's liked (or disliked) papers against the day's: what the scores and reason lines need."""

    cosines: np.ndarray | None  # distinct papers x day papers; None when too large to keep
    nearest: np.ndarray  # subscribers x day papers: cosine to the closest of their papers (0 if none)


class LikedPapers:
    """The liked (or disliked) papers of a group of subscribers: each distinct paper vectorised once."""

    BLOCK_ROWS = 4000  # papers per product: at 2,000 day papers a 32 MB float32 block
    # The cosines are kept for the reason lines up to this many entries (128 MB of float32: 16,000
    # distinct liked papers on a day of 2,000); past it, the reasons compare their own blocks again.
    KEEP_ENTRIES = 32_000_000

    def __init__(self, vectors: sp.csr_matrix, rows: list[list[int]]) -> None:
        self.vectors = vectors  # one row per distinct paper
        self.rows = rows  # per subscriber, the rows of its papers, in the order given
        self._to_day: tuple[PaperSimilarity, LikedToDay] | None = None

    @classmethod
    def build(cls, papers: Sequence[Sequence[Paper]], space: FeatureSpace) -> LikedPapers:
        """papers: per subscriber, its liked (or disliked) papers."""
        row_of: dict[object, int] = {}
        distinct: list[Paper] = []
        rows = []
        for theirs in papers:
            mine = []
            for p in theirs:
                key = p.id if p.id is not None else id(p)
                if key not in row_of:
                    row_of[key] = len(distinct)
                    distinct.append(p)
                mine.append(row_of[key])
            rows.append(mine)
        vectors = space.paper_vectors(distinct) if distinct else sp.csr_matrix((0, space.idf.shape[0]),
                                                                             dtype=np.float32)
        return cls(vectors, rows)

    def to_day(self, similarity: PaperSimilarity) -> LikedToDay:
        """Cosines of every distinct paper to every day paper, in blocks, and from them each
        subscriber's nearest: one product serves both the score and the reason lines."""
        if self._to_day is not None and self._to_day[0] is similarity:
            return self._to_day[1]
        n_liked, n_day = self.vectors.shape[0], similarity.vectors.shape[0]
        keep = n_liked * n_day <= self.KEEP_ENTRIES
        cosines = np.empty((n_liked, n_day) if keep else (0, n_day), dtype=np.float32)
        nearest = np.zeros((len(self.rows), n_day), dtype=np.float32)
        # Per block of distinct papers, each subscriber's max over its own rows in the block: one
        # gather and reduction per subscriber (a maximum per liked paper was a Python loop of 40,000
        # calls for 2,000 readers with 20 stars each).
        own = [np.unique(np.asarray(mine, dtype=np.int64)) for mine in self.rows]
        for lo in range(0, n_liked, self.BLOCK_ROWS):
            hi = min(lo + self.BLOCK_ROWS, n_liked)
            block = similarity.from_others(self.vectors[lo:hi], out=cosines[lo:hi] if keep else None)
            for sub, mine in enumerate(own):
                inside = mine[(mine >= lo) & (mine < hi)] - lo
                if inside.size == 1:
                    np.maximum(nearest[sub], block[inside[0]], out=nearest[sub])
                elif inside.size:
                    np.maximum(nearest[sub], block[inside].max(axis=0), out=nearest[sub])
        out = LikedToDay(cosines if keep else None, nearest)
        self._to_day = (similarity, out)
        return out


@dataclass(frozen=True)
class RankOptions:
    top_k: int = 10
    min_score: float = 0.1
    diversity: float = 0.3  # 0: plain top-k; higher trades score for variety
    popularity_weight: float = 0.0  # a small prior for papers with many upvotes (Hugging Face)
    explore: bool = False  # give the last slot to a paper unlike the others
    trending_k: int = 0  # the "trending today" block: at most this many upvoted papers beside the picks


@dataclass(frozen=True)
class Ranked:
    """One subscriber's digest: the picks, and the "trending today" block beside them."""

    picks: list[Pick]
    trending: list[Pick] = field(default_factory=list)


@dataclass
class SubscriberState:
    subscriber: Subscriber
    model: learner.LinearModel | None = None
    shown: set[int] = field(default_factory=set)
    liked: list[tuple[str, Paper]] = field(default_factory=list)  # ("starred" | "opened", paper)
    disliked: list[Paper] = field(default_factory=list)  # marked "less like this"


@dataclass(frozen=True)
class Labelled:
    stars: Sequence[int]
    clicks: Sequence[int]
    dislikes: Sequence[int]
    ignored: Sequence[int]  # shown, not clicked
    background: Sequence[int]


def training_set(labels: Labelled, matrix: sp.csr_matrix, row_of: dict[int, int],
                 keywords: sp.csr_matrix | None = None) -> learner.TrainingSet | None:
    """Rows (of matrix, found through row_of) and weights for one subscriber's model; the latest
    opinion on a paper wins. keywords: the subscriber's keyword profile, a pseudo-positive."""
    dislikes = set(labels.dislikes)
    stars = [p for p in labels.stars if p not in dislikes]
    star_set = set(stars)
    clicks = [p for p in labels.clicks if p not in star_set and p not in dislikes]
    pos = [(p, learner.STAR_WEIGHT) for p in stars] + [(p, learner.CLICK_WEIGHT) for p in clicks]
    taken = {p for p, _ in pos} | dislikes
    neg = [(p, learner.DISLIKE_WEIGHT) for p in labels.dislikes]
    neg += [(p, learner.IGNORED_WEIGHT) for p in labels.ignored if p not in taken]
    taken |= set(labels.ignored)
    neg += [(p, learner.BACKGROUND_WEIGHT) for p in labels.background if p not in taken]
    pos = [(p, w) for p, w in pos if p in row_of]
    neg = [(p, w) for p, w in neg if p in row_of]
    # Only what the reader asked for counts as evidence, the model's say and the keywords' giving way:
    # "less like this" pushes its topic down (near_disliked, and as the model's negatives), it is no
    # reason to trust the keywords less. Counted, a dozen "not for me" at sign-up on a day with
    # nothing on the reader's topic cut the keyword prior to 29% (kwj-dev rating, q01).
    evidence = len(pos)
    positives = matrix[[row_of[p] for p, _ in pos]]
    weights = np.array([w for _, w in pos], dtype=np.float64)
    if keywords is not None and keywords.nnz and learner.KEYWORD_WEIGHT > 0:
        positives = sp.vstack([keywords, positives]).tocsr()
        weights = np.concatenate([[learner.KEYWORD_WEIGHT], weights])
    if evidence == 0 or positives.shape[0] == 0 or not neg:
        return None
    return learner.TrainingSet(
        positives=positives,
        positive_weights=weights,
        negatives=matrix[[row_of[p] for p, _ in neg]],
        negative_weights=np.array([w for _, w in neg]),
        evidence=evidence,
    )


def evidence(states: Sequence[SubscriberState]) -> np.ndarray:
    """Per subscriber, the explicit feedback its model was trained on (stars and clicks)."""
    return np.array([s.model.n_pos if s.model else 0 for s in states], dtype=np.float32)


@dataclass(frozen=True)
class Scored:
    """A group's scores, subscribers x papers, and what they rest on."""

    scores: np.ndarray  # the order of the picks
    meaning: np.ndarray | None  # how far each paper stands out in meaning for the keywords (None: no encoder)
    support: np.ndarray  # the evidence for a paper alone (keywords, liked papers, a model for it):
    # a paper needs min_score of it to be picked, whatever the model or a dislike take away
    keywords: KeywordScores
    # How far each paper stands out in closeness to the reader's nearest liked paper (0: not nearer
    # than the day's mean; the model lends support only above it), for the reason line of a pick
    # nothing else explains. Kept from the scoring, not made again: selection reads a few per reader.
    near_liked: np.ndarray | None = None


def feedback_scores(prior: np.ndarray, learned: np.ndarray, near_liked: np.ndarray, near_disliked: np.ndarray | None,
                    n_evidence: np.ndarray, prior_support: np.ndarray | None = None,
                    liked_support: np.ndarray | None = None,
                    own_phrase: np.ndarray | None = None,
                    words_for: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The keyword prior moved by the reader's feedback (see LIKE_WEIGHT and MODEL_WEIGHT), and the
    support. learned: the model's probabilities (0.5 where there is no model); near_disliked: None
    when no one in the group said "less like this"; prior_support and liked_support: the parts of the
    prior and of near_liked that count toward the picks' floor (default: all of them); own_phrase:
    how fully each paper holds one of the reader's phrases (0 to 1), which shields it from part of
    the push of papers waved away (DISLIKE_SHIELD); words_for: what speaks for each paper in the
    model (learner.ModelScores), whose standing adds to the support. In place where
    it can: these are subscribers x papers arrays, and their temporaries were a tenth of the ranking's
    time."""
    f32 = np.float32
    share = (n_evidence / (n_evidence + MODEL_EVIDENCE)).astype(f32)[:, None]  # the model's, 0 to 1
    say = MODEL_WEIGHT * share
    keep = (PRIOR_EVIDENCE / (n_evidence + PRIOR_EVIDENCE)).astype(f32)[:, None]
    model = np.multiply(learned, 2.0 * say, dtype=f32)
    model -= say  # say * (2 * learned - 1)
    scores = np.multiply(prior, keep, dtype=f32)
    scores += LIKE_WEIGHT * near_liked
    gain = np.maximum(model, 0.0)
    scores += gain
    near = near_liked > 0  # the model's part of the support holds only here (below)
    if prior_support is None and liked_support is None:
        support = scores.copy()
    else:
        support = np.multiply(prior if prior_support is None else prior_support, keep, dtype=f32)
        support += LIKE_WEIGHT * (near_liked if liked_support is None else liked_support)
        # The model lends support only near what the reader liked, by its probability as by what
        # speaks for a paper: it also stands high for papers merely unlike the ones waved away (a
        # video-tracking paper for a reader of superconductivity who said "not for me" to eight
        # physics papers), and after a dozen "want these" filed in cs.CV for any paper filed there
        # (a video-tracking paper again, for a reader of vision-language models, holding none of
        # their words and nearer to none of the twelve than the day's mean).
        gain *= near
        support += gain
    if words_for is not None and n_evidence.any():
        # A row without a model is 0 throughout: it stands at its mean, so it adds nothing; a group
        # without one skips the pass over its subscribers x papers.
        standing = semantic.standing(words_for, semantic.MEANING_CHANCE)
        standing *= share
        standing *= near
        support += standing
    if near_disliked is not None:
        against = np.subtract(near_disliked, near_liked, dtype=f32)
        np.maximum(against, 0.0, out=against)
        against *= DISLIKE_WEIGHT
        if own_phrase is not None:
            against *= 1.0 - DISLIKE_SHIELD * np.clip(own_phrase, 0.0, 1.0)
        scores -= against
    scores += np.minimum(model, 0.0, out=model)
    return scores, support


def score_all(states: Sequence[SubscriberState], day: DayPapers, space: FeatureSpace, options: RankOptions,
              liked: LikedPapers, disliked: LikedPapers | None = None,
              meaning: Semantic | None = None) -> Scored:
    """meaning: encoder vectors for the candidates, keywords and liked papers (None: tf-idf alone)."""
    candidates = day.papers
    subscribers = [s.subscriber for s in states]
    standing = None
    if meaning is None:
        ks = score_keywords(subscribers, candidates, space, day.index)
        models = learner.scored_by_models([s.model for s in states], day.words_and_classes)
        prior, prior_support = ks.scores, ks.support
    else:
        weighed = semantic.meaning_scores(meaning)
        ks = score_keywords(subscribers, candidates, space, day.index, agrees=weighed.agrees)
        # Models trained with the encoder have weights on the embedding dims after the class block.
        models = learner.scored_by_models([s.model for s in states], day.words_and_classes,
                                          dense=semantic.EMBED_SCALE * meaning.papers)
        standing = weighed.standing
        prior = ks.scores + weighed.order_for(ks.phrases)
        prior_support = ks.support + weighed.support
    # How far each paper stands out, among the day's, in closeness to the reader's nearest liked
    # paper. In meaning with a sentence encoder: in the CiteULike-a replay (seed 3, MiniLM) it found
    # more of what readers saved later than tf-idf closeness (nDCG@10 cold 0.223 -> 0.241, warm 0.340
    # -> 0.353): two abstracts on one topic often share few exact words. Otherwise tf-idf cosines
    # (the static vectors' closeness let more off-topic papers in on the judged queries), which are
    # small and vary with the texts' length: hence the standing, not the cosine.
    in_words = liked.to_day(day.similarity).nearest
    nearest = semantic.nearest_liked(meaning) if meaning is not None and meaning.sentences else in_words
    near_liked = semantic.standing(nearest)
    # Toward the picks' floor, closeness to a liked paper counts only past what chance gives (the
    # meaning prior's rule): a paper a little above the day's mean is ordered by it, not let in by it.
    # And only where the reason line can name that paper (LIKED_REASON_SIMILARITY, in words): in a
    # listing of every field, a whole field stands two deviations nearer in meaning than the day's
    # mean to a starred paper (a metric-learning paper and an LLM-pruning paper were let in for a
    # reader who starred two protein-design papers, with the sentence encoder).
    liked_support = semantic.standing(nearest, semantic.MEANING_CHANCE)
    liked_support *= in_words >= LIKED_REASON_SIMILARITY
    near_disliked = semantic.standing(disliked.to_day(day.similarity).nearest) if disliked is not None else None
    scores, support = feedback_scores(prior, models.probabilities, near_liked, near_disliked, evidence(states),
                                      prior_support, liked_support, ks.phrases, models.words_for)
    if options.popularity_weight > 0:
        votes = np.array([p.upvotes or 0 for p in candidates], dtype=np.float32)
        if votes.max(initial=0) > 0:
            scores = scores + options.popularity_weight * (np.log1p(votes) / np.log1p(votes.max()))[None, :]
    return Scored(scores, standing, support, ks, near_liked)


def rank_all(states: Sequence[SubscriberState], candidates: Sequence[Paper], space: FeatureSpace,
             options: RankOptions, day: DayPapers | None = None,
             meaning: Semantic | None = None) -> list[Ranked]:
    """Every subscriber's picks and trending block. day: the candidates prepared once, when the
    caller ranks them for several groups of subscribers; meaning: encoder vectors for these states."""
    if not states:
        return []
    if not candidates:
        return [Ranked([]) for _ in states]
    day = day if day is not None else DayPapers.build(candidates, space)
    out: list[Ranked] = []
    for start in range(0, len(states), SCORE_CHUNK):
        end = start + SCORE_CHUNK
        part = None if meaning is None else meaning.rows(start, end)
        out += _rank_group(states[start:end], day, space, options, part)
    return out


def _rank_group(states: Sequence[SubscriberState], day: DayPapers, space: FeatureSpace,
                options: RankOptions, meaning: Semantic | None) -> list[Ranked]:
    liked = LikedPapers.build([[p for _, p in st.liked] for st in states], space)
    disliked = LikedPapers.build([st.disliked for st in states], space) if any(st.disliked for st in states) else None
    scored = score_all(states, day, space, options, liked, disliked, meaning)
    # Papers by followed authors are sent whatever their score; the picks are chosen from the others.
    follows = [followed.followed_picks(day.papers, day.authors.papers_by(st.subscriber.authors), scored.scores[r],
                                       scored.keywords.matched[r], st.shown, st.subscriber.exclude, day.index)
               if st.subscriber.authors else [] for r, st in enumerate(states)]
    taken = [{p.paper.id for p in f if p.paper.id is not None} for f in follows]
    picks = select_all(states, day, options, scored, liked, taken)
    out = []
    for r, (st, mine, theirs) in enumerate(zip(states, picks, follows, strict=True)):
        chosen = followed.with_followed(mine, theirs) if theirs else mine
        out.append(Ranked(chosen, trending_block(st, r, chosen, day, scored.support, options.trending_k)))
    return out


def trending_block(state: SubscriberState, row: int, picks: Sequence[Pick], day: DayPapers, support: np.ndarray,
                   k: int) -> list[Pick]:
    """The most upvoted of the day's papers that pass TRENDING_FLOOR for this reader and are not
    picked, shown before or excluded; none for a reader who turned the block off, or on a day
    without picks (a quiet day stays quiet)."""
    if k <= 0 or not picks or not state.subscriber.trending:
        return []
    taken = {p.paper.id for p in picks} | state.shown
    out: list[Pick] = []
    for c in day.popular:
        if len(out) == k:
            break
        p = day.papers[c]
        if (p.id not in taken and support[row, c] >= TRENDING_FLOOR
                and not (state.subscriber.exclude and mentions_any(p, state.subscriber.exclude))):
            out.append(Pick(paper=p, score=float(p.upvotes or 0), reason=f"{p.upvotes} upvotes"))
    return out


def select_all(states: Sequence[SubscriberState], day: DayPapers, options: RankOptions, scored: Scored,
               liked: LikedPapers, taken: Sequence[set[int]] = ()) -> list[list[Pick]]:
    """The group's picks from its scores (score_all), with reason lines from the liked papers.
    taken: per subscriber, paper ids already in their digest (by followed authors), not picked again."""
    # Reason lines name a liked paper by tf-idf closeness, with or without an encoder: its cosines
    # are on one scale for every text (the encoders' are not: the static vectors' all sit high).
    closeness = LikedWords(liked.rows, cosines=liked.to_day(day.similarity).cosines, vectors=liked.vectors,
                           similarity=day.similarity)
    return select_group(
        day.papers, scored.scores, scored.keywords.matched, scored.keywords.related, support=scored.support,
        meaning=scored.meaning, near_liked=scored.near_liked, filed=scored.keywords.filed,
        top_k=[st.subscriber.top_k or options.top_k for st in states], min_score=options.min_score,
        shown=[st.shown | taken[r] if taken and taken[r] else st.shown for r, st in enumerate(states)],
        exclude=[st.subscriber.exclude for st in states],
        similarity=day.similarity, diversity=options.diversity, liked=[st.liked for st in states],
        liked_similarity=closeness, explore=options.explore, index=day.index,
    )
