"""Input validation and the failure behaviour of BaseRecommender."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skrec import EASE, Popular, Random
from skrec.utils.validation import check_interactions


def _table(**columns):
    base = {"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11]}
    base.update(columns)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    "X, error, match",
    [
        (
            pd.DataFrame({"user": [1, 2], "item_id": [1, 2]}),
            ValueError,
            "missing the column.*user_id",
        ),
        (
            _table(user_id=[1, None, 2, 2, 3]),
            ValueError,
            "'user_id'.*missing value.*row\\(s\\) \\[1\\]",
        ),
        (_table(item_id=[10, 11, np.nan, 12, 11]), ValueError, "'item_id'.*missing value"),
        (_table().iloc[:0], ValueError, "empty interaction table"),
        (_table(user_id=[1] * 5), ValueError, "1 distinct users"),
        (_table(item_id=[7] * 5), ValueError, "1 distinct items"),
        (_table(weight=[1.0, -2.0, 1.0, 1.0, 1.0]), ValueError, "'weight'.*negative.*Binarize"),
        (_table(weight=[1.0, np.inf, 1.0, 1.0, 1.0]), ValueError, "'weight'.*infinite"),
        (_table(timestamp=[1, "x", {}, 3, 4]), TypeError, "'timestamp'.*cannot be ordered"),
        (_table(timestamp=[1, None, 2, 3, 4]), ValueError, "'timestamp'.*missing value"),
        (np.arange(20).reshape(5, 4), ValueError, "4 columns.*DataFrame"),
        (np.arange(5), ValueError, "Reshape your data"),
        (sp.eye(3, format="csr"), TypeError, "sparse input is not supported"),
        ("user,item", TypeError, "DataFrame or a 2-D array"),
        ({"user_id": [1], "item_id": [2]}, TypeError, "pandas.DataFrame\\(X\\)"),
        ((r for r in [(1, 2)]), TypeError, "got generator. Materialise"),
        ([(1, 10, 1), (1, 11), (2, 10, 3)], ValueError, "different lengths \\[2, 3\\]"),
        ([], ValueError, "X is empty"),
        (
            pd.DataFrame([[1, 10, 11]], columns=["user_id", "item_id", "item_id"]),
            ValueError,
            "more than one column named 'item_id'",
        ),
        (_table(user_id=[[1], [1], [2], [2], [3]]), TypeError, "'user_id'.*hashable.*\\[1\\]"),
        (_table(user_id=np.arange(5) + 1j), ValueError, "'user_id'.*complex"),
        (_table(weight=[1e300] * 5), ValueError, "'weight'.*too large for float32"),
        (
            _table(timestamp=np.array([2**64 - 1, 1, 2, 3, 4], dtype=np.uint64)),
            ValueError,
            "'timestamp'.*beyond the 64-bit",
        ),
        (_table(timestamp=[2**70, 1, 2, 3, 4]), ValueError, "'timestamp'.*beyond the 64-bit"),
        (
            _table(timestamp=np.array(["3000-01-01"] * 5, dtype="datetime64[s]")),
            ValueError,
            "'timestamp'.*outside the years 1677-2262",
        ),
        (_table(timestamp=["2500-01-01"] * 5), ValueError, "outside the years 1677-2262"),
        (
            np.ma.masked_equal([[1, 10], [2, 11], [3, 12]], 11),
            ValueError,
            "'item_id'.*missing value.*row\\(s\\) \\[1\\]",
        ),
    ],
)
def test_bad_tables_get_clear_errors(X, error, match):
    with pytest.raises(error, match=match):
        Popular().fit(X)


def test_structured_arrays_name_their_columns():
    rows = np.array([(1, 10), (2, 11), (1, 11)], dtype=[("item_id", int), ("user_id", int)])
    assert Popular().fit(rows).item_ids_.tolist() == [1, 2]


def test_dates_order_across_time_zones():
    zones = ["UTC", "Asia/Tokyo", "UTC", "America/New_York"]
    X = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2],
            "item_id": [10, 11, 10, 11],
            "timestamp": [pd.Timestamp("2024-01-01 08:00", tz=tz) for tz in zones],
        }
    )
    times = check_interactions(X)["timestamp"]
    hour = 3600 * 10**9
    # 08:00 in Tokyo is 23:00 UTC the day before; 08:00 in New York is 13:00 UTC
    assert (times - times[0]).tolist() == [0, -9 * hour, 0, 5 * hour]


@pytest.mark.parametrize("param", ["by", "random_state"])
def test_a_bool_is_not_a_number(param):
    from skrec import Random

    model = Popular(by=True) if param == "by" else Random(random_state=True)
    with pytest.raises(ValueError, match=f"'{param}' parameter of {type(model).__name__}"):
        model.fit(_table())


def test_y_must_align():
    with pytest.raises(ValueError, match="one value per row"):
        Popular().fit(_table(), y=[1, 2])


def test_failed_fit_leaves_previous_model_intact(interactions):
    model = Popular().fit(interactions)
    before = model.recommend(interactions.user_id.unique()[:5], k=5)
    with pytest.raises(ValueError):
        model.fit(_table(user_id=[1, None, 2, 2, 3]))
    with pytest.raises(ValueError):
        Popular(by="nonsense").set_params().fit(interactions)
    np.testing.assert_array_equal(model.recommend(interactions.user_id.unique()[:5], k=5), before)
    model.set_params(by="nonsense")
    with pytest.raises(ValueError, match="'by' parameter of Popular"):
        model.fit(interactions)
    np.testing.assert_array_equal(model.recommend(interactions.user_id.unique()[:5], k=5), before)


def test_unfitted_failed_fit_stays_unfitted():
    model = Popular(by="nonsense")
    with pytest.raises(ValueError):
        model.fit(_table())
    assert not hasattr(model, "item_ids_")


@pytest.mark.parametrize(
    "k, match",
    [
        (4, "k=4 is larger than the number of candidate items \\(3\\)"),
        (0, "positive integer"),
        (2.5, "positive integer"),
    ],
)
def test_bad_k(k, match):
    model = Popular().fit(_table())
    with pytest.raises(ValueError, match=match):
        model.recommend([1], k=k)


def test_no_users_give_an_empty_answer():
    model = Popular().fit(_table())
    ids, scores = model.recommend([], k=2, return_scores=True)
    assert ids.shape == (0, 2) and scores.shape == (0, 2)


@pytest.mark.parametrize(
    "users, error, match",
    [
        ({1, 2}, TypeError, "users must be a 1-D array-like.*got set"),
        ({1: "a"}, TypeError, "got dict"),
        ((u for u in [1]), TypeError, "got generator"),
        (sp.eye(2, format="csr"), TypeError, "got csr_matrix"),
        (np.array([[1], [2, 3]], dtype=object), TypeError, "users must be hashable ids.*\\[1\\]"),
        ([[1, 2]], ValueError, "users must be 1-D"),
    ],
)
def test_odd_user_containers_get_clear_errors(users, error, match):
    with pytest.raises(error, match=match):
        Popular().fit(_table()).recommend(users, k=1)


@pytest.mark.parametrize("users", [[np.nan, 1], [1, None], np.array([1.0, np.nan]), [pd.NA]])
def test_missing_user_ids_are_refused_with_or_without_history(users):
    """A NaN user once read the flags of the last requested user, with history."""
    model = Popular().fit(_table())
    history = pd.DataFrame({"user_id": [1], "item_id": [10]})
    for given in (None, history):
        with pytest.raises(ValueError, match="users has 1 missing id.*Drop them"):
            model.recommend(users, k=1, history=given)
    with pytest.raises(ValueError, match="items has 1 missing id"):
        EASE().fit(_table()).similar_items([10, None], k=1)


def test_random_keys_history_users_by_their_history_not_their_row():
    """Once keyed by row: the same history got another list in another position."""
    from skrec.datasets import make_interactions

    model = Random(random_state=0).fit(make_interactions(n_users=30, n_items=50, random_state=0))
    history = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": [1, 2, 3]})
    forward = model.recommend(["a", "b"], k=10, history=history, exclude_seen=False)
    backward = model.recommend(["b", "a"], k=10, history=history, exclude_seen=False)
    assert (forward[0] != forward[1]).any()
    np.testing.assert_array_equal(forward, backward[::-1])
    same_items = history.assign(user_id=["c", "c", "b"])
    again = model.recommend(["c"], k=10, history=same_items, exclude_seen=False)
    np.testing.assert_array_equal(again[0], forward[0])
    trained = model.recommend([1, 2], k=10)
    np.testing.assert_array_equal(model.recommend([2, 1], k=10), trained[::-1])


def test_unhashable_ids_in_predict_and_history():
    model = Popular().fit(_table())
    with pytest.raises(TypeError, match="'user_id' of X must be hashable"):
        model.predict(pd.DataFrame({"user_id": [[1]], "item_id": [10]}))
    history = pd.DataFrame({"user_id": ["new"], "item_id": [{}]})
    with pytest.raises(TypeError, match="'item_id' of history must be hashable"):
        model.recommend(["new"], k=1, history=history)


def test_similar_items_names_unknown_items():
    from skrec import EASE

    with pytest.raises(ValueError, match="1 item id\\(s\\) unknown.*'zz'.*item_ids_"):
        EASE().fit(_table()).similar_items(["zz"], k=1)


def test_allow_list_errors():
    model = Popular().fit(_table())
    with pytest.raises(ValueError, match="empty"):
        model.recommend([1], k=1, items=[])
    with pytest.raises(ValueError, match="unknown to the model.*99"):
        model.recommend([1], k=1, items=[10, 99])


def test_string_and_mixed_ids_round_trip():
    X = pd.DataFrame({"user_id": ["a", "a", "b", 7, 7], "item_id": ["x", "y", "x", "z", 3]})
    model = Popular().fit(X)
    assert set(model.item_ids_) == {"x", "y", "z", 3}
    ids = model.recommend(["b", 7], k=2)
    assert not {"x"} & set(ids[0]) and not {"z", 3} & set(ids[1])


def test_tuple_ids_round_trip():
    X = pd.DataFrame({"user_id": [(1, 2), (1, 2), (3,), (3,)], "item_id": [1, 2, 2, 3]})
    model = Popular().fit(X)
    assert model.recommend([(3,), (1, 2)], k=1).tolist() == [[1], [3]]


def test_ids_beyond_int64_round_trip():
    """A list of a small and a huge int is no float array: the huge id stays exact."""
    X = pd.DataFrame({"user_id": [1, 1, 2**64 - 1, 2**64 - 1, "a"], "item_id": [1, 2, 2, 3, 1]})
    model = Popular().fit(X)
    assert model.recommend([1, 2**64 - 1], k=1).tolist() == [[3], [1]]


@pytest.mark.parametrize(
    "users",
    [[2, b"2"], ["\xf2", b"\xf2"], ["a\x00", "a"], [True, 1.5]],
    ids=["int and bytes", "str and bytes", "trailing NUL", "bool and float"],
)
def test_a_list_of_mixed_ids_keeps_each_id(users):
    """numpy would turn these lists into one dtype (b"2", a decode error, "a", 1.0)."""
    X = pd.DataFrame({"user_id": users * 2, "item_id": [1, 2, 2, 3]})
    model = Popular().fit(X)
    assert model.recommend(users, k=1).tolist() == [[3], [1]]


def test_categorical_and_array_input():
    X = _table().astype({"user_id": "category", "item_id": "category"})
    assert Popular().fit(X).recommend([2], k=1)[0, 0] == 11
    assert Popular().fit(_table().to_numpy()).recommend([2], k=1)[0, 0] == 11


def test_duplicates_add_up_and_ties_go_to_smaller_id():
    X = pd.DataFrame({"user_id": [1, 2, 3, 3, 4], "item_id": [5, 6, 6, 6, 9]})
    model = Popular().fit(X)
    assert model.recommend([4], k=2, exclude_seen=False)[0].tolist() == [6, 5]
    assert Popular(by="users").fit(X).item_popularity_.tolist() == [1, 2, 1]


def test_short_rows_are_padded_with_none():
    model = Popular().fit(_table())
    ids, scores = model.recommend([1], k=3, return_scores=True)
    assert ids[0].tolist() == [12, None, None] and np.isneginf(scores[0, 1:]).all()


def test_history_replaces_training_context():
    model = Popular().fit(_table())
    # User 1 saw 10 and 11 in training; a fresh session with item 12 only.
    ids = model.recommend([1, 3], k=2, history=pd.DataFrame({"user_id": [1], "item_id": [12]}))
    assert ids[0].tolist() == [10, 11]
    assert ids[1].tolist() == [10, 12]  # user 3 keeps its training context


def test_history_with_unknown_items_ignores_them():
    model = Popular().fit(_table())
    history = pd.DataFrame({"user_id": ["new", "new"], "item_id": [10, "never-seen"]})
    assert model.recommend(["new"], k=2, history=history)[0].tolist() == [11, 12]


class _LastItem(Popular):
    """Scores only the item after the user's last event in item-id order (tests context order)."""

    def _score_users(self, context):
        import torch

        last = context.events.item[context.events.indptr[1:] - 1]
        scores = torch.zeros(len(context), self._train.n_items)
        scores[torch.arange(len(context)), torch.from_numpy((last + 1) % self._train.n_items)] = 1
        return scores


