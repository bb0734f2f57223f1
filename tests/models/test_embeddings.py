"""Item2Vec: co-occurrence structure, windows, subsampling, users from history."""

import numpy as np
import pandas as pd
import pytest
import torch

from skrec import Item2Vec, Popular
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut, evaluate


@pytest.fixture(scope="module")
def split():
    # latent tastes only: co-occurrence carries them
    data = make_interactions(n_users=400, n_items=120, sequential_strength=0.0, random_state=1)
    train, test = next(LeaveLastOut().split(data))
    return data.iloc[train], data.iloc[test]


@pytest.mark.parametrize("window", [None, 3])
def test_beats_popular(split, window):
    train, test = split
    popular = evaluate(Popular().fit(train), test)["ndcg@10"]
    model = Item2Vec(n_factors=16, window=window, max_iter=15, random_state=0).fit(train)
    assert evaluate(model, test)["ndcg@10"] > 1.8 * popular, window


@pytest.mark.parametrize("window", [None, 3])
def test_sgd_fit_is_the_same_with_the_closed_form_step(split, window):
    train, _ = split
    params = dict(n_factors=8, window=window, optimizer="sgd", learning_rate=5.0, max_iter=3)
    fast = Item2Vec(random_state=0, **params).fit(train)
    # A clipping norm that never binds sends each step through autograd instead.
    slow = Item2Vec(random_state=0, clip_grad_norm=1e9, **params).fit(train)
    np.testing.assert_allclose(fast.item_factors_, slow.item_factors_, atol=1e-4)
    np.testing.assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-5)
    assert fast.loss_curve_[-1] < fast.loss_curve_[0]  # it trained


def test_items_that_always_co_occur_are_most_similar():
    # Users hold one of four disjoint item groups; items of a group should be neighbours.
    rng = np.random.RandomState(0)
    rows = []
    for user in range(200):
        group = user % 4
        for item in rng.choice(10, size=6, replace=False):
            rows.append((user, group * 10 + item))
    X = pd.DataFrame(rows, columns=["user_id", "item_id"])
    model = Item2Vec(n_factors=8, max_iter=20, subsample=0, random_state=0).fit(X)
    neighbours = model.similar_items(np.arange(40), k=5)
    assert ((neighbours // 10) == (np.arange(40) // 10)[:, None]).mean() > 0.95


def test_new_users_need_no_training(split):
    train, _ = split
    model = Item2Vec(n_factors=8, max_iter=3, random_state=0).fit(train)
    user = train.user_id.iloc[0]
    events = train[train.user_id == user].assign(user_id="clone")
    np.testing.assert_array_equal(
        model.recommend(["clone"], history=events), model.recommend([user])
    )


def test_subsampling_drops_frequent_items_more():
    X = make_interactions(n_users=300, n_items=50, popularity_skew=1.5, random_state=0)
    model = Item2Vec(subsample=1e-3, max_iter=1, random_state=0).fit(X)

    prepared = model._prepare(model._train)
    query, _, _ = model._epoch_pairs(prepared, torch.Generator().manual_seed(0))
    counts = model._train.item_counts()
    kept = np.bincount(query.numpy(), minlength=len(counts)) / np.maximum(counts, 1)
    frequent, rare = np.argsort(counts)[-5:], np.argsort(counts)[:5]
    assert kept[frequent].mean() < kept[rare].mean()


def test_recency_half_life_weights_history_by_age():
    X = pd.DataFrame(
        {"user_id": [0] * 3 + [1] * 3, "item_id": [0, 1, 2, 2, 0, 1], "timestamp": [3, 1, 2] * 2}
    )
    model = Item2Vec(n_factors=4, max_iter=1, recency_half_life=2.0, random_state=0).fit(X)
    unit = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    users, items = model._user_item_vectors(model._context([0, 1], None))
    # In time order user 0 saw items 1, 2, 0 and user 1 saw 0, 1, 2 (ages 2, 1, 0).
    weights = 0.5 ** (np.array([2, 1, 0]) / 2.0)
    for user, order in ((0, [1, 2, 0]), (1, [0, 1, 2])):
        rows = model._item_index.get_indexer(order)
        expected = (weights[:, None] * unit[rows]).sum(0) / weights.sum()
        np.testing.assert_allclose(users[user], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(items, unit, rtol=1e-6)


def test_recency_weighting_helps_on_ordered_data():
    # The next item mostly follows the current one: the latest items should weigh most.
    X = make_interactions(
        n_users=300, n_items=80, mean_events=15, sequential_strength=0.8, random_state=1
    )
    train, test = next(LeaveLastOut().split(X))
    train, test = X.iloc[train], X.iloc[test]
    model = Item2Vec(n_factors=16, window=2, max_iter=15, random_state=0).fit(train)
    plain = evaluate(model, test)["ndcg@10"]
    recent = evaluate(model.set_params(recency_half_life=1.0), test)["ndcg@10"]
    assert recent > 2 * plain, (plain, recent)


def test_repeated_items_count_once_without_recency_and_at_each_age_with_it():
    X = pd.DataFrame(
        {"user_id": [0, 0, 0, 0, 1, 1], "item_id": [0, 0, 0, 1, 0, 1], "timestamp": range(6)}
    )
    model = Item2Vec(n_factors=4, max_iter=1, random_state=0).fit(X)
    users, items = model._user_item_vectors(model._context([0, 1], None))
    np.testing.assert_allclose(users[0], users[1], rtol=1e-6)  # the same set of items
    model.set_params(recency_half_life=1.0)
    users, _ = model._user_item_vectors(model._context([0], None))
    rows = model._item_index.get_indexer([0, 1])
    weights = np.array([0.125 + 0.25 + 0.5, 1.0])  # item 0 at ages 3, 2, 1; item 1 at 0
    expected = (weights[:, None] * items[rows]).sum(0) / weights.sum()
    np.testing.assert_allclose(users[0], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "2", True])
def test_a_bad_half_life_set_after_fit_is_refused_when_scoring(split, bad):
    train, _ = split
    model = Item2Vec(n_factors=4, max_iter=1, random_state=0).fit(train)
    before = model.recommend([train.user_id.iloc[0]], k=5)
    model.set_params(recency_half_life=bad)
    with pytest.raises(ValueError, match="recency_half_life"):
        model.recommend([train.user_id.iloc[0]], k=5)
    np.testing.assert_array_equal(
        model.set_params(recency_half_life=None).recommend([train.user_id.iloc[0]], k=5), before
    )


def test_an_emptied_history_after_the_hold_out_is_named_as_such():
    """Two events per user and validation_fraction=1.0: early stopping leaves one each;
    the error must say so, not that X has one event per user."""
    X = pd.DataFrame({"user_id": [0, 0, 1, 1], "item_id": [0, 1, 1, 2], "timestamp": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match="once early stopping has held out"):
        Item2Vec(max_iter=1, early_stopping=True, validation_fraction=1.0, random_state=0).fit(X)
    with pytest.raises(ValueError, match="has one event. Pass longer"):
        Item2Vec(max_iter=1).fit(X.iloc[[0, 2]])
