"""The synthetic generator has the structure it promises; loaders read the shared data."""

import numpy as np
import pandas as pd
import pytest
import torch

from skrec import Popular
from skrec.base import BaseRecommender
from skrec.datasets import (
    _seq_order_of_ncf_pairs,
    fetch_interactions,
    load_beauty,
    load_diginetica_sample,
    load_frappe,
    load_ml_1m,
    load_ml_1m_ncf,
    load_ml_1m_seq,
    load_ml_100k,
    make_interactions,
)
from skrec.model_selection import LeaveLastOut, evaluate

from .conftest import data_folder


class CooccurrenceKNN(BaseRecommender):
    """Order-blind: scores by cosine item co-occurrence with the user's items (one hook)."""

    def _fit(self, data, y):
        m = data.csr()
        m.data[:] = 1
        gram = (m.T @ m).toarray()
        norms = np.sqrt(np.diag(gram))
        self.similarity_ = gram / np.maximum(np.outer(norms, norms), 1)
        np.fill_diagonal(self.similarity_, 0)

    def _score_users(self, context):
        return torch.from_numpy(context.events.csr() @ self.similarity_)


class LastItemMarkov(BaseRecommender):
    """Order-aware: scores by transition counts from the user's last item."""

    _requires_timestamp = True

    def _fit(self, data, y):
        same_user = data.user[1:] == data.user[:-1]
        self.transitions_ = np.zeros((data.n_items, data.n_items))
        np.add.at(self.transitions_, (data.item[:-1][same_user], data.item[1:][same_user]), 1)

    def _score_users(self, context):
        last = context.events.item[context.events.indptr[1:] - 1]
        return torch.from_numpy(self.transitions_[last])


def test_make_interactions_is_reproducible_and_well_formed():
    X = make_interactions(n_users=50, n_items=40, random_state=1)
    assert X.equals(make_interactions(n_users=50, n_items=40, random_state=1))
    assert not X.duplicated(["user_id", "item_id"]).any()
    assert (X.groupby("user_id").size() >= 5).all()
    assert (X.groupby("user_id").timestamp.diff().dropna() > 0).all()
    with pytest.raises(ValueError, match="sequential_strength"):
        make_interactions(sequential_strength=2)
    # NaN logits used to give every user the items 0, 1, 2, ...
    for name in ("popularity_skew", "temperature"):
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            make_interactions(n_users=4, n_items=40, **{name: float("nan")})
    with pytest.raises(TypeError, match="n_users must be an integer"):
        make_interactions(n_users=5.0)


def test_latent_structure_beats_popular_and_order_beats_order_blind():
    X = make_interactions(n_users=600, n_items=150, random_state=0)
    train, test = next(LeaveLastOut().split(X))
    scores = {
        type(m).__name__: evaluate(m.fit(X.iloc[train]), X.iloc[test])["ndcg@10"]
        for m in (Popular(), CooccurrenceKNN(), LastItemMarkov())
    }
    assert scores["CooccurrenceKNN"] > 1.3 * scores["Popular"], scores
    assert scores["LastItemMarkov"] > 1.3 * scores["CooccurrenceKNN"], scores


def test_without_sequence_order_does_not_help():
    X = make_interactions(n_users=600, n_items=150, sequential_strength=0.0, random_state=0)
    train, test = next(LeaveLastOut().split(X))
    knn = evaluate(CooccurrenceKNN().fit(X.iloc[train]), X.iloc[test])["ndcg@10"]
    markov = evaluate(LastItemMarkov().fit(X.iloc[train]), X.iloc[test])["ndcg@10"]
    assert markov < knn


def test_missing_dataset_error_names_the_variable(tmp_path):
    with pytest.raises(FileNotFoundError, match="SKREC_DATA"):
        load_ml_1m_seq(data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match="SKREC_DATA"):
        load_beauty(data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="Unknown dataset"):
        fetch_interactions("nope")


@pytest.mark.parametrize(
    "folder, loader, check",
    [
        (
            "ml-100k",
            load_ml_100k,
            lambda b: (
                (
                    len(b.interactions),
                    b.interactions.user_id.nunique(),
                    len(b.user_features),
                    len(b.item_features),
                )
                == (100_000, 943, 943, 1682)
            ),
        ),
        (
            "ml-1m",
            load_ml_1m,
            lambda b: (
                (len(b.interactions), len(b.user_features), len(b.item_features))
                == (1_000_209, 6040, 3883)
            ),
        ),
        (
            "ml-1m-seq",
            load_ml_1m_seq,
            lambda b: (len(b.interactions), b.interactions.item_id.nunique()) == (999_611, 3416),
        ),
        (
            "ml-1m-ncf",
            load_ml_1m_ncf,
            lambda b: (len(b.test), b.negatives.shape, len(b.train)) == (6040, (6040, 99), 994_169),
        ),
        (
            "amazon-beauty-bert4rec",
            load_beauty,
            lambda b: (
                (
                    len(b.interactions),
                    b.interactions.user_id.nunique(),
                    b.interactions.item_id.nunique(),
                )
                == (353_962, 40_226, 54_542)
            ),
        ),
        ("frappe-raw", load_frappe, lambda b: len(b.log) == 96_203),
        ("diginetica-sample", load_diginetica_sample, lambda b: len(b.interactions) == 12_391),
    ],
)
def test_loaders_read_the_shared_layout(folder, loader, check):
    home = data_folder(folder).parent
    assert check(loader(data_home=home))


def test_a_downloaded_ml_100k_holds_every_file_the_loader_reads(tmp_path):
    """The download fetches exactly the listed files (checksummed): the loader must need
    no other (the five rating splits were once missing from the list)."""
    import shutil

    from skrec.datasets import _SOURCES

    source = data_folder("ml-100k")
    (tmp_path / "ml-100k").mkdir()
    for name in _SOURCES["ml-100k"]:
        shutil.copy(source / name, tmp_path / "ml-100k" / name)
    bunch = load_ml_100k(data_home=tmp_path, download=False)
    assert len(bunch.folds) == 5 and len(bunch.folds[0][1]) == 20_000


def test_ncf_pairs_in_time_order_put_each_users_latest_last():
    home = data_folder("ml-1m-ncf").parent
    data_folder("ml-1m-seq")
    plain = load_ml_1m_ncf(data_home=home)
    timed = load_ml_1m_ncf(data_home=home, order="time")
    assert timed.train[["user_id", "item_id"]].equals(plain.train)
    line = timed.train.timestamp.to_numpy()
    # every found pair has its own line of ml-1m.txt; -1 marks the items that file drops
    assert len(np.unique(line[line >= 0])) == (line >= 0).sum()
    assert (line < 0).sum() == 593
    # The test pair is each user's latest event: in the recovered order it comes after
    # all of the user's training pairs, except where ratings share a second (the SASRec
    # file orders those its own way) or where its item is one that file drops.
    pairs = pd.concat([plain.train, plain.test[["user_id", "item_id"]]], ignore_index=True)
    test_line = _seq_order_of_ncf_pairs(pairs, load_ml_1m_seq(data_home=home).interactions)[
        len(plain.train) :
    ]
    latest = timed.train.groupby("user_id").timestamp.max().loc[plain.test.user_id].to_numpy()
    assert (test_line > latest).mean() > 0.7
    assert (test_line >= latest - 2).mean() > 0.9
    with pytest.raises(ValueError, match="order must be"):
        load_ml_1m_ncf(data_home=home, order="random")
