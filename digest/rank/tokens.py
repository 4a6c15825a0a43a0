"""Words to tokens, the same for a subscriber's keywords and a paper's text: lower-cased words with
hyphens split, English stop words dropped (in the singular too) and a light plural fold ("models" ->
"model").

Kept apart from the feature space (digest.rank.features) so that checking a keyword on `digest
subscribe` does not load numpy, scipy and scikit-learn.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# scikit-learn's ENGLISH_STOP_WORDS (BSD-3-Clause; from the Glasgow Information Retrieval Group's list),
# copied so that tokens need no scikit-learn; tests/rank/test_rank.py checks that the two stay equal.
GENERAL_STOP_WORDS = frozenset((
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "all", "almost", "alone", "along",
    "already", "also", "although", "always", "am", "among", "amongst", "amoungst", "amount", "an", "and",
    "another", "any", "anyhow", "anyone", "anything", "anyway", "anywhere", "are", "around", "as", "at", "back",
    "be", "became", "because", "become", "becomes", "becoming", "been", "before", "beforehand", "behind", "being",
    "below", "beside", "besides", "between", "beyond", "bill", "both", "bottom", "but", "by", "call", "can",
    "cannot", "cant", "co", "con", "could", "couldnt", "cry", "de", "describe", "detail", "do", "done", "down",
    "due", "during", "each", "eg", "eight", "either", "eleven", "else", "elsewhere", "empty", "enough", "etc",
    "even", "ever", "every", "everyone", "everything", "everywhere", "except", "few", "fifteen", "fifty", "fill",
    "find", "fire", "first", "five", "for", "former", "formerly", "forty", "found", "four", "from", "front",
    "full", "further", "get", "give", "go", "had", "has", "hasnt", "have", "he", "hence", "her", "here",
    "hereafter", "hereby", "herein", "hereupon", "hers", "herself", "him", "himself", "his", "how", "however",
    "hundred", "i", "ie", "if", "in", "inc", "indeed", "interest", "into", "is", "it", "its", "itself", "keep",
    "last", "latter", "latterly", "least", "less", "ltd", "made", "many", "may", "me", "meanwhile", "might",
    "mill", "mine", "more", "moreover", "most", "mostly", "move", "much", "must", "my", "myself", "name", "namely",
    "neither", "never", "nevertheless", "next", "nine", "no", "nobody", "none", "noone", "nor", "not", "nothing",
    "now", "nowhere", "of", "off", "often", "on", "once", "one", "only", "onto", "or", "other", "others",
    "otherwise", "our", "ours", "ourselves", "out", "over", "own", "part", "per", "perhaps", "please", "put",
    "rather", "re", "same", "see", "seem", "seemed", "seeming", "seems", "serious", "several", "she", "should",
    "show", "side", "since", "sincere", "six", "sixty", "so", "some", "somehow", "someone", "something",
    "sometime", "sometimes", "somewhere", "still", "such", "system", "take", "ten", "than", "that", "the", "their",
    "them", "themselves", "then", "thence", "there", "thereafter", "thereby", "therefore", "therein", "thereupon",
    "these", "they", "thick", "thin", "third", "this", "those", "though", "three", "through", "throughout", "thru",
    "thus", "to", "together", "too", "top", "toward", "towards", "twelve", "twenty", "two", "un", "under", "until",
    "up", "upon", "us", "very", "via", "was", "we", "well", "were", "what", "whatever", "when", "whence",
    "whenever", "where", "whereafter", "whereas", "whereby", "wherein", "whereupon", "wherever", "whether",
    "which", "while", "whither", "who", "whoever", "whole", "whom", "whose", "why", "will", "with", "within",
    "without", "would", "yet", "you", "your", "yours", "yourself", "yourselves",
))
# Words of that general-English list that name things in science, kept: dropped, "recommender
# systems", "thin films", "top quark", "side-channel attacks" and "fire detection" lost the word
# that makes them, and a paper titled "A Recommender System" did not match "recommender systems"
# ("system" was dropped, the plural "systems" kept). How common they are is left to idf.
SCIENCE_WORDS = frozenset((
    "system", "thin", "thick", "top", "bottom", "side", "front", "back", "fire", "bill", "mill", "interest",
    "full", "empty",
))
STOP_WORDS = GENERAL_STOP_WORDS - SCIENCE_WORDS


def _fold(word: str) -> str:
    # Plural fold only; real stemming would merge "learning"/"learned" and blur phrase matches.
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=1 << 18)
def _normalised(word: str) -> str:
    """The token a raw word becomes, "" when it is dropped. Memoised: a day's text repeats the same
    few thousand words, and folding each occurrence again was most of the cost of hashing it."""
    if word in STOP_WORDS or len(word) <= 1:
        return ""
    folded = _fold(word.split("'")[0])
    # A plural whose singular is a stop word ("shows", "names") is dropped as the singular is: the
    # two forms of a word must be the same token or none.
    return "" if folded in STOP_WORDS else folded


def tokens(text: str) -> list[str]:
    return [t for t in map(_normalised, _WORD.findall(text.lower().replace("-", " "))) if t]


# Where one clause ends and the next begins: words on either side are not one phrase. A comma, a
# full stop or a bracket between two words, with the stop words around it dropped, had made a
# phrase of them: "the corpus of their speeches, a synthesis can be drawn" held "speech synthesis".
_CLAUSE_END = re.compile(r"[,;:.!?()\[\]{}]+")
CLAUSE_MARK = "|"  # stands between clauses in joined text: no token holds it


def clause_tokens(text: str) -> list[str]:
    """tokens(text), with CLAUSE_MARK where a clause ends and another begins."""
    out: list[str] = []
    for part in _CLAUSE_END.split(text):
        toks = tokens(part)
        if toks:
            if out:
                out.append(CLAUSE_MARK)
            out += toks
    return out


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    # PyStemmer: the Snowball project's own C stemmers. The pure-Python snowballstemmer gives the
    # same stems (checked on the 12,211 words of a real arXiv day) 15x slower, and stemming a
    # day's words was most of the keyword index's cost in the 10k x 2k benchmark.
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=1 << 18)
def stem(token: str) -> str:
    """The Snowball (Porter 2) stem of a token: "recommender" and "recommendation" both become
    "recommend". Only for matching a keyword's words in other forms; the features stay unstemmed."""
    out: str = _stemmer().stemWord(token)
    return out


def stems(toks: Sequence[str]) -> list[str]:
    return [stem(t) for t in toks]
