"""The offline evaluation harness: loaders, replay protocol, metrics and the `eval` command."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from digest.errors import InputError
from digest.evaluate.baselines import AslSvmRecommender, KeywordRecommender, RandomRecommender, TextFeatures
from digest.evaluate.cli import eval_command
from digest.evaluate.data import EvalData, is_topical, load_citeulike, load_interactions, normalise_tag
from digest.evaluate.metrics import ideal_dcg, ndcg, summarise
from digest.evaluate.project import DigestRecommender
from digest.evaluate.protocol import EvalCorpus, EvalUser, top_k
from digest.evaluate.replay import ReplayLog, Split, history_size, make_split, replay

CITEULIKE = Path(__file__).parents[3] / "shared" / "data" / "citeulike-a"

# 12 topics x 20 papers: a topic's words are in 1/12 of the papers, under the recipe's max_df of 0.1.
TOPICS = [
    ["galaxy", "stellar", "telescope", "cosmic", "redshift", "nebula"],
    ["protein", "folding", "peptide", "enzyme", "residue", "chaperone"],
    ["compiler", "parser", "bytecode", "register", "optimizer", "linker"],
    ["glacier", "permafrost", "iceberg", "snowpack", "moraine", "tundra"],
    ["auction", "bidder", "pricing", "mechanism", "revenue", "valuation"],
    ["neuron", "synapse", "dendrite", "axon", "cortex", "spike"],
    ["vaccine", "antibody", "antigen", "immune", "pathogen", "infection"],
    ["sonnet", "poetry", "rhyme", "meter", "stanza", "verse"],
    ["robot", "gripper", "actuator", "manipulator", "servo", "kinematics"],
    ["volcano", "magma", "eruption", "lava", "caldera", "tephra"],
    ["wheat", "harvest", "irrigation", "crop", "fertilizer", "tillage"],
    ["encryption", "cipher", "signature", "hash", "ciphertext", "keystream"],
]
PER_TOPIC, LIKES_PER_USER, N_USERS = 20, 16, 24


def _synthetic() -> tuple[EvalCorpus, dict[str, tuple[int, ...]], list[tuple[str, ...]]]:
    rng = np.random.default_rng(0)
    titles, abstracts, tags = [], [], []
    for words in TOPICS:
        for j in range(PER_TOPIC):
            picked = rng.choice(words, size=4, replace=False)
            titles.append(f"{picked[0].title()} {picked[1]} and {picked[2]} study {j}")
            abstracts.append(f"We examine {picked[3]} and {picked[1]}." if j % 2 else "")
            tags.append((words[0], "review", "2007"))
    corpus = EvalCorpus([f"p{i}" for i in range(len(titles))], titles, abstracts)
    likes = {}
    for u in range(N_USERS):
        topic = u % len(TOPICS)
        papers = rng.choice(PER_TOPIC, size=LIKES_PER_USER, replace=False) + topic * PER_TOPIC
        likes[f"u{u}"] = tuple(int(p) for p in papers)
    return corpus, likes, tags


@pytest.fixture(scope="module")
def synthetic() -> EvalData:
    corpus, likes, tags = _synthetic()
    return EvalData(corpus=corpus, likes=likes, item_tags=tags, source="synthetic")


def _split(data: EvalData, seed: int = 1, days: int = 4) -> Split:
    return make_split(data, n_users=N_USERS, min_items=15, days=days, seed=seed)


class Oracle:
    """Knows every user's future: picks future papers of the batch first."""

    name = "oracle"

    def __init__(self, split: Split) -> None:
        self.split = split
        self.users: list[EvalUser] = []

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        self.users = list(users)

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        return top_k(self.users, self.split.future[:, batch].astype(float), batch, k)

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        pass


class PicksHistory(Oracle):
    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        picks = super().recommend(day, batch, k)
        today = set(batch.tolist())
        for user in self.users:
            in_batch = [p for p in user.history if p in today]
            if in_batch:
                picks[user.user_id] = [in_batch[0]]
                return picks
        return picks


# --- replay ----------------------------------------------------------------------------------------

def test_split_shapes_history_and_keywords(synthetic: EvalData) -> None:
    split = _split(synthetic)
    assert len(split.users) == N_USERS and len(split.batches) == 4
    assert sorted(np.concatenate(split.batches).tolist()) == list(range(len(synthetic.corpus)))
    for row, user in enumerate(split.users):
        likes = set(synthetic.likes[user.user_id])
        assert len(user.history) == history_size(LIKES_PER_USER) == 4
        assert set(user.history) | set(np.flatnonzero(split.future[row]).tolist()) == likes
        assert not (split.history[row] & split.future[row]).any()
        topic = TOPICS[int(user.user_id[1:]) % len(TOPICS)][0]
        assert user.keywords == (topic,)  # "review" and "2007" are dropped as non-topical
    warm = split.users_for("warm")
    assert all(u.stars == u.history for u in warm) and all(u.stars == () for u in split.users_for("cold"))