def test_history_events_are_ordered_by_time_with_input_order_on_ties():
    X = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [0, 1, 2, 3]})
    model = _LastItem().fit(X)
    history = pd.DataFrame({"user_id": ["s"] * 3, "item_id": [2, 0, 1], "timestamp": [9, 3, 9]})
    # time order: 0 (t=3), then 2 and 1 tie at t=9 and keep input order -> last is 1
    assert model.recommend(["s"], k=1, exclude_seen=False, history=history)[0, 0] == 2


# ------------------------------------------------------- approximate retrieval
@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_faiss_index_serves_recommend_with_seen_items_excluded(kind):
    from skrec import ALS
    from skrec.datasets import make_interactions

    X = make_interactions(n_users=300, n_items=400, mean_events=15, random_state=0)
    model = ALS(n_factors=16, index=kind, random_state=0).fit(X)
    assert model._ann_index_.kind == kind
    users = X.user_id.unique()
    approximate = model.recommend(users, k=10)
    seen = X.groupby("user_id").item_id.apply(set)
    assert not any(set(row) & seen[u] for u, row in zip(users, approximate))
    model.set_params(index="exact")
    assert not hasattr(model, "_ann_index_")
    exact = model.recommend(users, k=10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact)])
    assert recall >= (1.0 if kind == "flat" else 0.9), recall
    model.set_params(index=kind)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.recommend(users[:20], k=10), approximate[:20])
    # allow-lists are searched exactly
    allowed = X.item_id.unique()[:50]
    np.testing.assert_array_equal(
        model.recommend(users[:20], k=5, items=allowed),
        model.set_params(index="exact").recommend(users[:20], k=5, items=allowed),
    )


