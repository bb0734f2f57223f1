"""Splitters, scorers and their use in scikit-learn's model selection."""

import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

from skrec import Popular, Random
from skrec.datasets import load_ml_100k, make_interactions
from skrec.model_selection import (
    LeaveLastOut,
    TimeSplit,
    UserHoldout,
    evaluate,
    rank_against_candidates,
    ranking_scorer,
)
from skrec.preprocessing import Binarize, KCoreFilter

from .conftest import data_folder


def test_leave_last_out_takes_last_by_time_and_keeps_input_order_on_ties():
    X = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3],
            "item_id": [10, 11, 12, 13, 14, 15],
            "timestamp": [5, 9, 9, 1, 0, 4],
        }
    )
    train, test = next(LeaveLastOut().split(X))
    # user 1: items 11 and 12 tie at t=9, input order makes 12 last; user 2: 13 is later;
    # user 3 has a single event and stays in train.
    assert X.item_id[test].tolist() == [12, 13]
    assert sorted(np.r_[train, test]) == list(range(6))
    train, test = next(LeaveLastOut(n=2).split(X))
    assert X.item_id[test].tolist() == [11, 12]


def test_leave_last_out_without_timestamp_uses_input_order():
    X = pd.DataFrame({"user_id": [1, 2, 1, 2], "item_id": [1, 2, 3, 4]})
    assert X.item_id[next(LeaveLastOut().split(X))[1]].tolist() == [3, 4]


def test_time_split_cuts_globally_and_drops_cold_users():
    X = pd.DataFrame(
        {"user_id": [1, 1, 2, 3, 3], "item_id": [1, 2, 3, 4, 5], "timestamp": [1, 5, 6, 2, 7]}
    )
    train, test = next(TimeSplit(cutoff=5).split(X))
    assert train.tolist() == [0, 3] and test.tolist() == [1, 4]  # user 2 is cold
    train, test = next(TimeSplit(cutoff=5, filter_cold_users=False).split(X))
    assert test.tolist() == [1, 2, 4]
    with pytest.raises(ValueError, match="timestamp"):
        next(TimeSplit().split(X.drop(columns="timestamp")))


def test_time_split_refuses_a_cutoff_of_another_kind_than_the_times():
    """A date against times in seconds compared nanoseconds with seconds: an empty test."""
    seconds = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2],
            "item_id": [1, 2, 1, 3],
            "timestamp": [1.6e9, 1.7e9, 1.6e9, 1.8e9],
        }
    )
    dates = seconds.assign(timestamp=pd.to_datetime(seconds.timestamp, unit="s"))
    for X, cutoff in [
        (seconds, pd.Timestamp("2023-01-01")),
        (seconds, "2023-01-01"),
        (dates, 1.65e9),
    ]:
        with pytest.raises(ValueError, match="cannot be compared"):
            next(TimeSplit(cutoff=cutoff).split(X))
    for X, cutoff in [(seconds, pd.Timestamp("2023-01-01").timestamp()), (dates, "2023-01-01")]:
        train, test = next(TimeSplit(cutoff=cutoff).split(X))
        assert train.tolist() == [0, 2] and test.tolist() == [1, 3]


def test_user_holdout_share_per_user(interactions):
    splitter = UserHoldout(test_size=0.25, n_splits=2, random_state=0)
    folds = list(splitter.split(interactions))
    assert len(folds) == splitter.get_n_splits() == 2
    train, test = folds[0]
    sizes = interactions.groupby("user_id").size()
    held = interactions.iloc[test].groupby("user_id").size()
    np.testing.assert_array_equal(held, np.clip(np.round(0.25 * sizes), 1, sizes - 1))
    assert not np.array_equal(folds[0][1], folds[1][1])
    assert (
        list(UserHoldout(random_state=3).split(interactions))[0][1].tolist()
        == list(UserHoldout(random_state=3).split(interactions))[0][1].tolist()
    )