def test_oracle_scores_perfectly_and_random_low(synthetic: EvalData) -> None:
    split = _split(synthetic)
    oracle = summarise([replay(synthetic.corpus, split, Oracle(split), "cold", 1)])
    assert oracle.p_at_k.value == 1.0 and oracle.ndcg_at_k.value == 1.0
    deep = summarise([replay(synthetic.corpus, split, Oracle(split), "cold", 3)])
    assert deep.ndcg_at_k.value == pytest.approx(1.0)
    rand = summarise([replay(synthetic.corpus, split, RandomRecommender(3), "cold", 1)])
    assert rand.p_at_k.value < 0.3 and rand.p_at_k.high < 1.0
    assert rand.user_days == oracle.user_days > 0


def test_text_recommenders_beat_random(synthetic: EvalData) -> None:
    split = _split(synthetic)
    features = TextFeatures.fit(synthetic.corpus)  # the recipe's own min_df/max_df
    rand = summarise([replay(synthetic.corpus, split, RandomRecommender(3), "cold", 3)]).ndcg_at_k.value
    for rec, scenario in [(KeywordRecommender(features), "cold"), (AslSvmRecommender(features), "warm"),
                          (DigestRecommender(), "cold")]:
        got = summarise([replay(synthetic.corpus, split, rec, scenario, 3)]).ndcg_at_k.value
        assert got > rand + 0.3, rec.name


def test_asl_svm_spreads_fits_over_processes_with_the_same_result(synthetic: EvalData) -> None:
    split = _split(synthetic)
    features = TextFeatures.fit(synthetic.corpus)
    one = replay(synthetic.corpus, split, AslSvmRecommender(features, workers=1), "warm", 3)
    two = replay(synthetic.corpus, split, AslSvmRecommender(features, workers=2), "warm", 3)
    assert np.array_equal(one.hits, two.hits) and np.allclose(one.dcg, two.dcg)


def test_replay_is_reproducible(synthetic: EvalData) -> None:
    features = TextFeatures.fit(synthetic.corpus)
    a, b = _split(synthetic, seed=5), _split(synthetic, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.batches, b.batches, strict=True)) and a.users == b.users
    for make in (lambda: RandomRecommender(5), lambda: AslSvmRecommender(features)):
        la = replay(synthetic.corpus, a, make(), "cold", 3)
        lb = replay(synthetic.corpus, b, make(), "cold", 3)
        assert np.array_equal(la.hits, lb.hits) and np.array_equal(la.dcg, lb.dcg)
    other = _split(synthetic, seed=6)
    assert not np.array_equal(a.batches[0], other.batches[0])


def test_harness_rejects_a_history_pick(synthetic: EvalData) -> None:
    split = _split(synthetic, days=1)  # one batch: every history paper is in it
    with pytest.raises(ValueError, match="history"):
        replay(synthetic.corpus, split, PicksHistory(split), "cold", 3)


# --- metrics ---------------------------------------------------------------------------------------

def test_ndcg_by_hand() -> None:
    d2 = 1 / math.log2(3)
    assert ideal_dcg(np.array([0, 1, 2, 5]), 3) == pytest.approx([0, 1, 1 + d2, 1 + d2 + 0.5])
    # Hit at rank 2 of 3 picks, 2 relevant offered: (1/log2 3) / (1 + 1/log2 3).
    got = ndcg(np.array([1 / math.log2(3)]), np.array([2]), 3)
    assert got == pytest.approx([(1 / math.log2(3)) / (1 + 1 / math.log2(3))])


def test_summarise_by_hand() -> None:
    # 2 days x 2 users, k=2. User 0: day 0 offered 2, hits at ranks 1 and 2; day 1 offered 0 (not counted).
    # User 1: day 0 offered 1, no hit; day 1 offered 3, hit at rank 2.
    d2 = 1 / math.log2(3)
    lg = ReplayLog("x", "cold", 0, 2, hits=np.array([[2, 0], [0, 1]]), dcg=np.array([[1 + d2, 0.0], [0.0, d2]]),
                   offered=np.array([[2, 1], [0, 3]]), seconds=1.5)
    m = summarise([lg], n_bootstrap=200)
    assert m.user_days == 3 and m.users == 2
    assert m.p_at_k.value == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert m.ndcg_at_k.value == pytest.approx((1.0 + 0.0 + d2 / (1 + d2)) / 3)
    assert m.recall.value == pytest.approx(3 / 6)
    assert m.p_at_k_by_day == pytest.approx([0.5, 0.5])
    assert m.p_at_k.low <= m.p_at_k.value <= m.p_at_k.high
    single = summarise([ReplayLog("x", "cold", 0, 2, lg.hits[:, :1], lg.dcg[:, :1], lg.offered[:, :1], 0.0)])
    assert single.p_at_k.low == single.p_at_k.high == single.p_at_k.value == 1.0


