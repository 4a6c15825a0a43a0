"""Keyword ranking: properties on a small fixed corpus, not exact floats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from digest.domain import Paper, Subscriber
from digest.rank.features import tokens
from digest.rank.keywords import score_keywords
from digest.rank.select import PaperSimilarity, select_picks
from digest.rank.semantic import Semantic, unit_rows

CORPUS = [
    Paper(id=1, canonical_id="a", title="Sparse attention for long documents",
          abstract="We make transformer attention sparse so that long inputs fit in memory."),
    Paper(id=2, canonical_id="b", title="Denoising diffusion models for protein design",
          abstract="Diffusion models generate protein backbones; we study sampling."),
    Paper(id=3, canonical_id="c", title="A survey of bird migration",
          abstract="Birds migrate along flyways; we review tracking studies."),
    Paper(id=4, canonical_id="d", title="Attention is sparse in practice",
          abstract="We measure how often heads attend to few tokens, and propose pruning."),
    Paper(id=5, canonical_id="e", title="Faster sampling for score-based generative models",
          abstract="A diffusion model sampler in ten steps."),
]


def _sub(*keywords: str, sid: int = 1) -> Subscriber:
    return Subscriber(id=sid, email=f"s{sid}@example.org", keywords=tuple(keywords))


def test_tokens_fold_plurals_and_hyphens() -> None:
    assert tokens("Diffusion Models") == tokens("diffusion model")
    assert tokens("score-based") == ["score", "based"]
    assert tokens("the of and") == []


def test_matching_paper_ranks_above_unrelated() -> None:
    ks = score_keywords([_sub("sparse attention"), _sub("diffusion models", sid=2)], CORPUS)
    s1, s2 = ks.scores
    assert s1[0] > s1[2] and s1[0] > s1[1]
    assert s2[1] > s2[2] and s2[4] > s2[2]
    assert s1[2] == 0 and s2[2] == 0  # the bird paper shares no word with either


def test_whole_phrase_beats_scattered_words() -> None:
    ks = score_keywords([_sub("sparse attention")], CORPUS)
    # Paper 1 has the phrase in its title; paper 4 has both words, but not together.
    assert ks.scores[0][0] > ks.scores[0][3]
    assert ks.matched[0][0] == ("sparse attention",)
    assert ks.matched[0][3] == () and ks.related[0][3] == ("sparse attention",)


def test_every_subscriber_scored_in_one_pass() -> None:
    subs = [_sub("sparse attention", sid=1), _sub("diffusion models", "protein design", sid=2), _sub("birds", sid=3)]
    ks = score_keywords(subs, CORPUS)
    assert ks.scores.shape == (3, 5)
    assert int(np.argmax(ks.scores[2])) == 2
    assert set(ks.matched[1][1]) == {"diffusion models", "protein design"}


def test_select_respects_top_k_min_score_shown_and_exclude() -> None:
    ks = score_keywords([_sub("attention", "diffusion")], CORPUS)
    picks = select_picks(CORPUS, ks.scores[0], ks.matched[0], ks.related[0], top_k=2, min_score=0.05)
    assert len(picks) == 2
    assert all(p.paper.id != 3 for p in picks)
    assert picks[0].score >= picks[1].score
    assert picks[0].reason.startswith("Matches: ")
    again = select_picks(CORPUS, ks.scores[0], ks.matched[0], ks.related[0], top_k=10, min_score=0.05,
                         shown={picks[0].paper.id})
    assert picks[0].paper.id not in {p.paper.id for p in again}
    no_protein = select_picks(CORPUS, ks.scores[0], ks.matched[0], ks.related[0], top_k=10, min_score=0.05,
                              exclude=("protein",))
    assert 2 not in {p.paper.id for p in no_protein}
    none = select_picks(CORPUS, ks.scores[0], ks.matched[0], ks.related[0], top_k=10, min_score=5.0)
    assert none == []


def test_diversity_and_exploration() -> None:
    import scipy.sparse as sp  # noqa: F401

    from digest.rank.features import FeatureSpace

    near = [Paper(id=10 + i, canonical_id=f"n{i}", title=f"Sparse attention variant {i}",
                  abstract="Sparse attention for long documents with transformers.") for i in range(4)]
    apart = Paper(id=20, canonical_id="x", title="Sparse attention for graphs",
                  abstract="Message passing on molecules with sparse attention.")
    far = Paper(id=30, canonical_id="y", title="Bird migration", abstract="Birds fly south.")
    corpus = [*near, apart, far]
    space = FeatureSpace.from_texts([p.title + " " + p.abstract for p in corpus])
    vecs = space.paper_vectors(corpus)
    ks = score_keywords([_sub("sparse attention")], corpus, space)
    plain = select_picks(corpus, ks.scores[0], ks.matched[0], ks.related[0], top_k=3, min_score=0.0)
    mixed = select_picks(corpus, ks.scores[0], ks.matched[0], ks.related[0], top_k=3, min_score=0.0,
                         similarity=PaperSimilarity(vecs), diversity=0.7)
    assert 20 not in [p.paper.id for p in plain]
    assert 20 in [p.paper.id for p in mixed]  # the odd one out gets in when diversity counts
    explored = select_picks(corpus, ks.scores[0], ks.matched[0], ks.related[0], top_k=3, min_score=-1.0,
                            similarity=PaperSimilarity(vecs), explore=True)
    assert explored[-1].reason.startswith("Something a little different")
    assert explored[-1].paper.id in (20, 30)


def test_group_selection_equals_one_subscriber_at_a_time() -> None:
    """The batched selection (one partial sort, MMR as array operations) picks what selecting for
    each subscriber alone picks, whatever their top_k, shown papers and excludes."""
    from digest.rank.features import FeatureSpace
    from digest.rank.keywords import PaperIndex
    from digest.rank.select import select_group

    rng = np.random.default_rng(5)
    words = ["sparse", "attention", "diffusion", "protein", "graph", "bird", "sampling", "memory", "kernel"]
    corpus = [Paper(id=100 + i, canonical_id=f"g{i}", title=" ".join(rng.choice(words, 3)),
                    abstract=" ".join(rng.choice(words, 8))) for i in range(160)]
    space = FeatureSpace.from_texts([p.title + " " + p.abstract for p in corpus])
    vecs = space.paper_vectors(corpus)
    subs = [_sub("sparse attention", "graph", sid=1), _sub("protein", sid=2), _sub("bird sampling", sid=3),
            _sub("kernel", "memory", sid=4)]
    ks = score_keywords(subs, corpus, space)
    scores = ks.scores.copy()
    scores[3, :] = 0.5  # all tied: the order must fall back to the papers' order
    top_k, shown = [3, 10, 5, 4], [set(), {105, 110, 111}, set(), {100, 101}]
    exclude: list[tuple[str, ...]] = [(), (), ("bird",), ()]
    sim = PaperSimilarity(vecs)
    for diversity in (0.0, 0.4):
        group = select_group(corpus, scores, ks.matched, ks.related, top_k=top_k, min_score=0.01, shown=shown,
                             exclude=exclude, similarity=sim, diversity=diversity, index=PaperIndex(corpus))
        for r in range(len(subs)):
            alone = select_picks(corpus, scores[r], ks.matched[r], ks.related[r], top_k=top_k[r], min_score=0.01,
                                 shown=shown[r], exclude=exclude[r], similarity=sim, diversity=diversity)
            assert [p.paper.id for p in group[r]] == [p.paper.id for p in alone]
            assert len(group[r]) == top_k[r]
            assert not {p.paper.id for p in group[r]} & shown[r]
        assert all("bird" not in (p.paper.title + " " + p.paper.abstract) for p in group[2])
        if diversity == 0:  # plain top-k: what a full stable sort of each row gives
            for r in range(len(subs)):
                best = [corpus[i].id for i in np.argsort(-scores[r], kind="stable") if scores[r, i] >= 0.01
                        and corpus[i].id not in shown[r] and not (exclude[r] and "bird" in corpus[i].title + " "
                                                                  + corpus[i].abstract)]
                assert [p.paper.id for p in group[r]] == best[: top_k[r]]
    plain = select_group(corpus, scores, ks.matched, ks.related, top_k=top_k, min_score=0.05, shown=shown,
                         exclude=exclude)
    assert [p.paper.id for p in plain[3]] == [102, 103, 104, 105]  # ties keep the papers' order


def test_dense_product_equals_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-pass product gives what scipy's operator gives, into a given array too; where the
    kernel is missing (a scipy that renamed it) or the data is not float32, the operator is used."""
    import scipy.sparse as sp

    from digest.rank import products

    a = sp.random(60, 900, density=0.03, format="csr", dtype=np.float32, random_state=1)
    b = sp.random(900, 40, density=0.03, format="csr", dtype=np.float32, random_state=2)
    want = (a @ b).toarray()
    assert np.array_equal(products.dense_product(a, b), want)
    out = np.full((60, 40), 7.0, dtype=np.float32)  # stale values must not survive
    assert products.dense_product(a, b, out=out) is out and np.array_equal(out, want)
    assert np.allclose(products.dense_product(a.astype(np.float64), b), want, atol=1e-6)
    assert products.dense_product(a[:0], b).shape == (0, 40)
    monkeypatch.setattr(products, "_KERNEL", None)
    assert np.array_equal(products.dense_product(a, b), want)