def test_cross_validate_and_grid_search_agree_with_evaluate(interactions):
    train, test = next(LeaveLastOut().split(interactions))
    direct = evaluate(Popular().fit(interactions.iloc[train]), interactions.iloc[test])
    cv = cross_validate(
        Popular(),
        interactions,
        cv=LeaveLastOut(),
        scoring={"ndcg": ranking_scorer("ndcg", k=10), "hr": ranking_scorer("hr", k=10)},
    )
    assert cv["test_ndcg"][0] == pytest.approx(direct["ndcg@10"])
    assert cv["test_hr"][0] == pytest.approx(direct["hr@10"])
    search = GridSearchCV(
        make_pipeline(KCoreFilter(1, 1), Popular()),
        {"kcorefilter__min_user_events": [1, 3], "popular__by": ["events"]},
        cv=LeaveLastOut(),
    ).fit(interactions)
    assert search.cv_results_["mean_test_score"][0] == pytest.approx(direct["ndcg@10"])


def test_sampled_protocol_ranks_against_negatives(interactions):
    train, test = next(LeaveLastOut().split(interactions))
    model = Popular().fit(interactions.iloc[train])
    full = ranking_scorer("hr", k=10)(model, interactions.iloc[test])
    sampled = ranking_scorer("hr", k=10, protocol="sampled", n_negatives=20)
    assert sampled(model, interactions.iloc[test]) > full  # 20 negatives are an easier task
    assert sampled(model, interactions.iloc[test]) == sampled(model, interactions.iloc[test])


def test_rank_against_candidates_counts_strictly_higher():
    X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 10, 10, 11, 12]})
    model = Popular().fit(X)  # popularity: 10 -> 3, 11 -> 1, 12 -> 1
    ranks = rank_against_candidates(model, [3, 3], [11, 10], [[12, 10], [11, 12]])
    assert ranks.tolist() == [1, 0]


def test_an_unscored_positive_ranks_last():
    """An unknown user (or item) scores NaN: behind every negative, never a hit."""
    X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 10, 10, 11, 12]})
    model = Popular().fit(X)
    ranks = rank_against_candidates(model, [99, 3], [10, 99], [[11, 12, 13], [10, 11, 13]])
    assert ranks.tolist() == [3, 3]


def test_sampled_negatives_are_distinct_unseen_and_not_the_positive():
    from skrec.model_selection import _sample_negatives

    X = make_interactions(n_users=50, n_items=40, mean_events=10, random_state=0)
    model = Popular().fit(X)
    users = np.arange(50)
    positives = np.random.default_rng(0).integers(0, 40, 50)
    args = (model._seen, users, positives)
    negatives = _sample_negatives(*args, 15, np.random.RandomState(0), model.user_ids_)
    seen = model._seen.toarray() > 0
    for user, positive, row in zip(users, positives, negatives):
        assert len(set(row)) == 15 and not seen[user, row].any() and positive not in row
    with pytest.raises(ValueError, match="only .* items left to sample 39 negatives"):
        _sample_negatives(*args, 39, np.random.RandomState(0), model.user_ids_)


def test_sampled_negatives_are_none_of_the_users_items_train_or_test(monkeypatch):
    """A user's other held-out items and zero-weight training items are no negatives."""
    from skrec import model_selection

    X = make_interactions(n_users=60, n_items=50, mean_events=12, random_state=0)
    X = X.assign(weight=np.where(np.arange(len(X)) % 4 == 0, 0.0, 1.0))  # some weights 0
    train_rows, test_rows = next(UserHoldout(test_size=0.3, random_state=0).split(X))
    train, test = X.iloc[train_rows], X.iloc[test_rows]
    model = Popular().fit(train)
    drawn = []
    sample = model_selection._sample_negatives
    monkeypatch.setattr(
        model_selection, "_sample_negatives", lambda *a: drawn.append((a[1], r := sample(*a))) or r
    )
    evaluate(model, test, protocol="sampled", n_negatives=10, random_state=0)
    ((user_idx, negatives),) = drawn
    items = set(
        zip(model._user_index.get_indexer(X.user_id), model._item_index.get_indexer(X.item_id))
    )
    assert not any((u, i) in items for u, row in zip(user_idx, negatives) for i in row)


