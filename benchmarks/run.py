"""The daily run at scale: N subscribers x M new papers, phase by phase, against baselines.

    python benchmarks/run.py --subscribers 10000 --papers 2000 [--json FILE]

Measured in one process, in this order (see workload.py for the data):
  parse, store        the day's real feeds parsed from bytes; the new papers stored
  features           the candidates hashed and weighted, the keyword index, paper-paper cosines
  reading            stored models, labels, impressions and liked papers read, per 2,000 subscribers
  training           the models whose subscribers gave new feedback retrained and stored
  scoring            keyword prior + models + liked-centroid, one sparse product per 2,000 subscribers
  selection          top-k with MMR diversity and reason lines, for 2,000 subscribers at once
ranking = features + reading + scoring + selection (the target's definition); retraining is added
for the ratio to the naive baseline, which trains a model for every subscriber.
  render, delivery   every digest rendered and composed, then sent over SMTP to a local sink
  end to end         parse + store + DigestPipeline.run (rank, render, ledger, SMTP) on a copy of the database
Baselines in the same run: the naive ranking (one LinearSVC per subscriber over all stored papers,
scored in a Python loop: arxiv-sanity-lite's way), timed on a sample and scaled to N; and the
sink's raw throughput (the same message bytes in a tight smtplib loop on one connection).
"""

from __future__ import annotations

import argparse
import email.policy
import json
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import naive, workload  # noqa: E402
from digest.config import Settings  # noqa: E402
from digest.domain import OutgoingMessage, Paper, Pick, Subscriber  # noqa: E402
from digest.mail.compose import compose_message  # noqa: E402
from digest.mail.transport import send_all  # noqa: E402
from digest.process.gcpause import paused_gc  # noqa: E402
from digest.rank import features  # noqa: E402
from digest.rank.ranker import SCORE_CHUNK, DayPapers, LikedPapers, RankOptions, score_all, select_all  # noqa: E402
from digest.store import learning  # noqa: E402
from digest.store import papers as paper_store  # noqa: E402
from digest.store import subscribers as sub_store  # noqa: E402
from digest.store.engine import open_engine  # noqa: E402
from digest.training.models import KnownPapers, read_group, retrain_stale, states_of  # noqa: E402
from digest.training.terms import StoredTerms  # noqa: E402
from digest.wiring import App  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """benchmarks/sink.py in its own process."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("sink.py")), str(self.port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the SMTP sink did not start")

    def stop(self) -> int:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return int(out.split()[0])


def _settings(state: Path, db: Path, port: int, rank_processes: int = 1, encoder: str = "none") -> Settings:
    return Settings.model_validate({
        "dispatch": {"rank_processes": rank_processes},
        "state_dir": str(state),
        "database": {"url": f"sqlite:///{db}"},
        "delivery": {"method": "smtp", "from_addr": "digest@bench.example.org"},
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        "web": {"base_url": "https://digest.example.org", "secret_key": "benchmark-signing-key-0123456789"},
        # tf-idf alone unless asked: the day's embedding is timed on its own (--encoder), ranking with
        # an encoder by --rank-encoder
        "model": {"encoder": encoder},
    })


def _plan_twice(settings: Settings, subs: list[Subscriber], day: datetime) -> tuple[float, float]:
    """Seconds of two DigestPipeline.plan runs of the day in a row: the first, then a steady one."""
    app = App.open(settings)
    try:
        pipe = app.pipeline()
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            pipe.plan(subs, day.date(), day)
            times.append(time.perf_counter() - t0)
    finally:
        app.close()
    return times[0], times[1]


def sink_raw(port: int, data: bytes, count: int) -> float:
    """Messages per second of the sink alone: the same bytes, one connection, nothing else."""
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    conn.ehlo()
    t0 = time.perf_counter()
    for _ in range(count):
        conn.sendmail("digest@bench.example.org", ["reader@bench.example.org"], data)
    elapsed = time.perf_counter() - t0
    conn.quit()
    return count / elapsed


def embed_day(engine: object, papers: list[Paper], name: str) -> float:
    """Seconds to embed the day's papers and store their vectors (what a daily run with the encoder
    adds before ranking; the liked papers' vectors are already stored from earlier days)."""
    from digest.rank import encoder
    from digest.training.meaning import StoredMeaning

    enc = encoder.load(name)
    assert enc is not None
    t0 = time.perf_counter()
    StoredMeaning(engine, enc).papers(papers)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def _worker_counts(spec: str) -> list[int]:
    return [int(x) for x in spec.split(",") if x.strip()]


