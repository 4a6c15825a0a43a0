"""A paper's gist: the one sentence of its abstract that says what the paper does.

An abstract usually opens with background ("Large language models have ...") and states its own
contribution later ("We propose ...", "This paper introduces ..."). The gist is the sentence with
the strongest sign of a contribution; an abstract without one falls back to its first sentence that
speaks of the work itself ("our", "we"), else its first sentence. Plain rules on the text: offline,
no model, microseconds a paper.
"""

from __future__ import annotations

import functools
import re

from digest.text import cut_at_word

GIST_CHARS = 300  # a line or two in the email

# Words that end in a period without ending the sentence.
_ABBREVIATIONS = frozenset({
    "al", "etc", "fig", "figs", "eq", "eqs", "eqn", "eqns", "ref", "refs", "sec", "cf", "vs", "resp", "approx",
    "no", "nos", "dr", "prof", "mr", "ms", "st", "ca", "viz", "tab", "thm", "lem", "def", "prop", "cor", "ch",
    "vol", "pp", "ed", "eds", "dept", "univ", "inc", "ltd", "jr", "sr",
})
# A candidate boundary: end punctuation, optional closing quote or bracket, whitespace, then what can
# open a sentence (a capital, a digit, a bracket, a quote or TeX math).
_BOUNDARY = re.compile(r"([.!?])[\"')\]]*\s+(?=[\"'(\[$\\]?[A-Z0-9])")
_LAST_WORD = re.compile(r"([A-Za-z]+)\.?$")

# Who does something in a contribution: the authors, or their paper; then an optional adverb.
_WHO = (r"\b(?:we|this (?:paper|work|letter|article|study|note|manuscript|thesis)|the present (?:paper|work|study)|"
        r"here,? we|in this (?:paper|work|letter|article|study|note),? we)"
        r"(?: (?:first|then|also|further|hence|therefore|thus|here|now|newly|formally|systematically|"
        r"comprehensively|experimentally|theoretically|numerically))? ")
# Signs of the paper's own contribution, strongest first; a sentence's score is its best sign.
_CONTRIBUTION = [
    (3.0, re.compile(_WHO + r"(?:propose|present|introduce|develop|design|devise|construct|formulate|establish|"
                     r"prove|derive|put forward|offer|build|create|release|contribute|report|unveil|"
                     r"describe a|describe an|provide a|provide an|proposes|presents|introduces|develops|"
                     r"designs|establishes|proves|derives|reports)\b", re.I)),
    (2.5, re.compile(r"\b(?:to (?:address|tackle|overcome|bridge|fill|solve|close) (?:this|these|the|such)"
                     r".{0,60}?,? we|we (?:call|term|dub|name) |(?:aims?|goal is|purpose of this \w+ is|"
                     r"objective of this \w+ is) to \w+)", re.I)),
    (2.0, re.compile(_WHO + r"(?:show|demonstrate|find|study|investigate|explore|examine|analy[sz]e|consider|"
                     r"characteri[sz]e|evaluate|measure|compute|calculate|obtain|identify|reveal|"
                     r"discuss|argue|extend|generalize|generalise|apply|use|employ|perform|conduct|"
                     r"focus|address|tackle|revisit|shows|demonstrates|studies|investigates|explores|"
                     r"examines|analyzes|analyses|considers|addresses|extends|describes|provides)\b", re.I)),
    (1.5, re.compile(r"\b(?:this (?:paper|work|letter|article|study)|in this (?:paper|work|letter|article|"
                     r"study)|here,? we|our (?:method|approach|model|framework|algorithm|system|"
                     r"technique|analysis|results?|findings|contribution))\b", re.I)),
]
# Signs of background or of a result's detail rather than the contribution.
_BACKGROUND = re.compile(r"^(?:however|recently|in recent years|despite|although|while|existing|"
                         r"traditional|conventional|current|previous|prior|many|most|there (?:is|are|has|"
                         r"have))\b", re.I)
_OWN_WORK = re.compile(r"\b(?:we|our|this (?:paper|work|letter|article|study))\b", re.I)
# The authors naming their own paper ("In this paper", "Here we", "This work"): the sentence written
# to say what the paper does, preferred over a "we derive" of a detail further on.
_SELF_REFERENCE = re.compile(r"\b(?:(?:in )?this (?:\w+ )?(?:paper|work|letter|article|study|note)|here,? we|"
                             r"the present (?:paper|work|study))\b", re.I)
# Openers of a sentence that adds to one before it ("Additionally, we construct ..."), or draws on a
# result ("Based on the results, we present takeaways"): rarely the paper's main contribution.
_SECONDARY = re.compile(r"^(?:additionally|moreover|furthermore|finally|also|besides|in addition|then|next|"
                        r"subsequently|we also|based on (?:the|these|our) (?:results|findings)|"
                        r"as a (?:by-?product|consequence))\b", re.I)


def sentences(text: str) -> list[str]:
    """The abstract's sentences, not cut after "e.g.", "et al.", "Fig.", an initial or a decimal."""
    text = " ".join(text.split())
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end(1)
        if m.group(1) == ".":
            word = _LAST_WORD.search(text[start:end])
            if word is not None:
                last = word.group(1)
                if last.lower() in _ABBREVIATIONS or len(last) == 1:
                    continue  # "et al. Smith", "J. Smith", "e.g. Monte Carlo": the sentence goes on
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _score(sentence: str) -> float:
    score = max((weight for weight, pattern in _CONTRIBUTION if pattern.search(sentence)), default=0.0)
    if score and _BACKGROUND.search(sentence):
        score -= 1.0  # "However, we show ..." still counts, below a plain "We propose ..."
    if score and _SELF_REFERENCE.search(sentence):
        score += 1.0
    if score and _SECONDARY.search(sentence):
        score -= 1.5
    if score and sentence.rstrip().endswith("?") or "?" in sentence[:-1] and ": can we" in sentence:
        score -= 1.5  # a question poses the problem; the answer is the contribution
    return score


@functools.lru_cache(maxsize=4096)
def gist(abstract: str, limit: int = GIST_CHARS) -> str:
    """The sentence of abstract that states what the paper does (see the module's docstring), cut to
    limit characters at a word; "" for an empty abstract."""
    found = sentences(abstract)
    if not found:
        return ""
    scored = [(_score(s), -i, s) for i, s in enumerate(found)]
    best_score, _, best = max(scored)
    if best_score <= 0:
        best = next((s for s in found if _OWN_WORK.search(s)), found[0])
    return cut_at_word(best, limit)