def test_sampled_protocol_edge_cases(interactions):
    model = Popular().fit(interactions)
    strangers = pd.DataFrame({"user_id": ["x", "y"], "item_id": [1, 2]})
    scores = evaluate(model, strangers, protocol="sampled", per_user=True)  # nothing scorable
    np.testing.assert_array_equal(scores["ndcg@10"], [0.0, 0.0])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_negatives must be a positive integer"):
            evaluate(model, interactions.iloc[:5], protocol="sampled", n_negatives=bad)
        with pytest.raises(ValueError, match="n_negatives must be a positive integer"):
            ranking_scorer(protocol="sampled", n_negatives=bad)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        evaluate(Popular(), interactions)


def test_scorer_rejects_non_recommenders(interactions):
    from sklearn.linear_model import LinearRegression

    with pytest.raises(TypeError, match="no recommend"):
        ranking_scorer()(LinearRegression(), interactions)
    with pytest.raises(ValueError, match="Unknown ranking metric"):
        ranking_scorer("accuracy")


def test_unknown_test_users_count_as_misses(interactions):
    model = Popular().fit(interactions)
    test = pd.DataFrame({"user_id": ["stranger"], "item_id": [interactions.item_id.iloc[0]]})
    assert model.score(test) == 0.0


def test_evaluate_ranks_users_in_blocks_with_the_same_result(interactions, monkeypatch):
    from skrec import EASE, model_selection

    train_rows, test_rows = next(LeaveLastOut().split(interactions))
    train, test = interactions.iloc[train_rows], interactions.iloc[test_rows]
    model = EASE(l2_reg=10.0).fit(train)
    test = pd.concat([test, test.assign(user_id=-1)])  # unknown users too
    whole = evaluate(model, test, metrics=("ndcg", "hr", "mrr"), per_user=True)
    monkeypatch.setattr(model_selection, "EVALUATE_BLOCK", 7)
    blocks = evaluate(model, test, metrics=("ndcg", "hr", "mrr"), per_user=True)
    assert whole.keys() == blocks.keys()
    for key, values in whole.items():
        np.testing.assert_array_equal(blocks[key], values)
        assert len(values) == test.user_id.nunique()


def test_evaluate_matches_the_metric_functions_on_integer_and_string_ids(interactions):
    """evaluate scores integer ids without Python objects; the values must be those of
    the public metrics on the recommended lists, and the same with string ids."""
    from skrec import EASE
    from skrec import metrics as m

    train_rows, test_rows = next(UserHoldout(test_size=0.3, random_state=0).split(interactions))
    train, test = interactions.iloc[train_rows], interactions.iloc[test_rows]
    names = ("ndcg", "hr", "recall", "precision", "map", "mrr")
    functions = (m.ndcg_at_k, m.hit_rate_at_k, m.recall_at_k, m.precision_at_k, m.map_at_k)
    functions += (m.mrr_at_k,)
    results = []
    for ids in (lambda v: v, lambda v: "i" + v.astype(str)):
        tr, te = train.assign(item_id=ids(train.item_id)), test.assign(item_id=ids(test.item_id))
        model = EASE(l2_reg=10.0).fit(tr)
        got = evaluate(model, te, metrics=names, k=5, per_user=True)
        users = te.user_id.unique()
        relevant = [set(te.item_id[te.user_id == u]) for u in users]
        assert max(map(len, relevant)) > 1  # several relevant items per user
        lists = model.recommend(users, k=5)
        for name, function in zip(names, functions):
            np.testing.assert_allclose(
                got[f"{name}@5"], function(relevant, lists, 5, per_user=True)
            )
        results.append(got)
    for key, values in results[0].items():
        np.testing.assert_allclose(results[1][key], values)


