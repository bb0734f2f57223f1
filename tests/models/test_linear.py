"""EASE and SLIM against independent solutions of their objectives."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet
from threadpoolctl import ThreadpoolController

from skrec import EASE, SLIM, Popular
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut, evaluate
from skrec.models import linear


def _dense(model, X):
    m = np.zeros((len(model.user_ids_), len(model.item_ids_)))
    m[model._user_index.get_indexer(X.user_id), model._item_index.get_indexer(X.item_id)] = 1
    return m


@pytest.fixture(scope="module")
def small():
    return make_interactions(n_users=80, n_items=25, mean_events=8, random_state=3)


def test_ease_equals_per_item_ridge_with_item_left_out(small):
    model = EASE(l2_reg=7.0).fit(small)
    X = _dense(model, small)
    for j in (0, 5, 24):
        others = np.delete(np.arange(X.shape[1]), j)
        A = X[:, others]
        b = np.linalg.solve(A.T @ A + 7.0 * np.eye(len(others)), A.T @ X[:, j])
        np.testing.assert_allclose(model.coef_[others, j], b, atol=1e-4)
        assert model.coef_[j, j] == 0


def test_slim_equals_elasticnet_per_item(small):
    model = SLIM(alpha=2e-3, l1_ratio=0.3, max_iter=500, tol=1e-9).fit(small)
    X = _dense(model, small)
    W = model.coef_.toarray()
    for j in (0, 7, 24):
        others = np.delete(np.arange(X.shape[1]), j)
        reference = ElasticNet(
            alpha=2e-3,
            l1_ratio=0.3,
            positive=True,
            fit_intercept=False,
            tol=1e-10,
            max_iter=100_000,
        ).fit(X[:, others], X[:, j])
        np.testing.assert_allclose(W[others, j], reference.coef_, atol=1e-4)


def _one_coordinate_at_a_time(G, l1, l2, positive, allowed, sweeps):
    """Cyclic coordinate descent with ``G @ W`` recomputed for every coordinate."""
    W = np.zeros_like(G)
    for _ in range(sweeps):
        for k in range(len(G)):
            rho = G[k] - G[k] @ W + G[k, k] * W[k]
            if positive:
                new = np.maximum(rho - l1, 0.0)
            else:
                new = np.sign(rho) * np.maximum(np.abs(rho) - l1, 0.0)
            new /= G[k, k] + l2
            new[k] = 0.0
            W[k] = new if allowed is None else new * allowed[k]
    return W


@pytest.mark.parametrize("positive", [True, False], ids=["positive", "signed"])
@pytest.mark.parametrize("neighbors", [False, True], ids=["all", "neighbors"])
def test_slim_blocked_descent_has_the_plain_iterates(positive, neighbors):
    # blocks of 16 and chunks of 5 over 50 items: partial chunks and a partial block
    rng = np.random.default_rng(0)
    X = (rng.random((120, 50)) < 0.2).astype(np.float64)
    G = X.T @ X
    allowed = rng.random((50, 50)) < 0.5 if neighbors else None
    W, n_iter = linear._slim_coordinate_descent(
        G.astype(np.float32), 1.0, 5.0, positive, allowed, 3, 0.0, False, block=16, chunk=5
    )
    expected = _one_coordinate_at_a_time(G, 1.0, 5.0, positive, allowed, 3)
    assert n_iter == 3 and (expected != 0).mean() > 0.1
    assert positive or expected.min() < 0
    np.testing.assert_allclose(W, expected, atol=1e-5)


def test_slim_threads_change_the_speed_not_the_weights():
    # signed weights: the per-block update of G @ W is the dense, threaded product
    X = make_interactions(n_users=400, n_items=120, random_state=1)
    blas = ThreadpoolController()
    limits = [lib["num_threads"] for lib in blas.select(user_api="blas").info()]
    one = SLIM(alpha=1e-3, l1_ratio=0.05, positive=False, n_jobs=1).fit(X).coef_
    two = SLIM(alpha=1e-3, l1_ratio=0.05, positive=False, n_jobs=2).fit(X).coef_
    assert one.min() < 0 and one.nnz > 0.2 * 120 * 120
    np.testing.assert_allclose(two.toarray(), one.toarray(), atol=1e-6)
    # fit restores the process's BLAS threads
    assert [lib["num_threads"] for lib in blas.select(user_api="blas").info()] == limits


def test_slim_weights_are_sparse_nonnegative_zero_diagonal():
    X = make_interactions(n_users=300, n_items=80, random_state=0)
    W = SLIM(alpha=1e-3, l1_ratio=0.5).fit(X).coef_
    assert W.min() >= 0
    assert (W.diagonal() == 0).all()
    assert W.nnz < 0.3 * 80 * 80
    neighbors = SLIM(alpha=1e-3, l1_ratio=0.5, n_neighbors=5).fit(X).coef_
    assert (np.diff(neighbors.tocsc().indptr) <= 5).all()


@pytest.mark.parametrize(
    "model", [EASE(l2_reg=50.0), SLIM(alpha=1e-3, l1_ratio=0.1)], ids=["EASE", "SLIM"]
)
def test_beats_popular_on_structured_data(model):
    X = make_interactions(n_users=600, n_items=150, random_state=0)
    train, test = next(LeaveLastOut().split(X))
    popular = evaluate(Popular().fit(X.iloc[train]), X.iloc[test])["ndcg@10"]
    learned = evaluate(model.fit(X.iloc[train]), X.iloc[test])["ndcg@10"]
    assert learned > 1.3 * popular, (learned, popular)


def test_similar_items_follow_the_weights(small):
    model = EASE(l2_reg=7.0).fit(small)
    item = model.item_ids_[3]
    ids, scores = model.similar_items([item], k=4, return_scores=True)
    row = model.coef_[3].copy()
    row[3] = -np.inf
    assert ids[0, 0] == model.item_ids_[np.argmax(row)] and item not in ids[0]
    assert SLIM(alpha=1e-3).fit(small).similar_items([item], k=2).shape == (1, 2)


def test_the_gram_matrix_is_built_right_across_column_blocks():
    """1,100 items make 16 column blocks of 69 (and a short last one)."""
    seen = sp.random(300, 1100, density=0.02, format="csr", random_state=0)
    seen.data *= 5.0  # weights other than 1 are binarised
    dense = (seen.toarray() > 0).astype(np.float64)
    np.testing.assert_array_equal(linear._binary_gram(seen), dense.T @ dense)


def test_ease_refuses_what_will_not_fit(monkeypatch, small):
    monkeypatch.setattr(linear, "_available_memory_bytes", lambda: 1000.0)
    with pytest.raises(MemoryError, match="GiB for 25 items.*SLIM or ALS"):
        EASE().fit(small)


@pytest.mark.parametrize(
    "model, match",
    [
        (EASE(l2_reg=-1), "l2_reg"),
        (SLIM(alpha=0), "'alpha'"),
        (SLIM(l1_ratio=2), "l1_ratio"),
        (SLIM(n_neighbors=0), "n_neighbors"),
    ],
)
def test_bad_hyper_parameters(model, match, small):
    with pytest.raises(ValueError, match=match):
        model.fit(small)


def test_history_scores_from_the_given_events(small):
    model = EASE(l2_reg=7.0).fit(small)
    items = model.item_ids_[:3]
    history = pd.DataFrame({"user_id": ["s"] * 3, "item_id": items})
    expected = model.coef_[:3].sum(0)
    expected[:3] = -np.inf
    ids = model.recommend(["s"], k=3, history=history)
    np.testing.assert_array_equal(ids[0], model.item_ids_[np.argsort(-expected, kind="stable")[:3]])


@pytest.mark.parametrize("cls", [EASE, SLIM])
def test_recency_half_life_weights_the_scoring_row(cls, small):
    model = cls(recency_half_life=3.0).fit(small)
    coef = model.coef_.toarray() if cls is SLIM else model.coef_
    user = small.user_id.iloc[0]
    events = small[small.user_id == user].sort_values("timestamp", kind="stable")
    age = np.arange(len(events))[::-1]  # 0 for the latest event
    row = np.zeros(coef.shape[0])  # an item seen twice counts once, at its latest event
    np.maximum.at(row, model._item_index.get_indexer(events.item_id), 0.5 ** (age / 3.0))
    expected = row @ coef
    scores = model._score_users(model._context([user], None)).numpy()[0]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [EASE, SLIM])
@pytest.mark.parametrize("half_life", [None, 2.0])
def test_scoring_reads_the_binary_row_fit_learned_from(cls, half_life, small):
    """Repeated events and weights change neither B (fit binarises) nor the scoring row:
    the row is binary as in fit (with recency: each item at its latest event)."""
    repeats = small.iloc[::3].assign(timestamp=lambda f: f.timestamp - 10**6)  # earlier
    rng = np.random.default_rng(0)
    noisy = pd.concat([small, repeats]).assign(weight=lambda f: rng.uniform(0.5, 5, len(f)))
    plain = cls(recency_half_life=half_life).fit(small)
    model = cls(recency_half_life=half_life).fit(noisy)
    coef = lambda m: m.coef_.toarray() if cls is SLIM else m.coef_  # noqa: E731
    np.testing.assert_allclose(coef(model), coef(plain), rtol=1e-5, atol=1e-6)
    users = small.user_id.unique()
    ids, scores = model.recommend(users, k=5, return_scores=True)
    plain_ids, plain_scores = plain.recommend(users, k=5, return_scores=True)
    # (the repeats come before every event: the latest events keep their ages)
    np.testing.assert_allclose(scores, plain_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ids, plain_ids)
    history = noisy[noisy.user_id == users[0]].assign(user_id="s")
    again = model.recommend(["s"], k=5, history=history, return_scores=True)
    np.testing.assert_allclose(again[1][0], scores[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [EASE, SLIM])
def test_recency_weighting_helps_on_ordered_data(cls):
    X = make_interactions(
        n_users=300, n_items=80, mean_events=15, sequential_strength=0.8, random_state=1
    )
    train, test = next(LeaveLastOut().split(X))
    model = cls().fit(X.iloc[train]) if cls is EASE else cls(alpha=1e-3).fit(X.iloc[train])
    plain = evaluate(model, X.iloc[test])["ndcg@10"]
    recent = evaluate(model.set_params(recency_half_life=1.0), X.iloc[test])["ndcg@10"]
    assert recent > 1.5 * plain, (plain, recent)


@pytest.mark.parametrize("cls", [EASE, SLIM])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "2", True])
def test_a_bad_half_life_set_after_fit_is_refused_when_scoring(cls, bad, small):
    model = cls().fit(small)
    model.set_params(recency_half_life=bad)
    with pytest.raises(ValueError, match="recency_half_life"):
        model.recommend([small.user_id.iloc[0]], k=5)