def test_liked_papers_give_reason_cosines_and_nearest_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cosines to the day (for reason lines) and each reader's nearest liked paper (the score)
    come from one product, in blocks of liked papers: the same as comparing with each liked paper
    directly, and the closest of them, not their average."""
    from digest.rank.features import FeatureSpace
    from digest.rank.ranker import LikedPapers, SubscriberState

    space = FeatureSpace.from_texts([p.title + " " + p.abstract for p in CORPUS])
    day = CORPUS[:3]
    sim = PaperSimilarity(space.paper_vectors(day))
    states = [SubscriberState(_sub("x", sid=1), liked=[("starred", CORPUS[3]), ("opened", CORPUS[4])]),
              SubscriberState(_sub("y", sid=2)),
              SubscriberState(_sub("z", sid=3), liked=[("starred", CORPUS[4]), ("opened", CORPUS[4]),
                                                       ("starred", CORPUS[0])])]
    monkeypatch.setattr(LikedPapers, "BLOCK_ROWS", 2)  # three distinct liked papers: two blocks
    liked = LikedPapers.build([[p for _, p in st.liked] for st in states], space)
    got = liked.to_day(sim)
    assert liked.to_day(sim) is got  # computed once per group
    vec = space.paper_vectors
    assert np.allclose(got.cosines, (vec([CORPUS[3], CORPUS[4], CORPUS[0]]) @ sim.vectors.T).toarray(), atol=1e-6)
    for row, papers in ((0, [CORPUS[3], CORPUS[4]]), (2, [CORPUS[4], CORPUS[4], CORPUS[0]])):
        each = (vec(papers) @ sim.vectors.T).toarray()
        assert np.allclose(got.nearest[row], each.max(axis=0), atol=1e-6)
    assert not got.nearest[1].any()
    assert got.nearest[2][0] == pytest.approx(1.0, abs=1e-5)  # a day paper the reader liked itself


def test_models_scored_with_the_encoder_off_drop_its_dims_and_count_the_words_for_each_paper() -> None:
    """A model trained with the encoder on holds weights past the hashed space; scored with it off,
    those weights drop and every other subscriber's row stays its own. Beside the probabilities,
    the words for each paper: the positive word weights it holds, not the negative ones."""
    from digest.rank.learner import LinearModel, scored_by_models

    with_meaning = LinearModel(np.array([1, 5, 12, 13], dtype=np.int32), np.array([1, 2, 3, 4], dtype=np.float32),
                               0.5, 3, 9)
    plain = LinearModel(np.array([0, 9], dtype=np.int32), np.array([-1, 7], dtype=np.float32), -0.25, 1, 2)
    papers = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 0, 1],  # features 0 and 9
                       [0, 1, 0, 0, 0, 1, 0, 0, 0, 0],  # 1 and 5
                       [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    got = scored_by_models([with_meaning, None, plain], sp.csr_matrix(papers.T))
    weights = np.array([[0, 1, 0, 0, 0, 2, 0, 0, 0, 0], [0] * 10, [-1, 0, 0, 0, 0, 0, 0, 0, 0, 7]], dtype=np.float32)
    logits = weights @ papers.T + np.array([[0.5], [0.0], [-0.25]])
    assert np.allclose(got.probabilities, 1 / (1 + np.exp(-logits)), atol=1e-6)
    assert np.allclose(got.probabilities[1], 0.5)  # no model: the neutral probability
    assert got.words_for.tolist() == [[0, 3, 0], [0, 0, 0], [7, 0, 0]]


def test_encoder_dims_scored_apart_give_the_scores_of_one_combined_product() -> None:
    """With an encoder, the models' weights on the vector dims are multiplied by BLAS, apart from the
    sparse columns: the scores are those of the one product over the combined features."""
    from digest.rank import semantic
    from digest.rank.classes import N_CLASSES
    from digest.rank.learner import LinearModel, scored_by_models

    rng = np.random.default_rng(0)
    start = semantic.EMBED_START
    tfidf = sp.random(7, start - N_CLASSES, density=2e-5, format="csr", dtype=np.float32, random_state=1)
    cls = np.zeros((7, N_CLASSES), dtype=np.float32)
    cls[np.arange(7), [0, 3, 3, 5, 0, 9, 9]] = 1.0
    sparse_part = sp.csr_matrix(semantic.combine(tfidf, cls).T)
    vectors = rng.normal(size=(7, 4)).astype(np.float32)
    dims = np.arange(start, start + 4, dtype=np.int32)
    words = np.concatenate([np.unique(tfidf.indices)[:4], [start - N_CLASSES + 3]]).astype(np.int32)  # a class too
    models = [LinearModel(np.concatenate([words, dims]), rng.normal(size=9).astype(np.float32), 0.1, 3, 5),
              None,
              LinearModel(words[:2], np.array([2.0, -1.0], dtype=np.float32), -0.3, 1, 4),  # trained without
              LinearModel(dims[1:3], np.array([1.5, 0.5], dtype=np.float32), 0.0, 2, 2)]
    combined = sp.csr_matrix(semantic.combine(tfidf, cls, vectors).T)
    split = scored_by_models(models, sparse_part, dense=vectors)
    assert np.allclose(split.probabilities, scored_by_models(models, combined).probabilities, atol=1e-6)
    assert np.allclose(split.probabilities[1], 0.5)  # no model: the neutral probability
    # What speaks for a paper: the positive word and class weights, and every weight on its meaning.
    for m, model in enumerate(models):
        if model is None:
            continue
        w = np.zeros(start + 4, dtype=np.float32)
        w[model.indices] = model.values
        expect = np.maximum(w[:start], 0) @ sparse_part.toarray() + w[start:] @ vectors.T
        assert np.allclose(split.words_for[m], expect, atol=1e-5)


def test_too_many_liked_papers_to_keep_give_the_same_reasons_and_nearest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past KEEP_ENTRIES the liked x day cosines are not kept: the nearest is the same, and the
    reason lines compare each block of subscribers' liked papers again, with the same cosines."""
    from digest.rank.features import FeatureSpace
    from digest.rank.ranker import LikedPapers, SubscriberState
    from digest.rank.select import LikedWords

    space = FeatureSpace.from_texts([p.title + " " + p.abstract for p in CORPUS])
    sim = PaperSimilarity(space.paper_vectors(CORPUS[:3]))
    states = [SubscriberState(_sub("x", sid=1), liked=[("starred", CORPUS[3]), ("opened", CORPUS[4])]),
              SubscriberState(_sub("z", sid=3), liked=[("starred", CORPUS[4]), ("starred", CORPUS[0])])]
    papers = [[p for _, p in st.liked] for st in states]
    kept = LikedPapers.build(papers, space).to_day(sim)
    monkeypatch.setattr(LikedPapers, "KEEP_ENTRIES", 0)
    liked = LikedPapers.build(papers, space)
    dropped = liked.to_day(sim)
    assert kept.cosines is not None and dropped.cosines is None
    assert np.allclose(kept.nearest, dropped.nearest, atol=1e-6)
    with_kept = LikedWords(liked.rows, cosines=kept.cosines)
    recomputed = LikedWords(liked.rows, vectors=liked.vectors, similarity=sim)
    monkeypatch.setattr(LikedWords, "BLOCK_ROWS", 2)  # one subscriber per block
    for row in (0, 1):
        a, b = with_kept.to_chosen(row, [2, 0]), recomputed.to_chosen(row, [2, 0])
        assert a is not None and b is not None and a.shape == (2, 2) and np.allclose(a, b, atol=1e-6)