# --- loaders ---------------------------------------------------------------------------------------

def _write(tmp_path: Path, papers: list[str], rows: list[str]) -> tuple[Path, Path]:
    p, i = tmp_path / "papers.jsonl", tmp_path / "interactions.csv"
    p.write_text("\n".join(papers) + "\n", encoding="utf-8")
    i.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return p, i


PAPERS = ['{"id": "a", "title": "Sparse attention", "abstract": "long inputs"}',
          '{"id": 2, "title": "Diffusion models"}',
          '{"id": "c", "title": "Bird migration", "abstract": null}']


def test_load_interactions(tmp_path: Path) -> None:
    p, i = _write(tmp_path, PAPERS, [
        "user,paper_id,time,kind,tag",
        "ann,a,2024-01-02T10:00:00Z,save,Machine_Learning;toread",
        "ann,2,1704189600,,",
        "ann,a,,click,attention",
        "bob,c,,dislike,birds",
    ])
    data = load_interactions(p, i)
    assert data.corpus.ids == ["a", "2", "c"] and data.corpus.abstracts == ["long inputs", "", ""]
    assert data.likes == {"ann": (0, 1)}  # duplicates merged; a dislike is not a like
    assert data.tags_of("ann", 0) == ("machine learning", "toread", "attention")
    assert data.tags_of("bob", 2) == ("birds",)


@pytest.mark.parametrize(("rows", "line", "words"), [
    (["user,item"], 1, "paper_id"),
    (["user,paper_id,colour"], 1, "unknown column"),
    (["user,paper_id", "ann,a", "ann,zzz"], 3, "'zzz'"),
    (["user,paper_id", "ann,a", "ann,a,extra"], 3, "3 fields"),
    (["user,paper_id,kind", "ann,a,like", "ann,2,love"], 3, "unknown kind"),
    (["user,paper_id,time", "ann,a,yesterday"], 2, "time"),
    (["user,paper_id", ",a"], 2, "empty user"),
    (['user,paper_id', 'ann,a', '"ann,2'], 3, ""),
])
def test_malformed_interactions_name_file_and_line(tmp_path: Path, rows: list[str], line: int, words: str) -> None:
    p, i = _write(tmp_path, PAPERS, rows)
    with pytest.raises(InputError, match=rf"interactions\.csv:{line}:") as exc:
        load_interactions(p, i)
    assert words in str(exc.value)


@pytest.mark.parametrize(("papers", "line", "words"), [
    (['{"id": "a", "title": "ok"}', '{"id": "b", "title": '], 2, "JSON"),
    (['{"id": "a", "title": "ok"}', '{"id": "b"}'], 2, "title"),
    (['{"id": "a", "title": "ok"}', '{"id": "a", "title": "again"}'], 2, "duplicate"),
    (['["a", "title"]'], 1, "object"),
])
def test_malformed_papers_name_file_and_line(tmp_path: Path, papers: list[str], line: int, words: str) -> None:
    p, i = _write(tmp_path, papers, ["user,paper_id", "ann,a"])
    with pytest.raises(InputError, match=rf"papers\.jsonl:{line}:") as exc:
        load_interactions(p, i)
    assert words in str(exc.value)


def test_non_utf8_line_is_named(tmp_path: Path) -> None:
    p, i = _write(tmp_path, PAPERS, ["user,paper_id", "ann,a"])
    i.write_bytes(b"user,paper_id\nann,a\nb\xe9b,c\n")
    with pytest.raises(InputError, match=r"interactions\.csv:3: not UTF-8"):
        load_interactions(p, i)


def test_tag_cleaning() -> None:
    assert normalise_tag("Gene_Expression") == normalise_tag("gene-expression") == "gene expression"
    for noise in ["bibtex import", "no tag", "imported", "file import 09 04 28", "toread", "review", "2007",
                  "of", "thesis ref", "12 mar 10"]:
        assert not is_topical(noise), noise
    for topical in ["gene expression", "social networks", "ir", "454 sequencing"]:
        assert is_topical(topical), topical


