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