def test_paper_vectors_mix_cached_fresh_and_unstored_papers_in_order() -> None:
    """A batch of papers already vectorised, new ones and ones without an id: each row is its own."""
    from digest.rank.features import FeatureSpace

    space = FeatureSpace.from_texts([p.title + " " + p.abstract for p in CORPUS])
    plain = FeatureSpace(space.idf)
    space.paper_vectors([CORPUS[0]])  # cached from an earlier call
    unstored = Paper(id=None, canonical_id="u", title="Bird migration flyways", abstract="Tracking birds.")
    batch = [CORPUS[0], CORPUS[2], unstored, CORPUS[4]]
    got, want = space.paper_vectors(batch), plain.paper_vectors(batch)
    assert got.shape == want.shape and (got != want).nnz == 0


def test_unigram_columns_are_the_vectorizers_own() -> None:
    from digest.rank.features import term_counts, unigram_columns

    words = ["attention", "schr", "gaussian", "qubit"]
    assert unigram_columns(words).tolist() == [int(term_counts([w]).indices[0]) for w in words]


def test_the_light_tokenizer_keeps_scikit_learns_stop_words_but_the_science_words() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from digest.rank.tokens import GENERAL_STOP_WORDS, SCIENCE_WORDS, STOP_WORDS

    assert frozenset(ENGLISH_STOP_WORDS) == GENERAL_STOP_WORDS
    assert SCIENCE_WORDS <= GENERAL_STOP_WORDS
    assert STOP_WORDS == GENERAL_STOP_WORDS - SCIENCE_WORDS


def test_a_word_and_its_plural_are_one_token_or_none() -> None:
    from digest.rank.tokens import tokens

    assert tokens("A Recommender System") == tokens("recommender systems") == ["recommender", "system"]
    assert tokens("thin films on the top quark side") == ["thin", "film", "top", "quark", "side"]
    assert tokens("it shows names") == tokens("we show the name") == []