def test_a_refused_index_change_leaves_the_fitted_model_as_it_was():
    from skrec import ALS
    from skrec.datasets import make_interactions

    X = make_interactions(n_users=100, n_items=60, random_state=0)
    model = ALS(n_factors=8, index="hnsw", random_state=0).fit(X)
    users = X.user_id.unique()[:10]
    before, built = model.recommend(users, k=5), model._ann_index_
    for bad in ("HNSW", "annoy"):
        with pytest.raises(ValueError, match="index"):
            model.set_params(index=bad, n_factors=4)
        assert model.get_params()["index"] == "hnsw" and model.n_factors == 8
        assert model._ann_index_ is built
        np.testing.assert_array_equal(model.recommend(users, k=5), before)
    # a bad name after a good index: set_params itself fails, after storing the index
    with pytest.raises(ValueError, match="bogus"):
        model.set_params(index="exact", bogus=1)
    assert model.get_params()["index"] == "hnsw" and model._ann_index_ is built
    exact = ALS(n_factors=8, random_state=0).fit(X)
    with pytest.raises(ValueError, match="bogus"):
        exact.set_params(index="hnsw", bogus=1)
    assert exact.get_params()["index"] == "exact" and "_ann_index_" not in exact.__dict__


def test_an_allow_list_keeps_score_blocks_within_the_bound(monkeypatch):
    """Models scoring the whole catalog (EASE, Popular) before the allow-list is cut
    score as many users at once as without one."""
    from skrec import retrieval
    from skrec.datasets import make_interactions

    X = make_interactions(n_users=300, n_items=200, random_state=0)
    model = Popular().fit(X)
    blocks = []
    score_users = model._score_users
    monkeypatch.setattr(model, "_score_users", lambda c: blocks.append(len(c)) or score_users(c))
    monkeypatch.setattr(retrieval, "DEFAULT_CHUNK_ELEMENTS", 20 * len(model.item_ids_))
    users = X.user_id.unique()
    allowed = model.item_ids_[:5]
    full = model.recommend(users, k=3, exclude_seen=False)
    ids = model.recommend(users, k=3, items=allowed, exclude_seen=False)
    assert max(blocks) <= 20, max(blocks)  # rows x all items within the bound
    assert set(np.unique(ids)) <= set(allowed) and len(full) == len(ids)


