"""Meaning without torch: static word-piece vectors distilled from the default sentence encoder.

Each word piece of all-MiniLM-L6-v2's vocabulary was run through the model alone once
(contrib/distill_static_vectors.py), its output centred, reduced by PCA and weighted down when the
piece is common (the vocabulary is roughly in order of frequency). A text's vector is the mean of
its pieces' vectors, unit length. It is far cruder than the encoder, but it knows that "docking"
and "binding" or "phylogeny" and "evolution" are related, which tf-idf cannot: in the CiteULike-a
replay it lifts the default install's nDCG@10 by 8 to 9% warm (README, "How good are the picks").

The vectors ship with the package (digest/rank/data/), so the default install ranks by meaning
with numpy alone; the embed extra's real encoder is used instead whenever it is installed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

NAME = "static-minilm"
DATA = Path(__file__).with_name("data") / "static-minilm.npz"
MAX_WORD = 100  # longer "words" (base64, sequences) get no pieces, as in BERT's tokeniser
MAX_TEXT = 20_000  # characters read of one text: an abstract is a few thousand
_WORD = re.compile(r"[^\W_]+|[^\w\s]|_", re.UNICODE)


def _plain(text: str) -> str:
    """Lower case without accents: the uncased vocabulary's form."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


class WordPieces:
    """Greedy longest-match word-piece splitting over a fixed vocabulary ("##" marks a continuation)."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.index = {piece: i for i, piece in enumerate(vocabulary)}
        self.pieces = functools.lru_cache(maxsize=1 << 17)(self._pieces)

    def _pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD:
            return ()
        out: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.index.get(piece)
                if found is not None:
                    out.append(found)
                    break
                end -= 1
            else:  # no piece fits: the word is unknown, as a whole
                return ()
            start = end
        return tuple(out)

    def ids(self, text: str) -> list[int]:
        out: list[int] = []
        for word in _WORD.findall(_plain(text[:MAX_TEXT])):
            out.extend(self.pieces(word))
        return out


class StaticEncoder:
    """The encoder interface of digest.rank.encoder.Encoder, on static vectors."""

    def __init__(self, vocabulary: Sequence[str], vectors: np.ndarray, name: str = NAME) -> None:
        if len(vocabulary) != vectors.shape[0]:
            raise ValueError(f"static vectors: {len(vocabulary)} pieces but {vectors.shape[0]} vectors")
        self.name = name
        self.dim = int(vectors.shape[1])
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.tokens = WordPieces(vocabulary)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (float32); a text with no known piece gets a zero row."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.tokens.ids(text)
            if ids:
                vec = self.vectors[ids].mean(axis=0)
                norm = float(np.linalg.norm(vec))
                if norm > 0:
                    out[row] = vec / norm
        return out

def save(path: Path, vocabulary: Sequence[str], vectors: np.ndarray) -> None:
    """int8 per dimension with one scale each: a quarter of float32, and the ranking cannot tell."""
    scale = np.abs(vectors).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.round(vectors / scale).astype(np.int8)
    np.savez_compressed(path, vocabulary=np.array("\n".join(vocabulary)), vectors=q, scale=scale.astype(np.float32))


class Unreadable(Exception):
    """The vectors' file is missing or broken; the message names it."""


def load(path: Path | None = None) -> StaticEncoder:
    """The bundled vectors (or those at path). Their name carries a hash of the file: vectors stored
    by an earlier release's file are not mixed with these (the store keys paper vectors by encoder
    name). Raises Unreadable for a missing or broken file."""
    return _load(path or DATA)


@functools.lru_cache(maxsize=2)
def _load(path: Path) -> StaticEncoder:
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data)) as z:
            vocabulary = str(z["vocabulary"]).split("\n")
            vectors = z["vectors"].astype(np.float32) * z["scale"][None, :]
        return StaticEncoder(vocabulary, vectors, name=f"{NAME}-{hashlib.sha256(data).hexdigest()[:8]}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise Unreadable(f"the static vectors {path} could not be read ({exc})") from None