# ------------------------------------------------------------------ real data (P1)
def test_p1_popular_ml_100k_matches_reference_three_ways():
    """P1 on ml-100k: same split as the independent reference and NDCG@10 = 0.0449."""
    folder = data_folder("ml-100k")
    X = load_ml_100k(folder.parent).interactions
    train, test = next(LeaveLastOut().split(X))
    held = X.iloc[test].sort_values("user_id", kind="stable")
    fingerprint = hashlib.sha256(
        held[["user_id", "item_id"]].to_numpy().astype(np.int64).tobytes()
    ).hexdigest()[:16]
    reference = subprocess.run(
        [sys.executable, str(folder.parent.parent / "tools" / "p1_reference.py"), "ml-100k"],
        capture_output=True,
        text=True,
        check=True,
        env={"SKREC_DATA": str(folder.parent)},
    ).stdout
    assert f"test fingerprint {fingerprint}" in reference
    direct = evaluate(Popular().fit(X.iloc[train]), X.iloc[test])["ndcg@10"]
    assert f"NDCG@10 {direct:.4f}" in reference
    assert direct == pytest.approx(0.0449, abs=0.002)
    cv = cross_validate(Popular(), X, cv=LeaveLastOut())["test_score"][0]
    grid = (
        GridSearchCV(
            Popular(), {"by": ["events"]}, cv=LeaveLastOut(), scoring=ranking_scorer("ndcg", k=10)
        )
        .fit(X)
        .best_score_
    )
    assert cv == pytest.approx(direct) and grid == pytest.approx(direct)
    assert evaluate(Random(random_state=0).fit(X.iloc[train]), X.iloc[test])["ndcg@10"] < 0.01


def test_pipeline_binarize_kcore_popular_on_ml_100k():
    folder = data_folder("ml-100k")
    X = load_ml_100k(folder.parent).interactions
    pipe = make_pipeline(Binarize(threshold=4), KCoreFilter(5), Popular())
    search = GridSearchCV(
        pipe,
        {"kcorefilter__min_user_events": [5, 20]},
        cv=LeaveLastOut(),
        scoring=ranking_scorer("ndcg", k=10),
    ).fit(X)
    assert 0.02 < search.best_score_ < 0.2
    assert search.best_estimator_[-1].item_popularity_.sum() < len(X)


@pytest.mark.parametrize("block_rows", [None, 1, 2])  # None: one block
def test_evaluate_sessions_scores_every_prefix_like_a_loop(interactions, block_rows, monkeypatch):
    from skrec import model_selection
    from skrec.model_selection import evaluate_sessions

    if block_rows is not None:  # the prefixes served a few cases at a time
        monkeypatch.setattr(model_selection, "_SESSION_BLOCK_ROWS", block_rows)
    model = Popular().fit(interactions)
    items = interactions.item_id.unique()
    sessions = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "c", "c"],
            "item_id": [items[0], items[1], items[2], items[3], items[0], items[4], -1],
            "timestamp": [3, 1, 2, 5, 6, 1, 2],  # rows out of time order within "a"
        }
    )
    got = evaluate_sessions(model, sessions, metrics=("hr", "mrr"), k=5, per_user=True)
    expected = {"hr@5": [], "mrr@5": []}
    for _, events in sessions.sort_values("timestamp", kind="stable").groupby("user_id"):
        for i in range(1, len(events)):
            history = events.iloc[:i].assign(user_id="case")
            top = list(model.recommend(["case"], k=5, history=history, exclude_seen=False)[0])
            target = events.item_id.iloc[i]
            rank = top.index(target) + 1 if target in top else None
            expected["hr@5"].append(float(rank is not None))
            expected["mrr@5"].append(1.0 / rank if rank else 0.0)
    assert len(got["hr@5"]) == 4  # 2 + 1 + 1 cases; the unknown target counts as a miss
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values)
    singles = sessions.drop_duplicates("user_id")
    with pytest.raises(ValueError, match="no session of two or more events"):
        evaluate_sessions(model, singles)