def test_faiss_index_of_a_sequential_model():
    """The index is built from the item side of a one-user context (an encoder may not
    take zero users)."""
    from skrec import SASRec
    from skrec.datasets import make_interactions

    X = make_interactions(n_users=30, n_items=20, random_state=0)
    model = SASRec(n_factors=8, max_len=5, max_iter=1, index="flat", random_state=0).fit(X)
    exact = model.recommend(X.user_id.unique()[:5], k=3)
    np.testing.assert_array_equal(
        model.set_params(index="exact").recommend(X.user_id.unique()[:5], k=3), exact
    )


@pytest.mark.parametrize("name", ["EASE", "ALS", "SASRec"])
def test_recommend_serves_users_in_blocks_with_the_same_result(interactions, monkeypatch, name):
    import skrec
    from skrec import base

    cls = getattr(skrec, name)
    params = {"max_iter": 1, "max_len": 10, "random_state": 0}
    model = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
    model.fit(interactions)
    users = np.r_[interactions.user_id.unique(), interactions.user_id.unique()[:5]]
    whole, whole_scores = model.recommend(users, k=7, return_scores=True)
    monkeypatch.setattr(base, "RECOMMEND_BLOCK", 6)
    blocks, block_scores = model.recommend(users, k=7, return_scores=True)
    np.testing.assert_array_equal(blocks, whole)
    # the same scores up to float rounding: BLAS may sum other batch shapes differently
    np.testing.assert_allclose(block_scores, whole_scores, rtol=1e-5, atol=1e-6)
    # a catalog nearly exhausted by seen items: the empty slots are None in every block
    everything = model.recommend(users, k=len(model.item_ids_))
    assert everything.dtype == object and (everything == None).any()  # noqa: E711