@pytest.mark.skipif(not CITEULIKE.is_dir(), reason=f"CiteULike-a not found at {CITEULIKE}")
def test_load_citeulike() -> None:
    data = load_citeulike(CITEULIKE)
    assert len(data.corpus) == 16980 and len(data.likes) == 5551
    assert data.corpus.titles[0] == "The metabolic world of Escherichia coli is not small"
    assert data.corpus.titles[2] == "Exploring complex networks"
    assert sum(1 for a in data.corpus.abstracts if a) == 1929
    assert sum(len(v) for v in data.likes.values()) == 204986
    assert min(len(v) for v in data.likes.values()) == 10
    assert "metabolism" in data.item_tags[0]


def test_missing_citeulike_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--citeulike"):
        load_citeulike(tmp_path / "nope")


# --- the command -----------------------------------------------------------------------------------

def _files(tmp_path: Path) -> tuple[Path, Path]:
    corpus, likes, tags = _synthetic()
    papers = [json.dumps({"id": pid, "title": t, "abstract": a})
              for pid, t, a in zip(corpus.ids, corpus.titles, corpus.abstracts, strict=True)]
    p = tmp_path / "papers.jsonl"
    p.write_text("\n".join(papers) + "\n", encoding="utf-8")
    i = tmp_path / "interactions.csv"
    with i.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "paper_id", "kind", "tag"])
        for user, papers_liked in likes.items():
            for pi in papers_liked:
                w.writerow([user, corpus.ids[pi], "save", ";".join(tags[pi])])
    return p, i


@pytest.mark.parametrize("encoder_name", ["all-MiniLM-L6-v2", "static", "none"])
def test_eval_command_end_to_end(tmp_path: Path, encoder_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.rank import encoder

    monkeypatch.setenv("DIGEST_CACHE_DIR", str(tmp_path / "cache"))  # the corpus embeddings' disk cache
    p, i = _files(tmp_path)
    out = tmp_path / "out.json"
    args = ["--papers", str(p), "--interactions", str(i), "--users", "10", "--days", "3", "--k", "3",
            "--seed", "1,2", "--json", str(out), "--jobs", "1", "--bootstrap", "100", "--encoder", encoder_name]
    result = CliRunner().invoke(eval_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "nDCG@3" in result.output and "asl-svm" in result.output and "total run time" in result.output
    obj = json.loads(out.read_text())
    # With the embed extra, zotero-arxiv-daily's embedding recipe joins the baselines; without it the
    # default is the bundled static vectors, and "none" is tf-idf alone.
    with_encoder = encoder_name == "all-MiniLM-L6-v2" and encoder.installed()
    expected = {"digest", "random", "keyword", "asl-svm"} | ({"zad-embed"} if with_encoder else set())
    used = obj["config"]["encoder"]
    if encoder_name == "none":
        assert used is None
    else:
        assert used == "all-MiniLM-L6-v2" if with_encoder else used.startswith("static-minilm-")
    for scenario in ("cold", "warm"):
        assert set(obj["results"][scenario]) == expected
        row = obj["results"][scenario]["asl-svm"]
        assert 0 <= row["ndcg_at_k_ci"][0] <= row["ndcg_at_k"] <= row["ndcg_at_k_ci"][1] <= 1
        assert {"p_at_k", "p_at_k_ci", "recall", "recall_ci"} <= set(row)
        assert len(row["p_at_k_by_day"]) == 3
    assert set(obj["by_seed"]) == {"1", "2"}
    assert obj["results"]["warm"]["asl-svm"]["ndcg_at_k"] > obj["results"]["warm"]["random"]["ndcg_at_k"]


def test_eval_command_malformed_file_is_one_line(tmp_path: Path) -> None:
    from digest.cli import DigestGroup  # the lead's group: DigestError -> "error: ..." and its exit code

    @click.group(cls=DigestGroup)
    def cli() -> None:
        pass

    cli.add_command(eval_command)
    p, i = _write(tmp_path, PAPERS, ["user,paper_id", "ann,a", "ann,a,extra"])
    result = CliRunner().invoke(cli, ["eval", "--papers", str(p), "--interactions", str(i)])
    assert result.exit_code == InputError.exit_code
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "interactions.csv:3" in lines[0]


@pytest.mark.parametrize(("args", "words"), [
    (["--recommenders", "digest,svm"], "unknown svm"),
    (["--seed", "x"], "not an integer"),
    (["--papers", "p.jsonl"], "go together"),
    (["--min-items", "3"], "--min-items"),
])
def test_eval_command_bad_flags(tmp_path: Path, args: list[str], words: str) -> None:
    p, i = _files(tmp_path)
    base = [] if "--papers" in args else ["--papers", str(p), "--interactions", str(i)]
    result = CliRunner().invoke(eval_command, [*base, "--users", "2", "--days", "2", *args])
    assert isinstance(result.exception, InputError) and words in str(result.exception)