def test_a_phrase_matches_a_title_holding_it_in_the_singular() -> None:
    """"recommender systems" is in "A Recommender System for News" (the singular "system" was a stop
    word, the plural not, so the phrase did not match the title it names)."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    papers = _day([("A Recommender System for News", "We rank articles for readers."),
                   ("Thin film growth by sputtering", "Films of oxides on silicon."),
                   ("Film criticism at scale", "Reviews of films by critics.")])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    ranked = rank_all([SubscriberState(_sub("recommender systems")), SubscriberState(_sub("thin films"))], papers,
                      space, RankOptions(top_k=10, min_score=0.1))
    first, second = ranked[0].picks, ranked[1].picks
    assert first[0].paper.title == "A Recommender System for News"
    assert "Matches: recommender systems" in first[0].reason
    assert second[0].paper.title == "Thin film growth by sputtering"
    assert "Matches: thin films" in second[0].reason
    assert "Matches" not in " ".join(p.reason for p in second[1:])


def test_a_plural_noun_and_its_verb_are_not_the_phrase() -> None:
    """"tool use" is not in "many of these tools use perceptual models" (a subject and its verb: a
    compound's modifier is singular), and that paper gets no "Matches: tool use"; "tools used in
    tool use studies", a title with "LLM tools" and the phrase typed in the plural still match."""
    from digest.rank.keywords import ABSTRACT, ALL_WORDS, NONE, TITLE, PaperIndex

    papers = [
        Paper(id=1, canonical_id="a", title="Objective audio quality",
              abstract="Many of these tools use perceptual auditory models to score codecs."),
        Paper(id=2, canonical_id="b", title="Agents that call APIs",
              abstract="Tools used in tool use studies are listed; our agent learns tool use."),
        Paper(id=3, canonical_id="c", title="Tool use by large language models", abstract="We study agents."),
        Paper(id=4, canonical_id="d", title="Materials science of glass", abstract="Glass forms."),
        Paper(id=5, canonical_id="e", title="How these tools use perceptual models", abstract="Codecs scored."),
    ]
    levels = PaperIndex(papers).match_levels(["tool use", "materials science"])[0]
    # The first: its words, apart; the last: the subject and its verb in the title, not the phrase's
    # words held apart there either.
    assert levels[0].tolist() == [ALL_WORDS, ABSTRACT, TITLE, NONE, ALL_WORDS]
    assert levels[1][3] == TITLE  # typed in the plural: the plural is the phrase
    ks = score_keywords([_sub("tool use")], papers)
    assert ks.matched[0][0] == () and ks.matched[0][1] == ("tool use",)


def test_a_phrase_s_words_apart_count_only_in_the_reader_s_own_forms() -> None:
    """"mechanistic interpretability": a sociology abstract with "mechanistic" here and "a cultural
    interpretation" there holds neither the phrase nor its words, and was the first pick of such a
    reader on a day with no paper on the topic ("Related to: mechanistic interpretability"). The
    words apart in the reader's own forms still count, and so do the words of a longer phrase in
    other forms where the paper holds two of them in a row as the phrase has them ("Time-Series ...
    Forecast" for "time series forecasting")."""
    from digest.rank.keywords import ALL_WORDS, NONE, PaperIndex

    papers = [
        Paper(id=1, canonical_id="a", title="Normative feeling", abstract=(
            "A mechanistic regularity of norms; we use a cultural interpretation of our model.")),
        Paper(id=2, canonical_id="b", title="Interpretability of vision transformers", abstract=(
            "We give a mechanistic account of attention heads.")),
        Paper(id=3, canonical_id="c", title="Ridge regression for manifold-valued time-series", abstract=(
            "We apply it to forecast hurricane tracks.")),
        Paper(id=4, canonical_id="d", title="Forecasts of storms", abstract="A series of storms over a long time."),
    ]
    levels = PaperIndex(papers).match_levels(["mechanistic interpretability", "time series forecasting"])[0]
    assert levels[0].tolist()[:2] == [NONE, ALL_WORDS]
    assert levels[1].tolist()[2:] == [ALL_WORDS, NONE]


def test_a_phrase_said_once_in_passing_ranks_under_the_papers_it_is_the_subject_of() -> None:
    """"autonomous driving": an open-world detection paper that ends "... for real-world applications
    such as autonomous driving" was the eighth pick of such a reader, above path planning and
    trajectory tracking papers for autonomous vehicles. The phrase once, after the abstract's first
    sentence, counts as its words apart; in the first sentence or twice it is the phrase in the
    abstract. The reason line stays true: the paper does say it."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.keywords import ABSTRACT, ABSTRACT_ASIDE, PaperIndex
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    papers = _day([
        ("Autonomous detectors for novel objects", "We teach open-vocabulary detectors to find novel objects, e.g. "
         "rare animals. Results are state of the art in real-world applications such as autonomous driving."),
        ("Tracking a planned path", "Autonomous driving needs controllers that track a planned path. We propose one."),
        ("Lane changes in dense traffic", "We study lane changes. Stacks for autonomous driving plan them, and "
         "autonomous driving in dense traffic gains from ours."),
        # A structured abstract's first sentence is the one after its label.
        ("Merging at ramps", "Context. Autonomous driving at ramps is hard. Aims. We model merging vehicles."),
    ])
    levels = PaperIndex(papers).match_levels(["autonomous driving"])[0][0]
    assert levels[-4:].tolist() == [ABSTRACT_ASIDE, ABSTRACT, ABSTRACT, ABSTRACT]
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    ranked = rank_all([SubscriberState(_sub("autonomous driving"))], papers, space,
                      RankOptions(top_k=10, min_score=0.1))
    order = [p.paper.title for p in ranked[0].picks]
    assert order.index("Autonomous detectors for novel objects") > max(
        order.index("Tracking a planned path"), order.index("Lane changes in dense traffic"))
    reasons = {p.paper.title: p.reason for p in ranked[0].picks}
    assert reasons["Autonomous detectors for novel objects"] == "Matches: autonomous driving"


def _day(extra: list[tuple[str, str]]) -> list[Paper]:
    """A day of papers: 200 on unrelated topics (each with its own words), then extra."""
    topics = ["bird migration", "volcanic ash", "tax policy", "coral reefs", "medieval trade", "glacier melt",
              "sleep apnea", "urban traffic", "wine chemistry", "dark matter"]
    filler = [(f"Notes on {t}, part {n}", f"We study {t} with new field data from season {n}.")
              for n in range(20) for t in topics]
    return [Paper(id=i + 1, canonical_id=f"p{i}", title=t, abstract=a) for i, (t, a) in enumerate(filler + extra)]


def test_a_phrase_does_not_run_across_a_comma_or_a_full_stop() -> None:
    """"speech synthesis": an abstract on presidents' speeches that ends "between all the speeches,
    a synthesis can be drawn" was sent as "Matches: speech synthesis" (the comma and the stop word
    between the two words dropped); "known proteins. Structural analysis" held "protein structure".
    Across a clause's end the words are not the phrase; in a row they still are."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.keywords import ABSTRACT, ALL_WORDS, PaperIndex
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    papers = _day([
        ("Words of presidents", "The corpus of their speeches is tagged. Between all the speeches, a synthesis "
                                "can be drawn."),
        ("A vocoder for expressive voices", "We improve speech synthesis for expressive voices."),
        ("Folding enzymes", "Designs align with known proteins. Structural analysis follows (protein) structure."),
    ])
    index = PaperIndex(papers)
    levels = index.match_levels(["speech synthesis", "protein structure"])[0]
    assert levels[0, -3] <= ALL_WORDS and levels[0, -2] == ABSTRACT
    assert levels[1, -1] <= ALL_WORDS
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    ranked = rank_all([SubscriberState(_sub("speech synthesis"))], papers, space, RankOptions(top_k=10, min_score=0.1))
    reasons = {p.paper.title: p.reason for p in ranked[0].picks}
    assert reasons["A vocoder for expressive voices"] == "Matches: speech synthesis"
    assert "Matches" not in reasons.get("Words of presidents", "")


