"""The day's ranking of two source trees, on the same workload, in alternation.

    git worktree add /tmp/digest-before <commit>
    python benchmarks/plan_compare.py --baseline /tmp/digest-before [--subscribers 2000 --papers 2000]

One workload database is built (benchmarks/workload.py: real listings, real CiteULike-a readers
with their stars and trained models); then, in rounds, each tree plans the same day on its own copy
of it (`DigestPipeline.plan`, in a fresh process that imports that tree's package), a few steady days
each. Alternating the trees spreads the machine's changing load over both; the figure per tree is
its fastest steady day, and the ratio is this tree's over the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Run in the child: import the tree's digest (first on sys.path), plan the day `days` times on the
# database copy, print the seconds of each as JSON. The first plan retrains the stale models; the
# later ones are the steady days a daily run sees.
_CHILD = """
import json, sys, time
from datetime import datetime
try:
    from digest.wiring import App  # where the app is built since the house restructuring
except ImportError:
    from digest.app import App
from digest.config import Settings
db, encoder, days, stamp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
settings = Settings.model_validate({"state_dir": str(__import__("pathlib").Path(db).parent),
    "database": {"url": f"sqlite:///{db}"}, "model": {"encoder": encoder},
    "web": {"base_url": "https://digest.example.org", "secret_key": "benchmark-signing-key-0123456789"}})
day = datetime.fromisoformat(stamp)
app = App.open(settings)
pipe = app.pipeline()
subs = pipe.active_subscribers()
out = []
for _ in range(days):
    t0 = time.perf_counter()
    pipe.plan(subs, day.date(), day)
    out.append(time.perf_counter() - t0)
app.close()
print(json.dumps(out))
"""


def _plan(tree: Path, db: Path, encoder: str, days: int, day: datetime) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(db), encoder, str(days), day.isoformat()],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"plan in {tree} failed:\n{proc.stderr[-2000:]}")
    times: list[float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="the other source tree (a git worktree)")
    ap.add_argument("--subscribers", type=int, default=2000)
    ap.add_argument("--papers", type=int, default=2000)
    ap.add_argument("--encoder", default="static", help="model.encoder for both: static (the default install) or none")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--days", type=int, default=4, help="plans per process; the first retrains, the rest are steady")
    args = ap.parse_args()

    from benchmarks.workload import build
    from digest.store.engine import open_engine

    work = Path(tempfile.mkdtemp(prefix="digest-compare-"))
    try:
        db = work / "workload.db"
        engine = open_engine(f"sqlite:///{db}")
        load = build(engine, args.subscribers, args.papers)
        engine.dispose()
        trees = {"this tree": ROOT, "baseline": args.baseline.resolve()}
        steady: dict[str, list[float]] = {name: [] for name in trees}
        for r in range(args.rounds):
            for name, tree in trees.items():
                copy = work / f"{name.replace(' ', '-')}-{r}" / "digest.db"
                copy.parent.mkdir()
                shutil.copy(db, copy)
                times = _plan(tree, copy, args.encoder, args.days, load.digest_day)
                steady[name] += times[1:]
                print(f"round {r + 1} {name}: " + ", ".join(f"{t:.2f}" for t in times) + " s", flush=True)
        best = {name: min(ts) for name, ts in steady.items()}
        print(f"{args.subscribers} readers x {args.papers} papers, encoder {args.encoder}, fastest steady day: "
              f"this tree {best['this tree']:.2f} s, baseline {best['baseline']:.2f} s, "
              f"ratio {best['this tree'] / best['baseline']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