def celery_day(work: Path, db: Path, port: int, broker: str, workers: int, now: datetime) -> tuple[float, int]:
    """The day's digests through Celery: shards on `workers` worker processes (one pool process each).

    Timed from the dispatch to the last shard's answer; the workers are started and warm first.
    """
    import os
    import signal

    import redis

    from digest.dispatch.run import dispatch_date

    redis.Redis.from_url(broker).flushdb()
    cfg = work / f"celery{workers}.yaml"
    cfg.write_text(
        f"state_dir: {work / 'state'}\n"
        f"database:\n  url: sqlite:///{db}\n"
        "delivery:\n  method: smtp\n  from_addr: digest@bench.example.org\n"
        f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
        "web:\n  base_url: https://digest.example.org\n  secret_key: benchmark-signing-key-0123456789\n"
        f"dispatch:\n  mode: celery\n  broker_url: {broker}\n  shard_size: 500\n"
        "model:\n  encoder: none\n"
    )
    env = {**os.environ, "DIGEST_CONFIG": str(cfg)}
    procs = [subprocess.Popen([sys.executable, "-m", "digest", "worker", "--concurrency", "1", "--loglevel", "WARNING"],
                              env=env, start_new_session=True) for _ in range(workers)]
    try:
        time.sleep(5)  # the workers connect and fork their pool
        from digest.config import load_settings

        app = App.open(load_settings(cfg))
        t0 = time.perf_counter()
        report = dispatch_date(app, now.date(), now)
        seconds = time.perf_counter() - t0
        app.close()
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    return seconds, report.count("sent")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=2_000)
    ap.add_argument("--stale-share", type=float, default=0.1, help="share of subscribers with new feedback")
    ap.add_argument("--naive-sample", type=int, default=40, help="subscribers the naive baseline is timed on")
    ap.add_argument("--no-delivery", action="store_true", help="rank only: no render, delivery or end to end")
    ap.add_argument("--celery-workers", default="", metavar="1,2",
                    help="also run the day through Celery with these numbers of workers (Redis on 127.0.0.1)")
    ap.add_argument("--broker", default="redis://127.0.0.1:6379/14", help="broker for --celery-workers")
    ap.add_argument("--encoder", default="none", metavar="NAME",
                    help="also time embedding the day's papers with this sentence encoder (the embed extra)")
    ap.add_argument("--rank-encoder", default="none", metavar="NAME",
                    help="also rank through the pipeline with this encoder (static: the default install's "
                         "bundled vectors): the first run, which embeds and retrains everything, then a steady day")
    ap.add_argument("--rank-processes", type=int, default=1, metavar="N",
                    help="also rank in N forked processes (dispatch.rank_processes), and run end to end so")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    db = work / "bench.db"
    engine = open_engine(f"sqlite:///{db}")
    print(f"building the workload: {args.subscribers} subscribers x {args.papers} papers ...", flush=True)
    w = workload.build(engine, args.subscribers, args.papers, stale_share=args.stale_share)
    engine.dispose()
    print(f"  {w.n_new_papers} new papers ({w.feed_entries} feed entries parsed), {w.n_past_papers} past papers, "
          f"{w.n_events} feedback events, {w.n_distinct_users} distinct CiteULike users, "
          f"{w.n_stale} models to retrain; setup {w.setup_s:.1f} s", flush=True)
    if args.rank_processes > 1:
        shutil.copy(db, work / "parallel.db")
    if args.rank_encoder != "none":
        shutil.copy(db, work / "encoder.db")
    if not args.no_delivery:
        shutil.copy(db, work / "e2e.db")
        for n in _worker_counts(args.celery_workers):
            shutil.copy(db, work / f"celery{n}.db")

    # ---- ranking, phase by phase -------------------------------------------------------------
    engine = open_engine(f"sqlite:///{db}")
    t: dict[str, float] = {"parse": w.parse_s, "store": w.store_s}
    day = w.digest_day
    with engine.connect() as conn:
        subs = sub_store.list_subscribers(conn, receiving_only=True)
        cands = paper_store.candidate_papers(conn, since=day, until=day + timedelta(days=1),
                                             include_replacements=False)
        stats = learning.load_df(conn, features.N_FEATURES)
    assert stats is not None
    space = features.FeatureSpace.from_stats(stats[1], stats[0], terms=StoredTerms(engine))
    options = RankOptions(top_k=10, min_score=0.0, diversity=0.3)
    t0 = time.perf_counter()
    day_papers = DayPapers.build(cands, space)
    t["features"] = time.perf_counter() - t0
    if args.encoder != "none":
        t["embedding"] = embed_day(engine, cands, args.encoder)
    ids = [p.id for p in cands if p.id is not None]
    picks_all: list[tuple[Subscriber, list[Pick]]] = []
    for phase in ("reading", "training", "scoring", "selection"):
        t[phase] = 0.0
    known = KnownPapers()
    for start in range(0, len(subs), SCORE_CHUNK):
        with paused_gc():  # as DigestPipeline.plan ranks a group
            t0 = time.perf_counter()
            group = read_group(engine, subs[start:start + SCORE_CHUNK], known=known, ranked=ids)
            t1 = time.perf_counter()
            retrain_stale(engine, group, space, day)
            t2 = time.perf_counter()
            states = states_of(group, ids)
            liked = LikedPapers.build([[p for _, p in st.liked] for st in states], space)
            disliked = (LikedPapers.build([st.disliked for st in states], space)
                        if any(st.disliked for st in states) else None)
            scored = score_all(states, day_papers, space, options, liked, disliked)
            t3 = time.perf_counter()
            chosen = select_all(states, day_papers, options, scored, liked)
            picks_all += [(st.subscriber, p) for st, p in zip(states, chosen, strict=True)]
            t4 = time.perf_counter()
            t["reading"] += t1 - t0
            t["training"] += t2 - t1
            t["scoring"] += t3 - t2
            t["selection"] += t4 - t3
    engine.dispose()
    # The target's "ranking": features, scoring (with reading the stored models it scores with)
    # and selection. Retraining the models that got new feedback is timed apart, and added below.
    ranking_s = t["features"] + t["reading"] + t["scoring"] + t["selection"]
    ranking_with_training_s = ranking_s + t["training"]
    n_picks = sum(len(p) for _, p in picks_all)

    # ---- the same ranking in forked processes (DigestPipeline.plan, dispatch.rank_processes) -----
    parallel: dict[str, float] = {}
    if args.rank_processes > 1:
        # The first plan retrains the stale models, as the phases above did; the second has nothing
        # stale: features, reading, scoring, selection.
        parallel["with_training"], parallel["ranking"] = _plan_twice(
            _settings(work / "state", work / "parallel.db", 25, args.rank_processes), subs, day)

    # ---- the same ranking with an encoder (the default install: the bundled static vectors) ------
    with_encoder: dict[str, float] = {}
    if args.rank_encoder != "none":
        # The first plan embeds every paper it needs and retrains every model with the dims; the
        # second is a steady day: vectors stored, nothing stale.
        with_encoder["first_run"], with_encoder["ranking"] = _plan_twice(
            _settings(work / "state", work / "encoder.db", 25, encoder=args.rank_encoder), subs, day)

    # ---- the naive baseline on a sample --------------------------------------------------------
    naive_shared, naive_per_sub = naive.time_sample(db, subs, cands, args.naive_sample, top_k=options.top_k)
    naive_n = min(args.naive_sample, len(subs))
    naive_total = naive_shared + naive_per_sub * len(subs)

    result: dict[str, object] = {
        "subscribers": len(subs), "papers": len(cands), "stale_models": w.n_stale, "picks": n_picks,
        "phases_s": {k: round(v, 3) for k, v in t.items()},
        "ranking_s": round(ranking_s, 3),
        "ranking_with_training_s": round(ranking_with_training_s, 3),
        "naive_sample": naive_n, "naive_ranking_s": round(naive_total, 1),
        "speedup_vs_naive": round(naive_total / ranking_with_training_s, 1),
        "rank_processes": args.rank_processes,
    }

    if with_encoder:
        result.update({"encoder": args.rank_encoder, "ranking_encoder_s": round(with_encoder["ranking"], 3),
                       "ranking_encoder_first_run_s": round(with_encoder["first_run"], 3)})
    if parallel:
        result.update({"ranking_parallel_s": round(parallel["ranking"], 3),
                       "ranking_parallel_with_training_s": round(parallel["with_training"], 3)})

    # ---- render, delivery, sink, end to end ----------------------------------------------------
    if not args.no_delivery:
        sink = Sink()
        try:
            app = App.open(_settings(work / "state", db, sink.port))
            pipe = app.pipeline()
            now = datetime.combine(day.date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
            t0 = time.perf_counter()
            messages = []
            for n, (sub, picks) in enumerate(picks_all):
                rendered = pipe.render(sub, picks, day.date(), len(cands))
                message_id = f"<bench-{n}@bench.example.org>"
                msg = compose_message(rendered, from_addr=pipe.messages.from_addr, from_name=pipe.messages.from_name,
                                      to_addr=sub.email, message_id=message_id, date=now,
                                      unsubscribe_url=pipe.messages.links.unsubscribe_url(sub.id))
                messages.append(OutgoingMessage(n, sub.email, message_id, msg.as_bytes(policy=email.policy.SMTP)))
            t["render"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            outcomes = send_all(app.transport(), messages)
            t["delivery"] = time.perf_counter() - t0
            app.close()
            sent = sum(o.status == "sent" for o in outcomes)
            raw = sink_raw(sink.port, messages[0].data, min(len(messages), 5000))

            app = App.open(_settings(work / "state", work / "e2e.db", sink.port, args.rank_processes))
            t0 = time.perf_counter()
            report = app.pipeline().run(day.date(), now)
            run_s = time.perf_counter() - t0
            app.close()
            e2e_sent = report.count("sent")

            celery_runs = {}
            for n in _worker_counts(args.celery_workers):
                seconds, n_sent = celery_day(work, work / f"celery{n}.db", sink.port, args.broker, n, now)
                celery_runs[str(n)] = {"seconds": round(seconds, 2), "sent": n_sent,
                                       "msgs_per_s": round(n_sent / seconds, 1)}
                print(f"  celery, {n} worker(s): {n_sent} sent in {seconds:.1f} s", flush=True)
        finally:
            received = sink.stop()
        result.update({
            "phases_s": {k: round(v, 3) for k, v in t.items()},
            "delivered": sent, "delivery_msgs_per_s": round(sent / t["delivery"], 1),
            "sink_raw_msgs_per_s": round(raw, 1), "delivery_vs_sink_raw": round(sent / t["delivery"] / raw, 3),
            "mean_message_kb": round(float(np.mean([len(m.data) for m in messages])) / 1024, 1),
            "end_to_end_s": round(w.parse_s + w.store_s + t.get("embedding", 0.0) + run_s, 2),
            "end_to_end_sent": e2e_sent,
            "sink_received": received,
        })
        if celery_runs:
            result["celery"] = celery_runs
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    shutil.rmtree(work, ignore_errors=True)

    print("\nphases (s): " + "  ".join(f"{k} {v:.2f}" for k, v in t.items()))
    print(f"ranking (features+reading+scoring+selection): {ranking_s:.2f} s for {len(subs)} subscribers; "
          f"with retraining {w.n_stale} models: {ranking_with_training_s:.2f} s")
    if with_encoder:
        print(f"ranking with the {args.rank_encoder} encoder (one process): {with_encoder['ranking']:.2f} s; "
              f"its first run (embedding, and retraining every model with the dims): "
              f"{with_encoder['first_run']:.2f} s")
    if parallel:
        print(f"ranking in {args.rank_processes} processes: {parallel['ranking']:.2f} s; with retraining "
              f"{w.n_stale} models: {parallel['with_training']:.2f} s")
    print(f"naive ranking (LinearSVC per subscriber, timed on {naive_n}, scaled): {naive_total:.1f} s "
          f"-> ours {naive_total / ranking_with_training_s:.0f}x faster (retraining included)")
    if not args.no_delivery:
        print(f"delivery: {result['delivery_msgs_per_s']} msgs/s vs sink raw {result['sink_raw_msgs_per_s']} msgs/s "
              f"({float(str(result['delivery_vs_sink_raw'])) * 100:.0f}%)")
        print(f"end to end (parse, store, rank, render, ledger, SMTP): {result['end_to_end_s']} s, "
              f"{result['end_to_end_sent']} sent")
    print(f"peak memory: {result['peak_rss_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