def _picks(papers: list[Paper], *keywords: str) -> list[str]:
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    ranked = rank_all([SubscriberState(_sub(*keywords))], papers, space, RankOptions(top_k=10, min_score=0.1))
    return [p.paper.title for p in ranked[0].picks]


def test_a_quiet_day_is_not_filled_with_papers_sharing_one_common_word() -> None:
    """A reader of "protein design" on a day with one such paper and eight that only say "design"
    gets the one, and a paper on proteins (a word few papers hold), not the eight."""
    designs = [(f"Design of {what}", f"A design method for {what}, with a case study.")
               for what in ("bridges", "antennas", "chairs", "compilers", "kitchens", "rockets", "fonts", "gears")]
    papers = _day(designs + [("Deep generative protein design", "We generate binders."),
                             ("How proteins fold", "Protein folding kinetics measured in cells.")])
    picks = _picks(papers, "protein design")
    assert picks == ["Deep generative protein design", "How proteins fold"]


def test_most_of_a_long_phrase_grounds_a_paper_only_held_in_its_order() -> None:
    """"quantum error correction": a paper on error correction codes holds "error correction" as the
    phrase has it and may fill a quiet day; one on quantum corrections to black hole tunneling holds
    "quantum" and "correction" too, apart, and is about something else."""
    common = ([(f"Bias correction for {x}", f"A correction of {x} estimates.") for x in "abcdef"]
              + [(f"Quantum dots in {x}", f"Quantum confinement in {x}.") for x in "abcdef"]
              + [(f"Measurement error in {x}", f"The error of {x} gauges.") for x in "abcdef"])
    papers = _day(common + [("Quantum corrections to black hole tunneling",
                             "We compute quantum corrections to the tunneling rate of a black hole."),
                            ("Decoding convolutional codes over rings",
                             "An error correction scheme for convolutional codes over finite rings.")])
    picks = _picks(papers, "quantum error correction")
    assert "Decoding convolutional codes over rings" in picks
    assert "Quantum corrections to black hole tunneling" not in picks


def test_the_common_word_of_a_phrase_grounds_nothing() -> None:
    """"recommender systems": "systems" (then a stop word in the singular, tokenised twice) was taken
    for the rarest word there is, and filled a quiet day with Lotka-Volterra and Nash systems."""
    systems = [(f"Stability of {what} systems", f"We study {what} systems and their stability.")
               for what in ("Lotka-Volterra", "Nash", "hierarchical triple", "Lur'e", "non-reciprocal", "computer",
                            "AI judge", "power")]
    papers = _day(systems + [("Sequential recommender systems with language models", "We recommend items."),
                             ("Recommender models for news", "A recommender trained on clicks.")])
    picks = _picks(papers, "recommender systems")
    assert picks == ["Sequential recommender systems with language models", "Recommender models for news"]


def test_a_phrase_most_papers_hold_weighs_less_than_a_specific_one() -> None:
    """Keywords "learning, graph coloring": "learning" is in a tenth of the day's titles, so a paper
    that names graph coloring in its abstract comes before one that merely says "learning"."""
    learning = [(f"Learning {what}", f"We learn {what} from examples.")
                for what in ("to walk", "to rank", "to parse", "fast", "slowly", "again", "in teams", "from noise",
                             "with less", "without labels", "to plan", "to see", "to hear", "to read", "to code",
                             "to draw", "to sing", "to count", "to sort", "to search")]
    papers = _day(learning + [("Colouring sparse graphs quickly", "An algorithm for graph coloring in linear time.")])
    picks = _picks(papers, "learning", "graph coloring")
    assert picks[0] == "Colouring sparse graphs quickly"


def _meaning(papers: list[Paper], closeness: dict[str, float], sentences: bool) -> Semantic:
    """Encoder vectors with chosen cosines to the keyword query: the listed titles get theirs, the
    rest spread evenly around 0 (mean 0, deviation 0.05)."""
    spread = np.linspace(-0.08, 0.08, len(papers))
    cos = np.array([closeness.get(p.title, spread[i]) for i, p in enumerate(papers)])
    rng = np.random.default_rng(0)
    rest = unit_rows(rng.normal(size=(len(papers), 7)))
    vectors = np.hstack([cos[:, None], np.sqrt(1 - cos[:, None] ** 2) * rest]).astype(np.float32)
    query = np.zeros((1, 8), dtype=np.float32)
    query[0, 0] = 1.0
    return Semantic(vectors, query, [np.zeros((0, 8), dtype=np.float32)], sentences=sentences)


