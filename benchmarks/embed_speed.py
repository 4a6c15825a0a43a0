"""How long embedding a day of new papers takes: 2,000 papers (titles and abstracts) with the
default encoder, on this machine's CPU. The goal is under 2 minutes.

    HF_HUB_OFFLINE=1 python benchmarks/embed_speed.py [--n 2000] [--encoder NAME]

The papers are the demo listing's real arXiv titles and abstracts, repeated with a numbered suffix
so that every text is distinct (about 1,200 characters each, like a real day's listing).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from digest.ingest.fetch import SAMPLES_DIR
from digest.ingest.sources import parse_feed
from digest.rank import encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="papers to embed")
    ap.add_argument("--encoder", default=encoder.DEFAULT_ENCODER)
    args = ap.parse_args()

    listing = (SAMPLES_DIR / "arxiv-cs-2024-11-28.xml").read_bytes()
    papers = parse_feed(listing, kind="arxiv_rss", source_name="sample").papers
    texts = [f"{encoder.paper_text(papers[i % len(papers)])} ({i})" for i in range(args.n)]
    t0 = time.perf_counter()
    enc = encoder.load(args.encoder)
    assert enc is not None
    load_s = time.perf_counter() - t0
    enc.encode(texts[:8])  # warm-up: the first batch pays for lazy initialisation
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = enc.encode(texts)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    chars = sum(len(t) for t in texts) / len(texts)
    print(f"encoder {args.encoder} ({enc.dim} dims), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(f"model load: {load_s:.1f} s")
    print(f"embedded {len(vecs)} papers (mean {chars:.0f} characters) in {secs:.1f} s: "
          f"{len(vecs) / secs:.0f} papers/s; goal for 2,000: under 120 s -> "
          f"{'met' if secs * 2000 / len(vecs) < 120 else 'NOT met'}")
    # On a shared machine the wall time depends on the neighbours: the CPU time spent, spread over
    # the threads torch uses, is what the same work takes on idle cores.
    threads = torch.get_num_threads()
    print(f"CPU time {cpu:.1f} s over {threads} threads (load average {load}): about "
          f"{cpu / threads * 2000 / len(vecs):.0f} s for 2,000 papers on {threads} idle cores")


if __name__ == "__main__":
    main()
