"""The keyword prior (cold start): what the reader typed, matched in each paper, first.

What a subscriber typed is the strongest evidence there is about what they want. Each keyword
phrase gets a match level in each paper: the phrase in the title, in other word forms in the title
(its words' stems in a row: "recommendation systems" for "recommender systems"), in the abstract
(in its first sentence or more than once; once further on, a passing mention, counts far less),
in other forms in the abstract, the name of an arXiv category the paper is filed in
(digest.rank.arxiv_categories), every word in the title, apart, or every word somewhere. A paper's
prior is its best level, plus a share of the levels of its other keywords, plus how well it holds
the keywords' words (BM25, title words counting double, as a share of what a paper holding all of
them would score), which orders papers within a level and ranks the rest. The levels are far
apart, so a paper that matches a phrase outranks one that merely shares words with it; meaning
(digest.rank.semantic) adds recall below and order within them, never in their place.

All subscribers are scored at once: the phrase matches are found once per distinct phrase, the
words' BM25 once per distinct word, and each subscriber's sum is one sparse product.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from digest.domain import Paper, Subscriber
from digest.rank import arxiv_categories, features
from digest.rank.tokens import CLAUSE_MARK, STOP_WORDS, clause_tokens, stem

# A phrase's match level in a paper (see the module's note), weakest first. The title is the
# authors' own summary; a phrase only in the abstract may be a side remark. Stems in a row are the
# phrase in other word forms, a little less sure than the phrase itself.
# A category the phrase names is the authors' own word on the paper's field: as sure as the phrase
# in the abstract. Of the judged pairs of both keyword sets (kwj-dev with our grades, docs/judged/kwx)
# whose best level is the category alone, 49 of 53 are on the reader's topic (44 squarely), against
# 47 of 49 (32) for the phrase in the abstract (not in passing, below) and 10 of 12 (5) for its other
# forms there.
# Every word of a phrase in the title, apart and in the reader's own forms ("Single-Image 3D Human
# Reconstruction" for "3D reconstruction"), is less than the phrase and more than words scattered
# anywhere: of the judged pairs of both keyword sets whose title holds a phrase so, 11 of 13 are on
# the reader's topic (8 squarely), where they ranked with papers sharing one word.
# The phrase once in the abstract, after its first sentence, is a passing mention more often than the
# paper's subject ("... in real-world applications such as autonomous driving", "message passing
# between low-level C code and the Python interface"): of the judged pairs of both keyword sets
# whose best level is the phrase in the abstract, those that say it so are on the reader's topic 34
# of 56 times (16 squarely), those that say it in the first sentence or more than once 47 of 49 (32).
# The passing mention counts as much as the phrase's words held apart (ALL_WORDS: 28 of 36, 18),
# which is what it is evidence of; its reason line still says "Matches", which is true.
LEVEL_VALUES = np.array([0.0, 0.2, 0.2, 0.45, 0.45, 0.55, 0.55, 0.85, 1.0], dtype=np.float32)
NONE, ALL_WORDS, ABSTRACT_ASIDE, TITLE_WORDS, ABSTRACT_STEMS, CATEGORY, ABSTRACT, TITLE_STEMS, TITLE = range(9)
# Each further keyword a paper matches adds this share of its level: two of the reader's topics in
# one paper beat one, but never a title match of the first by an abstract match of two others.
COVERAGE = 0.3
# The keywords' words in the paper (BM25 as a share of the ideal, 0 to 1): the order within a
# level, and the only word signal below. On the judged keyword queries BM25 ordered better than
# the tf-idf cosine of the keyword profile (which also counts hashed bigrams, and collisions).
WORDS_WEIGHT = 0.6
BM25_K1 = 1.2  # the usual constants: term frequency saturates, long papers weigh their words less
BM25_B = 0.75
TITLE_TF = 2  # a word in the title counts as two in the abstract
# The levels at which "Matches: <keyword>" is true of the paper: it holds the phrase (a category
# is "In <category>", the words apart "Related to").
MATCHES = np.zeros(len(LEVEL_VALUES), dtype=bool)
MATCHES[[ABSTRACT_ASIDE, ABSTRACT_STEMS, ABSTRACT, TITLE_STEMS, TITLE]] = True
# A phrase that a large share of all papers hold tells little about which of them the reader wants
# (the reason idf exists; the match levels alone ignored it): its levels count by its specificity,
# from 1 for a phrase in at most SPECIFIC_SHARE of the stored papers down to GENERIC_FLOOR for one
# in GENERIC_SHARE or more, on the log scale of idf. Single tags such as "networks" or "model"
# (a tenth of CiteULike's papers) and "learning" on an arXiv cs day are the generic ones; a phrase a
# researcher types ("superconducting qubits", "recommender systems") is far under 2%.
# A paper that holds no phrase of the reader's has words-only evidence (BM25) toward the picks'
# floor (min_score) only where it holds most of one phrase (more than GROUNDED_SHARE of its words,
# held in pairs as the phrase has them) or one of a phrase's specific words (in at most
# SPECIFIC_SHARE of the stored papers: "forecasting", "protein", "qubits"). A shared common word
# ("design" of "protein design", "quantum" of "quantum error correction", "time" of "time series
# forecasting") still orders papers, but cannot fill a quiet day's digest with papers that hold
# nothing else of the reader's.
GROUNDED_SHARE = 0.5
SPECIFIC_SHARE = 0.02
GENERIC_SHARE = 0.2
GENERIC_FLOOR = 0.25
# A phrase's words held apart count as ALL_WORDS only where at least two of them are uncommon that
# day (held by under GENERIC_SHARE of the day's papers, or under GENERIC_MIN_PAPERS of them: a share
# of a handful of papers says nothing). Of the judged pairs of both keyword sets at ALL_WORDS alone,
# 16 of 50 are on the topic where the phrase has one uncommon word ("tool use", "numerical
# methods", "recommender systems"), 41 of 61 where it has two or more.
GENERIC_MIN_PAPERS = 10
_RAW_WORD = re.compile(r"[a-z0-9]+")
# A run of a phrase's words (tokens a to b) written as initials, the initials, and the papers that
# write them in capitals (PaperIndex._written_initials).
InitialsRun = tuple[int, int, str, list[int]]


class PhraseHits:
    """A bool matrix, phrases x papers, read one paper at a time: the phrases that hit a paper are
    found once, for every subscriber of the group who asks about it."""

    def __init__(self, hits: np.ndarray) -> None:
        self.hits = hits
        self._by_paper: dict[int, frozenset[int]] = {}

    def of_paper(self, paper: int) -> frozenset[int]:
        got = self._by_paper.get(paper)
        if got is None:
            got = self._by_paper[paper] = frozenset(np.flatnonzero(self.hits[:, paper]).tolist())
        return got


class KeywordHits:
    """One subscriber's keywords that hit each paper, built only for the papers asked for.

    hits: phrases x papers; rows: which of its rows are this subscriber's keywords, in order
    (default: all), so a group's subscribers share one matrix of the distinct phrases; names: what
    a hit is called, when not the keyword itself (the category it names). Built for every
    subscriber of a day three times over, so it keeps what it is given rather than copying it.
    """

    def __init__(self, keywords: Sequence[str], hits: np.ndarray | PhraseHits, rows: Sequence[int] | None = None,
                 names: Mapping[str, str] | None = None) -> None:
        self.keywords = keywords
        self.hits = hits if isinstance(hits, PhraseHits) else PhraseHits(hits)
        self.rows = range(self.hits.hits.shape[0]) if rows is None else rows
        self.names = names

    def __getitem__(self, paper: int) -> tuple[str, ...]:
        got = self.hits.of_paper(paper)
        if not got:
            return ()
        hit = tuple(k for k, r in zip(self.keywords, self.rows, strict=True) if r in got)
        return hit if self.names is None else tuple(self.names[k] for k in hit)

    def __len__(self) -> int:
        return int(self.hits.hits.shape[1])


@dataclass(frozen=True)
class KeywordScores:
    scores: np.ndarray  # subscribers x papers
    matched: list[KeywordHits]  # [subscriber][paper] -> keywords matched as whole phrases
    related: list[KeywordHits]  # [subscriber][paper] -> keywords sharing words, not whole
    filed: list[KeywordHits]  # [subscriber][paper] -> the categories named by keywords not matched
    phrases: np.ndarray  # subscribers x papers: the phrase-match part of scores (0: no keyword matched)
    words: np.ndarray  # subscribers x papers: the keywords' words in the paper (BM25, 0 to 1)
    support: np.ndarray  # subscribers x papers: scores, less the words of papers not grounded (GROUNDED_SHARE)


# A sentence ends at a full stop, a question or an exclamation mark before a capital, a bracket or
# the end: "e.g. the" and "Fig. 3" do not end one.
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z(\[]|\s*$)")
# A structured abstract opens with a label ("Context. Galaxy formation is ...", as A&A asks of
# astro-ph papers): the first sentence is the one after it.
_LABEL_WORDS = 2


def _first_sentence(text: str) -> str:
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if len(text[start:end.end()].split()) > _LABEL_WORDS:
            return text[:end.end()]
        start = end.end()
    return text


def _joined(toks: Sequence[str]) -> str:
    return " " + " ".join(toks) + " "


def _marked_stems(marked: Sequence[str]) -> list[str]:
    return [t if t == CLAUSE_MARK else stem(t) for t in marked]


def _clause_pattern(phrase: str) -> re.Pattern[str] | None:
    """The phrase with a word the reader typed in the singular, before the last, in the plural and
    straight before the next word: "tools use" for "tool use". English compounds take their
    modifiers in the singular ("tool use", "protein design"), so that form is a subject and its verb
    ("many of these tools use perceptual models"), not the phrase. None when the phrase has no such
    word (one word, or modifiers typed in the plural: "materials science")."""
    words = [w for w in _RAW_WORD.findall(phrase.lower().replace("-", " ")) if w not in STOP_WORDS and len(w) > 1]
    if len(words) < 2 or all(w.endswith("s") for w in words[:-1]):
        return None
    parts = [re.escape(w) + ("" if w.endswith("s") else "e?s") for w in words[:-1]]
    parts.append(re.escape(words[-1]) + "(?:e?s)?")
    return re.compile(r"\b" + r"[\s-]+".join(parts) + r"\b")


def _clause_only(clause: re.Pattern[str] | None, raw: str, stemmed: str, stems: str) -> bool:
    """Whether every place a text holds the phrase's stems in a row is that subject and its verb
    (clause: _clause_pattern; raw: the text as written; stemmed, stems: the phrase's stems and the
    text's, joined)."""
    if clause is None:
        return False
    found = len(clause.findall(raw.lower()))
    return found > 0 and stems.count(stemmed) <= found


class PaperIndex:
    """The day's papers as normalised text, word stems and an inverted index of the stems.

    A keyword is looked for only in the papers that hold all its words' stems, so the cost follows
    the hits, not keywords x papers.
    """

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.n = len(papers)
        self.title_text: list[str] = []
        self.body_text: list[str] = []
        self.full_text: list[str] = []  # title then abstract: a phrase may run from one into the other
        self.papers = papers  # their own text, cased: where an acronym stands in for a phrase
        self.title_stems: list[str] = []
        self.body_stems: list[str] = []
        self._leads: dict[int, str] = {}  # the abstract's first sentence, for the papers asked about
        postings: dict[str, list[int]] = {}
        filed: dict[str, list[int]] = {}  # category code -> papers
        counts: dict[str, tuple[list[int], list[int]]] = {}  # word -> (papers, weighted counts)
        lengths = np.zeros(self.n, dtype=np.float32)
        for pi, p in enumerate(papers):
            # The texts keep where a clause ends (CLAUSE_MARK), so no phrase runs across it; the
            # word counts do not need it.
            title_marked, body_marked = clause_tokens(p.title), clause_tokens(p.abstract)
            title = [t for t in title_marked if t != CLAUSE_MARK]
            body = [t for t in body_marked if t != CLAUSE_MARK]
            title_st, body_st = _marked_stems(title_marked), _marked_stems(body_marked)
            lengths[pi] = TITLE_TF * len(title) + len(body)
            weighted: dict[str, int] = {}
            for word in title:
                weighted[word] = weighted.get(word, 0) + TITLE_TF
            for word in body:
                weighted[word] = weighted.get(word, 0) + 1
            for word, n in weighted.items():
                where = counts.setdefault(word, ([], []))
                where[0].append(pi)
                where[1].append(n)
            self.title_text.append(_joined(title_marked))
            self.body_text.append(_joined(body_marked))
            self.full_text.append(_joined(title_marked + body_marked))
            self.title_stems.append(_joined(title_st))
            self.body_stems.append(_joined(body_st))
            for word in (set(title_st) | set(body_st)) - {CLAUSE_MARK}:
                postings.setdefault(word, []).append(pi)
            for code in set(p.categories):
                filed.setdefault(code, []).append(pi)
        self.postings = {w: np.array(ps, dtype=np.int64) for w, ps in postings.items()}
        self.filed = {c: np.array(ps, dtype=np.int64) for c, ps in filed.items()}
        self.counts = {w: (np.array(ps, dtype=np.int64), np.array(ns, dtype=np.float32))
                       for w, (ps, ns) in counts.items()}
        # BM25's length factor per paper, with the day's average length.
        average = float(lengths.mean()) if self.n else 1.0
        self.length_factor = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(average, 1.0))

    def _lead(self, pi: int) -> str:
        """The abstract's first sentence as tokens, where it states its subject: read only for the
        papers that hold a phrase in the abstract, not for the day."""
        got = self._leads.get(pi)
        if got is None:
            got = self._leads[pi] = _joined(clause_tokens(_first_sentence(self.papers[pi].abstract)))
        return got

    def word_scores(self, words: Sequence[str], idf: np.ndarray) -> np.ndarray:
        """words x papers: each word's BM25 term weight in each paper (idf: one per word)."""
        out = np.zeros((len(words), self.n), dtype=np.float32)
        for wi, word in enumerate(words):
            found = self.counts.get(word)
            if found is not None:
                where, tf = found
                out[wi, where] = idf[wi] * tf * (BM25_K1 + 1) / (tf + self.length_factor[where])
        return out

    def mentions(self, phrases: Sequence[str]) -> np.ndarray:
        """Bool per paper: one of the phrases occurs in it, as whole words."""
        out = np.zeros(self.n, dtype=bool)
        for k in phrases:
            ktoks = features.tokens(k)
            if not ktoks:
                continue
            phrase = _joined(ktoks)
            for pi in self._holding_all(features.stems(ktoks)):
                out[pi] = out[pi] or phrase in self.full_text[pi]
        return out

    def _holding_all(self, stems: Sequence[str]) -> np.ndarray:
        """The papers that hold every one of these stems (where a phrase of them can occur)."""
        empty = np.zeros(0, dtype=np.int64)
        lists = [self.postings.get(w, empty) for w in set(stems)]
        both = lists[0]
        for ps in lists[1:]:
            both = np.intersect1d(both, ps, assume_unique=True)
        return both

    def _held_in_pairs(self, kstems: Sequence[str]) -> dict[int, set[str]]:
        """Per paper, the words of a phrase (its stems) that it holds two in a row as the phrase has
        them ("error correction" of "quantum error correction"): part of the phrase, in its order.
        The same words apart say less ("quantum" and "corrections" in a paper on loop quantum
        gravity)."""
        out: dict[int, set[str]] = {}
        for a, b in zip(kstems, kstems[1:], strict=False):
            pair = f" {a} {b} "
            for pi in self._holding_all([a, b]).tolist():
                if pair in self.title_stems[pi] or pair in self.body_stems[pi]:
                    out.setdefault(pi, set()).update((a, b))
        return out

    def match_levels(self, phrases: Sequence[str], specific: Callable[[Sequence[str]], np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        """Per phrase and paper, its match level (uint8, phrases x papers: NONE ... TITLE), whether
        the paper shares at least one of the phrase's word stems, and how much of the phrase it
        holds in pairs as the phrase has them (sparse, phrases x papers: the share of its words, for
        phrases of three words or more), and the number of its words the paper holds that
        specific(words) (a bool per word) says are specific enough to stand for it (sparse)."""
        levels = np.zeros((len(phrases), self.n), dtype=np.uint8)
        shares = np.zeros((len(phrases), self.n), dtype=bool)
        held_rows: list[np.ndarray] = []  # the pairs
        held_cols: list[np.ndarray] = []
        held_vals: list[np.ndarray] = []
        word_rows: list[np.ndarray] = []  # the specific words
        word_cols: list[np.ndarray] = []
        empty = np.zeros(0, dtype=np.int64)
        common = max(GENERIC_SHARE * self.n, GENERIC_MIN_PAPERS)  # papers holding a word that says little
        for ki, k in enumerate(phrases):
            ktoks = features.tokens(k)
            if not ktoks:
                continue
            kstems = features.stems(ktoks)
            distinct = list(dict.fromkeys(kstems))
            for w in distinct:
                shares[ki, self.postings.get(w, empty)] = True
            written = self._written_initials(ktoks)
            # What is held matters only where it can ground a paper the levels do not: a word of one
            # alone is a level already, and so is all of two. So: a specific word of a longer phrase
            # anywhere, and the words of a phrase of three or more that the paper holds in a row as
            # the phrase has them (the rest are most of the day's postings).
            pairs: dict[int, set[str]] = {}
            if len(distinct) > 1:
                standing = specific(ktoks) if specific is not None else np.zeros(len(ktoks), dtype=bool)
                alone = {st: False for st in distinct}
                for st, sure in zip(kstems, standing, strict=True):
                    alone[st] = alone[st] or bool(sure)
                for w in distinct:
                    if alone[w]:
                        where = self.postings.get(w, empty)
                        word_rows.append(np.full(where.size, ki, dtype=np.int64))
                        word_cols.append(where)
                if len(distinct) > 2:
                    pairs = self._held_in_pairs(kstems)
                    for pi, held in self._held_as_initials(ktoks, written).items():
                        pairs.setdefault(pi, set()).update(held)
                if pairs:
                    held_rows.append(np.full(len(pairs), ki, dtype=np.int64))
                    held_cols.append(np.fromiter(pairs, dtype=np.int64, count=len(pairs)))
                    held_vals.append(np.array([len(w) / len(distinct) for w in pairs.values()], dtype=np.float32))
            phrase, stemmed = _joined(ktoks), _joined(kstems)
            # Held apart, the words count only where two are uncommon (GENERIC_MIN_PAPERS), and only
            # in the reader's own word forms, unless two of them stand in a row as the phrase has
            # them: apart and in other forms at once is two loosenings, "a mechanistic regularity"
            # and "a cultural interpretation" for "mechanistic interpretability". Of the judged pairs
            # of both keyword sets this takes out of ALL_WORDS, 8 of 20 are on the topic; of those it
            # keeps, 45 of 54.
            telling = sum(1 for st in distinct if self.postings.get(st, empty).size < common)
            scattered = ALL_WORDS if telling >= 2 else NONE
            own_forms = set(ktoks)
            clause = _clause_pattern(k)
            for pi in self._holding_all(kstems):
                paper = self.papers[pi]
                in_title_row = stemmed in self.title_stems[pi]
                title = in_title_row and not _clause_only(clause, paper.title, stemmed, self.title_stems[pi])
                body = stemmed in self.body_stems[pi] and not _clause_only(clause, paper.abstract, stemmed,
                                                                           self.body_stems[pi])
                if title and phrase in self.title_text[pi]:
                    levels[ki, pi] = TITLE
                elif title:
                    levels[ki, pi] = TITLE_STEMS
                elif body and phrase in self.body_text[pi]:
                    central = phrase in self._lead(pi) or self.body_text[pi].count(phrase) > 1
                    levels[ki, pi] = ABSTRACT if central else ABSTRACT_ASIDE
                elif body:
                    levels[ki, pi] = ABSTRACT_STEMS
                elif (len(own_forms) > 1 and not in_title_row  # in a row and not the phrase: a clause
                      and all(f" {t} " in self.title_text[pi] for t in own_forms)):
                    levels[ki, pi] = TITLE_WORDS
                elif scattered and (pi in pairs or all(f" {t} " in self.full_text[pi] for t in own_forms)):
                    levels[ki, pi] = scattered
            for pi, level in self._acronym_levels(ktoks, written).items():
                levels[ki, pi] = max(levels[ki, pi], level)
            for code in arxiv_categories.named_by(k):
                where = self.filed.get(code, empty)
                levels[ki, where] = np.maximum(levels[ki, where], CATEGORY)
        shape = (len(phrases), self.n)
        held = sp.csr_matrix((np.concatenate(held_vals) if held_vals else np.zeros(0, dtype=np.float32),
                              (np.concatenate(held_rows) if held_rows else empty,
                               np.concatenate(held_cols) if held_cols else empty)), shape=shape, dtype=np.float32)
        n_words = sum(r.size for r in word_rows)
        words = sp.csr_matrix((np.ones(n_words, dtype=np.float32),
                               (np.concatenate(word_rows) if word_rows else empty,
                                np.concatenate(word_cols) if word_cols else empty)),
                              shape=shape, dtype=np.float32)  # duplicates summed
        return levels, shares, held, words

    def _written_initials(self, ktoks: Sequence[str]) -> list[InitialsRun]:
        """The phrase's runs of three or more words (from a to b) whose initials papers write in
        capitals, as an acronym ("PDEs", "LLM"; not the word "mis"): each run with its initials and
        those papers. Both the acronym's level and its words held in a row rest on them."""
        out: list[InitialsRun] = []
        empty = np.zeros(0, dtype=np.int64)
        for a in range(len(ktoks)):
            for b in range(a + 3, len(ktoks) + 1):
                initials = "".join(t[0] for t in ktoks[a:b])
                if not initials.isalpha():
                    continue
                written = re.compile(rf"\b{initials.upper()}s?\b")
                papers = [pi for pi in self.postings.get(stem(initials), empty).tolist()
                          if written.search(self.papers[pi].title) or written.search(self.papers[pi].abstract)]
                if papers:
                    out.append((a, b, initials, papers))
        return out

    @staticmethod
    def _held_as_initials(ktoks: Sequence[str], written: Sequence[InitialsRun]) -> dict[int, set[str]]:
        """Per paper, the words of a phrase (its stems) that it writes as their initials (written:
        _written_initials): "LLM" holds "large language model" of "large language model agents" in
        a row as much as the words spelt out do."""
        out: dict[int, set[str]] = {}
        for a, b, _, papers in written:
            words = features.stems(ktoks[a:b])
            for pi in papers:
                out.setdefault(pi, set()).update(words)
        return out

    def _acronym_levels(self, ktoks: Sequence[str], written: Sequence[InitialsRun]) -> dict[int, int]:
        """The papers that hold the phrase with three or more of its words in a row as their
        initials ("PDE solvers" for "partial differential equation solvers", "LLM agents"), and
        where: TITLE_STEMS or ABSTRACT_STEMS, the phrase in other words. written: the runs whose
        initials papers write as an acronym (_written_initials)."""
        found: dict[int, int] = {}
        for a, b, initials, papers in written:
            phrase = _joined([*ktoks[:a], initials, *ktoks[b:]])
            for pi in papers:
                in_title = phrase in self.title_text[pi]
                if in_title or phrase in self.body_text[pi]:
                    found[pi] = max(found.get(pi, NONE), TITLE_STEMS if in_title else ABSTRACT_STEMS)
        return found


def specificity(phrases: Sequence[str], space: features.FeatureSpace) -> np.ndarray:
    """Per phrase, 0 to 1: how rare it is among the stored papers (see SPECIFIC_SHARE). A phrase of
    several words is as rare as its rarest pair of neighbouring words (the hashed bigrams' document
    frequencies), a word as itself."""
    return _specificity([features.tokens(k) for k in phrases], space)


def word_specificity(words: Sequence[str], space: features.FeatureSpace) -> np.ndarray:
    """Per word of a phrase, already made tokens (features.tokens), its specificity. Not tokenised
    again: a token is not always its own token (the plural fold can apply twice), and one dropped on
    the second pass reads as a word no paper holds, the rarest there is ("systems" did, while the
    singular "system" was a stop word)."""
    return _specificity([[w] for w in words], space)


def _specificity(phrases: Sequence[Sequence[str]], space: features.FeatureSpace) -> np.ndarray:
    out = np.ones(len(phrases), dtype=np.float32)
    for i, toks in enumerate(phrases):
        if not toks:
            continue
        grams = list(toks) if len(toks) == 1 else [f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)]
        rarity = float(space.idf[features.unigram_columns(grams)].max()) - 1.0  # ln(share), about
        low, high = -np.log(GENERIC_SHARE), -np.log(SPECIFIC_SHARE)
        out[i] = np.clip(GENERIC_FLOOR + (1 - GENERIC_FLOOR) * (rarity - low) / (high - low), GENERIC_FLOOR, 1.0)
    return out


def phrase_scores(own: Sequence[Sequence[int]], levels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per subscriber (own: the rows of levels that are its keywords) and paper: the best level's
    value plus COVERAGE times the others'; weights: per phrase, its specificity. Sparse until the
    end: a phrase occurs in few of the day's papers, so the cost follows its hits, not subscribers x
    papers per keyword slot."""
    n_subs = len(own)
    values = sp.csr_matrix(LEVEL_VALUES[levels])  # phrases x papers, mostly zero
    if weights is not None:
        values = sp.csr_matrix(values.multiply(weights[:, None]), dtype=np.float32)
    rows = [i for i, mine in enumerate(own) for _ in mine]
    cols = [k for mine in own for k in mine]
    membership = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                               shape=(n_subs, levels.shape[0]))
    total = membership @ values
    best = best_of_own(own, values)
    out: np.ndarray = ((1 - COVERAGE) * best + COVERAGE * total).toarray().astype(np.float32, copy=False)
    return out


def best_of_own(own: Sequence[Sequence[int]], values: sp.csr_matrix) -> sp.csr_matrix:
    """Per subscriber and paper, the largest of values (phrases x papers) over the subscriber's own
    rows: one sparse product per keyword slot."""
    best = sp.csr_matrix((len(own), values.shape[1]), dtype=np.float32)
    longest = max((len(mine) for mine in own), default=0)
    for slot in range(longest):
        subs = [i for i, mine in enumerate(own) if len(mine) > slot]
        pick = sp.csr_matrix((np.ones(len(subs), dtype=np.float32), (subs, [own[i][slot] for i in subs])),
                             shape=(len(own), values.shape[0]))
        best = best.maximum(pick @ values)
    return best


def score_keywords(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    space: features.FeatureSpace | None = None,
    paper_index: PaperIndex | None = None,
    agrees: np.ndarray | None = None,
) -> KeywordScores:
    """space: the idf in force (default: the papers' own); paper_index: the papers' words, when the
    caller scores them for several groups of subscribers; agrees: subscribers x papers, where
    meaning agrees with a paper's words (semantic.WORD_AGREEMENT), which a paper grounded by one
    specific word alone needs (None: no meaning, the word alone grounds it)."""
    n_subs, n_papers = len(subscribers), len(papers)
    if n_subs == 0 or n_papers == 0:
        empty = [KeywordHits(s.keywords, np.zeros((len(s.keywords), n_papers), dtype=bool)) for s in subscribers]
        zeros = np.zeros((n_subs, n_papers), dtype=np.float32)
        return KeywordScores(zeros, empty, empty, empty, zeros.copy(), zeros.copy(), zeros.copy())

    if space is None:
        space = features.FeatureSpace.from_texts([features.paper_text(p) for p in papers])
    vocab = sorted({k for s in subscribers for k in s.keywords})
    kw_index = {k: i for i, k in enumerate(vocab)}
    own = [[kw_index[k] for k in sub.keywords] for sub in subscribers]
    index = paper_index if paper_index is not None else PaperIndex(papers)
    words = word_scores(subscribers, index, space)
    levels, shares, held, specific_words = index.match_levels(vocab, lambda ws: word_specificity(ws, space) >= 1.0)
    phrases = phrase_scores(own, levels, specificity(vocab, space))
    grounded = (best_of_own(own, held) > GROUNDED_SHARE + 1e-6).toarray() | (phrases > 0)
    by_word = (best_of_own(own, specific_words) > 0).toarray()
    if agrees is not None:
        by_word &= agrees
    grounded |= by_word
    whole = MATCHES[levels]
    whole_hits, partial_hits = PhraseHits(whole), PhraseHits(shares & ~whole)
    matched = [KeywordHits(sub.keywords, whole_hits, r) for sub, r in zip(subscribers, own, strict=True)]
    related = [KeywordHits(sub.keywords, partial_hits, r) for sub, r in zip(subscribers, own, strict=True)]
    filed_hits = PhraseHits(levels == CATEGORY)
    labels = {k: arxiv_categories.label(arxiv_categories.named_by(k)) for k in vocab}
    filed = [KeywordHits(sub.keywords, filed_hits, r, labels) for sub, r in zip(subscribers, own, strict=True)]
    scores = phrases + WORDS_WEIGHT * words
    return KeywordScores(scores, matched, related, filed, phrases, words, np.where(grounded, scores, phrases))


def word_scores(subscribers: Sequence[Subscriber], index: PaperIndex, space: features.FeatureSpace) -> np.ndarray:
    """Subscribers x papers: BM25 of each subscriber's keyword words (each distinct word once) as a
    share of the ideal, a paper holding every word often enough to saturate. idf: the stored
    document frequencies (the day alone is too few papers on a small day)."""
    own_words = [sorted({w for k in s.keywords for w in features.tokens(k)}) for s in subscribers]
    vocab = sorted({w for mine in own_words for w in mine})
    if not vocab:
        return np.zeros((len(subscribers), index.n), dtype=np.float32)
    col = {w: i for i, w in enumerate(vocab)}
    idf = space.idf[features.unigram_columns(vocab)].astype(np.float32)
    rows = [si for si, mine in enumerate(own_words) for _ in mine]
    cols = [col[w] for mine in own_words for w in mine]
    membership = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                               shape=(len(subscribers), len(vocab)))
    ideal = np.asarray(membership @ (idf * (BM25_K1 + 1)), dtype=np.float32)
    out: np.ndarray = np.asarray(membership @ index.word_scores(vocab, idf), dtype=np.float32)
    out /= np.maximum(ideal, 1e-9)[:, None]
    return out
