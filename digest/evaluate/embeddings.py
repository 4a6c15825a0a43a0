"""Sentence embeddings of an eval corpus, cached on disk so repeated evals do not re-embed 17k papers.

One file per model under the cache directory (DIGEST_CACHE_DIR, else ~/.cache/digest), holding text
keys (a hash of each text) and float16 vectors: a changed or added paper is embedded, the rest read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from digest.domain import Paper
from digest.evaluate.protocol import EvalCorpus
from digest.rank import encoder as enc
from digest.rank.semantic import unit_rows

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    env = os.environ.get("DIGEST_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "digest"


def corpus_texts(corpus: EvalCorpus) -> list[str]:
    # The same text the daily run embeds for a stored paper.
    return [enc.paper_text(Paper(id=i, canonical_id=str(i), title=t, abstract=a))
            for i, (t, a) in enumerate(zip(corpus.titles, corpus.abstracts, strict=True))]


def corpus_embeddings(corpus: EvalCorpus, encoder: enc.TextEncoder, directory: Path | None = None) -> np.ndarray:
    """papers x dim unit vectors (float32), from the cache where the text was embedded before."""
    texts = corpus_texts(corpus)
    keys = [enc.text_key(t) for t in texts]
    path = (directory or cache_dir()) / f"embeddings-{enc.text_key(encoder.name)}.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        try:
            with np.load(path) as z:
                known = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
        except (OSError, ValueError, KeyError) as exc:  # a broken cache is rebuilt, not fatal
            log.warning("embedding cache %s unreadable (%s): re-embedding", path, exc)
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    if missing:
        log.info("embedding %d papers with %s", len(missing), encoder.name)
        vecs = encoder.encode([t for _, t in missing])
        for (k, _), v in zip(missing, vecs, strict=True):
            known[k] = v.astype(np.float16)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(known)), vectors=np.stack(list(known.values())).astype(np.float16))
        tmp.replace(path)
    out = np.stack([known[k] for k in keys]).astype(np.float32)
    return unit_rows(out)