@pytest.mark.parametrize("sentences", [True, False])
def test_a_sentence_encoder_orders_by_meaning_yet_a_quiet_day_stays_quiet(sentences: bool) -> None:
    """With a sentence encoder, a paper a little closer in meaning than the day's others (1.5
    deviations out) is ranked above them, though it shares no word with the keywords; it still does
    not enter the digest on its own (the floor keeps the strict rule), and the bundled static
    vectors' closeness that little counts for nothing."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    papers = _day([("Deep generative protein design", "We generate binders."),
                   ("Enzymes made to order", "Catalysts engineered from scratch for new reactions.")])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    meaning = _meaning(papers, {"Deep generative protein design": 0.3, "Enzymes made to order": 0.09}, sentences)
    state = [SubscriberState(_sub("protein design"))]
    everything = rank_all(state, papers, space, RankOptions(top_k=3, min_score=-1.0, diversity=0.0), meaning=meaning)
    order = [p.paper.title for p in everything[0].picks]
    assert order[0] == "Deep generative protein design"
    assert ("Enzymes made to order" in order[1:]) is sentences
    digest = rank_all(state, papers, space, RankOptions(top_k=10, min_score=0.1), meaning=meaning)
    assert [p.paper.title for p in digest[0].picks] == ["Deep generative protein design"]


@pytest.mark.parametrize("sentences", [True, False])
def test_the_static_vectors_order_only_papers_that_hold_no_phrase(sentences: bool) -> None:
    """Two papers titled with "protein design": one about it throughout, one that names it once and
    is loosely close to the query in the bundled static vectors. Among papers holding the phrase the
    words decide with the static vectors (their closeness put an ASR paper titled "multimodal" above
    vision-language papers); a sentence encoder's closeness still orders them. A paper holding no
    phrase of the reader's is ranked by meaning with either, above the day's unrelated papers."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    about = ("Protein design by diffusion", "Protein design with diffusion models: we design protein binders.")
    named = ("Protein design notes", "Short remarks.")
    near = ("Enzymes made to order", "Catalysts engineered from scratch for new reactions.")
    papers = _day([about, named, near])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    meaning = _meaning(papers, {named[0]: 0.6, about[0]: 0.1, near[0]: 0.6}, sentences)
    ranked = rank_all([SubscriberState(_sub("protein design"))], papers, space,
                      RankOptions(top_k=3, min_score=-1.0, diversity=0.0), meaning=meaning)
    order = [p.paper.title for p in ranked[0].picks]
    assert order[:2] == ([named[0], about[0]] if sentences else [about[0], named[0]])
    assert order[2] == near[0]


def test_a_pick_let_in_by_meaning_says_so_to_a_reader_who_starred_something_unlike_it() -> None:
    """A reader of "protein design" who once starred a paper on hummingbirds: a paper that only its
    meaning lets in, and that is nothing like the hummingbirds, says "Close in meaning to your
    interests". It said "Close to what you read" for any such pick of a reader with a star (on the
    judged queries, after two stars, a radar receiver for "wireless communications" and a tin
    sulfide synthesis were "close" to papers they share no topic with)."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all
    from digest.rank.select import HISTORY_REASON, MEANING_REASON

    papers = _day([("Deep generative protein design", "We generate binders."),
                   ("Enzymes made to order", "Catalysts engineered from scratch for new reactions.")])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    meaning = _meaning(papers, {"Deep generative protein design": 0.3, "Enzymes made to order": 0.3}, False)
    starred = Paper(id=9999, canonical_id="hb", title="Hovering flight of hummingbirds",
                    abstract="Hummingbirds hover by rotating their wings.")
    state = [SubscriberState(_sub("protein design"), liked=[("starred", starred)])]
    picks = rank_all(state, papers, space, RankOptions(top_k=10, min_score=0.1), meaning=meaning)[0].picks
    reasons = {p.paper.title: p.reason for p in picks}
    assert reasons["Enzymes made to order"] == MEANING_REASON
    assert HISTORY_REASON not in reasons.values()


def test_closeness_in_meaning_to_a_starred_paper_lets_in_only_a_paper_the_star_can_be_named_for() -> None:
    """With a sentence encoder, a reader who starred a hummingbird paper gets a paper on hovering
    hummingbirds ("Like the paper you starred: ..."), and not one on bees that is as close in meaning
    but shares none of its words: in a listing of every field, a whole field stands two deviations
    closer than the day's mean to a starred paper (a metric-learning paper and a pruning paper were
    sent to a reader of protein design who had starred two protein-design papers, "Close to what
    you read"). Meaning still orders the papers the star's words let in."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    papers = _day([("Aerodynamics of hovering hummingbirds", "Wing rotation lets hummingbirds hover in place."),
                   ("Muscles that power bees", "Bees beat fast, powered by asynchronous muscle.")])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    close = {"Aerodynamics of hovering hummingbirds": 0.9, "Muscles that power bees": 0.9}
    spread = np.linspace(-0.08, 0.08, len(papers))
    cos = np.array([close.get(p.title, spread[i]) for i, p in enumerate(papers)])
    rest = unit_rows(np.random.default_rng(1).normal(size=(len(papers), 7)))
    vectors = np.hstack([cos[:, None], np.sqrt(1 - cos[:, None] ** 2) * rest]).astype(np.float32)
    starred_vector = np.zeros((1, 8), dtype=np.float32)
    starred_vector[0, 0] = 1.0
    meaning = Semantic(vectors, np.zeros((1, 8), dtype=np.float32), [starred_vector], sentences=True)
    starred = Paper(id=9999, canonical_id="hb", title="Hovering flight of hummingbirds",
                    abstract="Hummingbirds hover by rotating their wings.")
    state = [SubscriberState(_sub("ornithopters"), liked=[("starred", starred)])]
    picks = rank_all(state, papers, space, RankOptions(top_k=10, min_score=0.1), meaning=meaning)[0].picks
    assert [p.paper.title for p in picks] == ["Aerodynamics of hovering hummingbirds"]
    assert picks[0].reason == "Like the paper you starred: Hovering flight of hummingbirds"