def test_a_ratings_model_is_evaluated_on_sessions_with_their_ratings(interactions):
    """MF(loss="mse") learns each prefix from its ratings: the sessions' weight column
    must reach the prefixes (it was dropped, so the call could never succeed)."""
    from skrec import MF
    from skrec.model_selection import evaluate_sessions

    rng = np.random.default_rng(0)
    model = MF(loss="mse", n_factors=4, max_iter=2, random_state=0)
    model.fit(interactions, rng.integers(1, 6, len(interactions)).astype(float))
    sessions = interactions.iloc[:30].assign(user_id=lambda f: "s" + f.user_id.astype(str))
    rated = sessions.assign(weight=rng.normal(size=len(sessions)))  # any sign
    scores = evaluate_sessions(model, rated, k=10)
    assert set(scores) == {"hr@10", "mrr@10"} and 0 <= scores["hr@10"] <= 1
    with pytest.raises(ValueError, match="sessions has no 'weight' column"):
        evaluate_sessions(model, sessions)


def test_session_blocks_cover_the_cases_in_order_within_the_budget():
    from skrec.model_selection import _blocks

    sizes = np.array([1, 2, 5, 1, 1, 3, 1])
    blocks = list(_blocks(sizes, 3))
    assert blocks == [(0, 2), (2, 3), (3, 5), (5, 6), (6, 7)]  # the 5 alone exceeds it
    assert list(_blocks(sizes, 100)) == [(0, 7)]


@pytest.mark.parametrize("k", [0, 2.5, True])
def test_k_is_checked_even_when_no_user_can_be_served(interactions, k):
    from skrec.model_selection import evaluate_sessions

    model = Popular().fit(interactions)
    strangers = pd.DataFrame({"user_id": ["x", "x"], "item_id": [-1, -2], "timestamp": [1, 2]})
    with pytest.raises(ValueError, match="k must be a positive integer"):
        evaluate(model, strangers, k=k)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        evaluate_sessions(model, strangers, k=k)


def test_time_split_with_time_zone_aware_timestamps():
    """A tz-aware column in seconds compares with its cutoff in nanoseconds (UTC)."""
    times = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
    X = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 3]})
    for unit in ("ns", "s"):
        stamped = X.assign(timestamp=times.tz_localize("Europe/Paris").as_unit(unit))
        split = TimeSplit(cutoff=pd.Timestamp("2024-01-03 12:00", tz="Europe/Paris"))
        train, test = next(split.split(stamped))
        assert train.tolist() == [0, 1, 2] and test.tolist() == [3], unit


def test_rank_against_candidates_keeps_mixed_id_types(interactions):
    X = interactions.assign(item_id=[i if i % 2 else f"s{i}" for i in interactions.item_id])
    model = Popular().fit(X)
    items = list(model.item_ids_[:4])  # a list mixing ints and strings
    assert {type(i) for i in items} == {int, str}
    ranks = rank_against_candidates(model, [X.user_id.iloc[0]], items[:1], [items[1:]])
    assert ranks[0] < 3  # scored: an unscored positive would rank behind all 3


def test_splitters_and_scorers_take_signed_ratings_for_a_binarize_pipeline():
    X = make_interactions(n_users=60, n_items=40, mean_events=10, random_state=0)
    X = X.assign(weight=np.random.default_rng(0).normal(size=len(X)))  # ratings, any sign
    pipe = make_pipeline(Binarize(threshold=0.0), Popular())
    search = GridSearchCV(
        pipe, {"popular__by": ["events", "users"]}, cv=LeaveLastOut(), scoring=ranking_scorer()
    ).fit(X)
    assert 0 <= search.best_score_ <= 1
    for splitter in (LeaveLastOut(), TimeSplit(test_size=0.2), UserHoldout(random_state=0)):
        train, test = next(splitter.split(X))
        assert len(train) and len(test)
