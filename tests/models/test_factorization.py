"""ALS: the implicit package behind the skrec contract."""

import numpy as np
import pandas as pd
import pytest
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from skrec import ALS, Popular
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut, evaluate


@pytest.fixture(scope="module")
def data():
    return make_interactions(n_users=400, n_items=120, random_state=1)


def test_factors_match_raw_implicit_in_the_right_orientation(data):
    model = ALS(
        n_factors=8, max_iter=4, regularization=0.1, alpha=2.0, random_state=5, n_jobs=1
    ).fit(data)
    seed = np.random.RandomState(5).randint(2**31 - 1)
    with threadpool_limits(1, "blas"):
        raw = AlternatingLeastSquares(
            factors=8,
            iterations=4,
            regularization=0.1,
            alpha=2.0,
            random_state=int(seed),
            num_threads=1,
        )
        raw.fit(model._seen, show_progress=False)
    assert model.user_factors_.shape == (len(model.user_ids_), 8)
    assert model.item_factors_.shape == (len(model.item_ids_), 8)
    np.testing.assert_allclose(model.user_factors_, raw.user_factors, atol=1e-5)
    np.testing.assert_allclose(model.item_factors_, raw.item_factors, atol=1e-5)


def test_confidence_is_alpha_times_weight(data):
    """The docstring's objective: an observed pair has confidence alpha * w and target 1,
    every other pair confidence 1 and target 0. A folded-in user solves its normal
    equation ``(Y'Y + Y'(C - I)Y + reg I) x = Y'C p`` against the item factors."""
    weighted = data.assign(weight=np.random.default_rng(0).uniform(0.5, 3.0, len(data)))
    alpha, reg = 3.0, 0.1
    model = ALS(n_factors=8, alpha=alpha, regularization=reg, use_cg=False, random_state=0)
    model.fit(weighted)
    user = weighted.user_id.iloc[0]
    events = weighted[weighted.user_id == user]
    folded = model._user_item_vectors(model._context([user], history=events))[0][0]
    Y = model.item_factors_.astype(np.float64)
    items = model._item_index.get_indexer(events.item_id)
    w = np.bincount(items, weights=events.weight, minlength=len(Y))[np.unique(items)]
    rows = Y[np.unique(items)]
    c = alpha * w
    A = Y.T @ Y + (rows.T * (c - 1)) @ rows + reg * np.eye(Y.shape[1])
    np.testing.assert_allclose(folded, np.linalg.solve(A, rows.T @ c), rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="alpha"):
        ALS(alpha=0.0).fit(data)


def test_beats_popular(data):
    train, test = next(LeaveLastOut().split(data))
    popular = evaluate(Popular().fit(data.iloc[train]), data.iloc[test])["ndcg@10"]
    als = evaluate(
        ALS(n_factors=16, regularization=1.0, random_state=0).fit(data.iloc[train]), data.iloc[test]
    )["ndcg@10"]
    assert als > 1.3 * popular, (als, popular)


def test_history_folds_in_a_new_user_like_a_known_one(data):
    model = ALS(n_factors=16, regularization=1.0, use_cg=False, random_state=0).fit(data)
    user = data.user_id.iloc[0]
    events = data[data.user_id == user].assign(user_id="clone")
    known = model.recommend([user], k=10)[0]
    folded = model.recommend(["clone"], k=10, history=events)[0]
    assert len(set(known) & set(folded)) >= 7


def test_similar_items_are_cosine_neighbours(data):
    model = ALS(n_factors=8, random_state=0).fit(data)
    v = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    sims = v @ v[0]
    sims[0] = -np.inf
    assert model.similar_items([model.item_ids_[0]], k=1)[0, 0] == model.item_ids_[np.argmax(sims)]


def test_bad_parameters_and_device():
    X = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 2]})
    with pytest.raises(ValueError, match="n_factors"):
        ALS(n_factors=0).fit(X)
    with pytest.raises(ValueError, match="not a torch device"):
        ALS(device="quantum").fit(X)