def test_a_title_holding_a_phrase_s_words_apart_ranks_below_the_phrase_and_above_shared_words() -> None:
    """"3D reconstruction": "Single-Image 3D Human Reconstruction" is on the topic, and ranked below
    papers holding the same words apart in the abstract, more often (signal reconstruction "in 3D"),
    while papers saying the phrase once in the abstract came first. Now it comes after those and
    before the rest, and its reason line does not claim the phrase."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    # "3D" is common on the day, so the title's two words apart are no more than shared words were.
    others = [(f"3D printing of part {n}", f"We print part {n} layer by layer in 3D.") for n in range(60)]
    # Both words, apart, in abstracts that say them more often than the title paper does.
    others += [(f"Signal reconstruction for {what}",
                f"Reconstruction of {what} signals in 3D: a reconstruction method for 3D arrays.")
               for what in ("radar", "sonar", "seismic", "audio")]
    papers = _day(others + [
        ("Single-Image 3D Human Reconstruction", "A body model is fitted to one photograph of a person."),
        ("Scene understanding for robots", "Robots build maps; 3D reconstruction of rooms is one step."),
    ])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    picks = rank_all([SubscriberState(_sub("3D reconstruction"))], papers, space,
                     RankOptions(top_k=10, min_score=0.0, diversity=0.0))[0].picks
    order = [p.paper.title for p in picks]
    assert order[:2] == ["Scene understanding for robots", "Single-Image 3D Human Reconstruction"], order
    assert picks[1].reason == "Related to: 3D reconstruction"


def test_a_phrase_s_common_word_held_apart_does_not_make_its_words_all_held() -> None:
    """"tool use": a third of the day's papers say "use", so a paper that says "tools" and "use"
    apart holds no more of the phrase than "tools"; such papers filled a quiet day for a reader of
    LLM agents. Two uncommon words held apart ("inference", "Bayesian") still are all its words."""
    from digest.rank.keywords import ALL_WORDS, PaperIndex

    users = [(f"Method {i}", f"We use approach {i} for the data.") for i in range(80)]
    tools = [(f"Tools for {what}", f"We use these tools to study {what}.")
             for what in ("galaxies", "glaciers", "genes", "grammars", "graphs", "gears", "gulls", "gales")]
    papers = _day(users + tools + [("Tool use by language model agents", "Agents call functions."),
                                   ("Exact inference in sparse networks", "Bayesian networks, solved.")])
    assert _picks(papers, "tool use") == ["Tool use by language model agents"]
    levels = PaperIndex(papers).match_levels(["inference bayesian"])[0]
    assert levels[0, len(papers) - 1] == ALL_WORDS


def test_one_specific_word_of_a_phrase_lets_a_paper_in_only_where_meaning_agrees() -> None:
    """"speech synthesis": the tin sulfide paper holds the rare word "synthesis" and nothing else of
    the phrase, and in meaning it stands where the day's other papers do: it was picked, "Related to:
    speech synthesis", on a quiet day. A paper on voice synthesis, as rare a word and close in
    meaning, still is; and without an encoder the word alone still lets a paper in."""
    from digest.rank.features import FeatureSpace, paper_text
    from digest.rank.ranker import RankOptions, SubscriberState, rank_all

    filler = [(f"Notes on topic {i}", f"We study item {i} with care.") for i in range(120)]
    papers = _day(filler + [("Speech synthesis with diffusion", "A text to speech model."),
                            ("Selective synthesis of tin sulfide monolayers", "Grown by vapour deposition."),
                            ("Neural voice synthesis for audiobooks", "Expressive voices read books aloud.")])
    space = FeatureSpace.from_texts([paper_text(p) for p in papers])
    state = [SubscriberState(_sub("speech synthesis"))]
    options = RankOptions(top_k=10, min_score=0.1)
    meaning = _meaning(papers, {"Speech synthesis with diffusion": 0.3, "Neural voice synthesis for audiobooks": 0.2,
                                "Selective synthesis of tin sulfide monolayers": 0.0}, sentences=False)
    picked = [p.paper.title for p in rank_all(state, papers, space, options, meaning=meaning)[0].picks]
    assert picked[0] == "Speech synthesis with diffusion"
    assert "Neural voice synthesis for audiobooks" in picked
    assert "Selective synthesis of tin sulfide monolayers" not in picked
    words_alone = [p.paper.title for p in rank_all(state, papers, space, options)[0].picks]
    assert "Selective synthesis of tin sulfide monolayers" in words_alone


def test_a_keyword_naming_a_category_files_its_papers_under_the_phrase_itself() -> None:
    """A reader of "combinatorics" gets the math.CO papers that never say the word, just under the
    papers that do, with a reason line naming the class, never "Matches"; a word of a longer class
    name ("vision" of cs.CV's) files nothing."""
    corpus = [
        Paper(id=1, canonical_id="a", title="Hamilton paths in vertex-transitive graphs",
              abstract="We prove every such graph of order 10p has a Hamilton path.", categories=("math.CO",)),
        Paper(id=2, canonical_id="b", title="Counting lattice paths",
              abstract="A bijection from enumerative combinatorics.", categories=("math.PR",)),
        Paper(id=3, canonical_id="c", title="Vision transformers for segmentation",
              abstract="We segment images.", categories=("cs.CV",)),
        Paper(id=4, canonical_id="d", title="A survey of bird migration",
              abstract="Birds migrate along flyways.", categories=("q-bio.PE",)),
    ]
    ks = score_keywords([_sub("combinatorics"), _sub("vision", sid=2)], corpus)
    comb, vision = ks.scores
    assert comb[1] > comb[0] > comb[3] == 0  # the word in the abstract, then the class, then neither
    assert ks.matched[0][0] == () and ks.filed[0][0] == ("Combinatorics (math.CO)",)
    assert ks.filed[0][1] == ()  # it holds the word: "Matches" is what is true of it
    assert ks.filed[1][2] == ()
    picks = select_picks(corpus, comb, ks.matched[0], ks.related[0], top_k=3, min_score=0.05, filed=ks.filed[0])
    assert [p.paper.id for p in picks] == [2, 1]
    assert picks[0].reason == "Matches: combinatorics"
    assert picks[1].reason == "In Combinatorics (math.CO)"


def test_a_paper_filed_under_the_named_class_ranks_as_one_holding_the_phrase_in_the_abstract() -> None:
    """The authors' own filing is as sure as the phrase in the abstract (nine in ten such judged
    pairs are on the topic): a math.DS paper that never says "dynamical systems" ranks above a paper
    elsewhere whose abstract holds the words in other forms only, "a dynamic system of agents"."""
    corpus = [
        Paper(id=1, canonical_id="a", title="Ergodicity of skew products over rotations",
              abstract="We prove unique ergodicity for a family of skew products.", categories=("math.DS",)),
        Paper(id=2, canonical_id="b", title="Learning to trade with many agents",
              abstract="We model the market as a dynamic system of agents and learn a policy.",
              categories=("cs.LG",)),
    ]
    # A day of other papers, so that the phrase is as rare as a researcher's phrase is and "system"
    # as common as it is.
    corpus += [Paper(id=10 + i, canonical_id=f"f{i}", title=f"Field notes on bird song, part {i}",
                     abstract="We record the calls of birds" + (" with a recording system." if i % 3 == 0 else "."),
                     categories=("q-bio.PE",)) for i in range(60)]
    ks = score_keywords([_sub("dynamical systems")], corpus)
    assert ks.matched[0][1] == ("dynamical systems",)  # the words in other forms: "Matches" is true
    assert ks.filed[0][0] == ("Dynamical Systems (math.DS)",)
    assert ks.scores[0][0] > ks.scores[0][1] > 0


def test_a_subject_spelt_out_names_the_class_whose_name_abbreviates_it() -> None:
    """math.AP is "Analysis of PDEs": a reader of "partial differential equations" gets its papers,
    which seldom say the phrase, under the class's name; a part of the subject names nothing."""
    corpus = [
        Paper(id=1, canonical_id="a", title="Global solutions to a nonlocal parabolic equation",
              abstract="We prove existence and asymptotic behaviour of global solutions.", categories=("math.AP",)),
        Paper(id=2, canonical_id="b", title="A survey of bird migration",
              abstract="Birds migrate along flyways.", categories=("q-bio.PE",)),
    ]
    ks = score_keywords([_sub("partial differential equations"), _sub("differential equations", sid=2)], corpus)
    assert ks.scores[0][0] > ks.scores[0][1] == 0
    assert ks.filed[0][0] == ("Analysis of PDEs (math.AP)",)
    assert ks.filed[1][0] == ()
    picks = select_picks(corpus, ks.scores[0], ks.matched[0], ks.related[0], top_k=3, min_score=0.05,
                         filed=ks.filed[0])
    assert [(p.paper.id, p.reason) for p in picks] == [(1, "In Analysis of PDEs (math.AP)")]


@pytest.mark.parametrize("probable", [False, True])
def test_the_model_lends_support_only_near_a_paper_the_reader_liked(probable: bool) -> None:
    """After a dozen "not for me", the model stands high for papers merely unlike those, and after a
    dozen "want these" in one class its probability is high for any paper of the class: it lends
    them nothing toward the picks' floor, by what speaks for them or by its probability, unless they
    are nearer than the day's mean to a liked paper."""
    from digest.rank.ranker import feedback_scores

    n = 40
    rng = np.random.default_rng(0)
    words_for = rng.uniform(0.0, 0.1, size=(1, n)).astype(np.float32)
    words_for[0, :2] = 5.0  # the model's two favourites
    learned = np.full((1, n), 0.5, dtype=np.float32)
    if probable:
        learned[0, :2] = 0.9
    near_liked = np.zeros((1, n), dtype=np.float32)
    near_liked[0, 0] = 0.5  # only the first is near what the reader starred
    prior = np.zeros((1, n), dtype=np.float32)
    scores, support = feedback_scores(prior, learned, near_liked, None, np.array([4.0], dtype=np.float32),
                                      prior_support=prior, liked_support=np.zeros_like(prior), words_for=words_for)
    assert support[0, 0] > 0.1
    assert support[0, 1] == 0.0
    if probable:
        assert scores[0, 1] > scores[0, 2]  # the model still orders it among the papers let in


def test_an_acronym_holds_its_words_in_a_row_toward_the_floor() -> None:
    """"large language model agents": a paper on "LLM multi-agent" applications holds "large language
    model" as its initials, in a row, as much as a paper that spells the words out; it was left
    under the picks' floor (the LangGraph paper of the judged day, judged on the topic) while papers
    spelling out "large language models" without a word on agents were let in. A lower-case "llm"
    is not the initials."""
    spelt = ("Agents of large language models", "Large language model agents split the work among themselves.")
    initials = ("LLM multi-agent applications built on LangGraph", "Agents of a large model split the work.")
    lower = ("The llm multi-agent board game", "Agents of a large model split the work.")
    # Words of the phrase on many of the day's papers, so no one of them alone lets a paper in.
    common = [(f"Models of {what}", f"A large agent-based study of {what}.")
              for what in ("galaxies", "glaciers", "genes", "grammars", "graphs", "gears", "gulls", "gales")]
    papers = _day(common + [spelt, initials, lower])
    picked = _picks(papers, "large language model agents")
    assert spelt[0] in picked and initials[0] in picked
    assert lower[0] not in picked


def test_an_acronym_the_paper_writes_in_capitals_stands_for_the_phrase() -> None:
    """"PDEs" is "partial differential equations" in other words, and "LLM agents" is "large language
    model agents"; a lower-case word that happens to be the initials ("mis") is not."""
    corpus = [
        Paper(id=1, canonical_id="a", title="Neural operators for PDEs",
              abstract="We learn solution operators of parametric PDEs from data."),
        Paper(id=2, canonical_id="b", title="Cooperation among LLM agents",
              abstract="Tool-using LLM agents negotiate."),
        Paper(id=3, canonical_id="c", title="Medical images, mis labelled",
              abstract="Segmentation labels are often wrong; we find the mis labelled medical images."),
        Paper(id=4, canonical_id="d", title="A survey of bird migration", abstract="Birds migrate along flyways."),
    ]
    ks = score_keywords([_sub("partial differential equations"), _sub("large language model agents", sid=2),
                         _sub("medical image segmentation", sid=3)], corpus)
    assert ks.matched[0][0] == ("partial differential equations",)
    assert ks.matched[1][1] == ("large language model agents",)
    assert ks.matched[2][2] == ()
    assert ks.scores[0][0] > ks.scores[0][3] and ks.scores[1][1] > ks.scores[1][3]
