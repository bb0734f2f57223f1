"""Metrics against brute-force definitions, on hypothesis-generated rankings."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skrec import metrics

ITEMS = st.integers(0, 15)


@st.composite
def rankings(draw):
    n_users = draw(st.integers(1, 6))
    k = draw(st.integers(1, 8))
    relevant = [draw(st.lists(ITEMS, max_size=6)) for _ in range(n_users)]
    width = draw(st.integers(1, 10))
    ranked = [
        draw(st.lists(ITEMS, min_size=width, max_size=width, unique=True)) for _ in range(n_users)
    ]
    return relevant, np.array(ranked), k


def brute(relevant, ranked, k):
    """Per-user metrics by their textbook definitions, one loop at a time."""
    out = {m: [] for m in ("hr", "precision", "recall", "ndcg", "map", "mrr")}
    for rel, row in zip(relevant, ranked):
        rel = set(rel)
        if not rel:
            for m in out:
                out[m].append(math.nan)
            continue
        top = list(row[:k])
        hits = [x in rel for x in top]
        out["hr"].append(float(any(hits)))
        out["precision"].append(sum(hits) / k)
        out["recall"].append(sum(hits) / len(rel))
        dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), k)))
        out["ndcg"].append(dcg / idcg)
        precisions = [sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits) if h]
        out["map"].append(sum(precisions) / min(len(rel), k))
        out["mrr"].append(next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0))
    return out


FUNCTIONS = {
    "hr": metrics.hit_rate_at_k,
    "precision": metrics.precision_at_k,
    "recall": metrics.recall_at_k,
    "ndcg": metrics.ndcg_at_k,
    "map": metrics.map_at_k,
    "mrr": metrics.mrr_at_k,
}


@settings(max_examples=150, deadline=None)
@given(rankings())
def test_top_k_metrics_match_brute_force(case):
    relevant, ranked, k = case
    expected = brute(relevant, ranked, k)
    for name, fn in FUNCTIONS.items():
        per_user = fn(relevant, ranked, k, per_user=True)
        np.testing.assert_allclose(per_user, expected[name], equal_nan=True, err_msg=name)
        mean = fn(relevant, ranked, k)
        values = [v for v in expected[name] if not math.isnan(v)]
        if values:
            assert mean == pytest.approx(np.mean(values)), name
        else:
            assert math.isnan(mean)


def brute_auc(labels, scores):
    pos = [s for lab, s in zip(labels, scores) if lab]
    neg = [s for lab, s in zip(labels, scores) if not lab]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(-3, 3)), min_size=1, max_size=20))
def test_auc_matches_pairwise_count(pairs):
    labels, scores = zip(*pairs)
    expected = brute_auc(labels, scores)
    got = metrics.auc(np.array(labels), np.array(scores, dtype=float))
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_auc_per_user_rows():
    labels = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 1]])
    scores = np.array([[3.0, 1, 2], [1, 2, 3], [5, 1, 1]])
    per_user = metrics.auc(labels, scores, per_user=True)
    np.testing.assert_allclose(per_user, [1.0, np.nan, 0.0], equal_nan=True)
    assert metrics.auc(labels, scores) == pytest.approx(0.5)


def test_single_relevant_item_ndcg_is_inverse_log_rank():
    ranked = np.array([[5, 6, 7, 8]])
    for rank, item in enumerate([5, 6, 7, 8]):
        assert metrics.ndcg_at_k([item], ranked, 4) == pytest.approx(1 / math.log2(rank + 2))
    assert metrics.ndcg_at_k([9], ranked, 4) == 0


def test_repeated_items_in_a_ranking_count_once():
    ranked = np.array([[1, 1, 2]])
    assert metrics.precision_at_k([[1, 2]], ranked, 3) == pytest.approx(2 / 3)


def test_padding_none_is_a_miss_and_raw_ids_any_type():
    ranked = np.array([["a", None, "c"]], dtype=object)
    assert metrics.hit_rate_at_k([["c"]], ranked, 3) == 1
    assert metrics.recall_at_k([["b", "c"]], ranked, 3) == 0.5


def test_coverage_and_novelty():
    ranked = np.array([[1, 2], [1, 3]])
    assert metrics.coverage(ranked, 10) == pytest.approx(0.3)
    assert metrics.coverage(ranked, [1, 2, 3, 4]) == pytest.approx(0.75)
    train = pd.DataFrame({"user_id": [0, 1, 2, 3, 3], "item_id": [1, 1, 1, 2, 3]})
    # p(1) = 3/4, p(2) = p(3) = 1/4
    per_user = metrics.novelty(ranked, train, k=2, per_user=True)
    expected = (-math.log2(3 / 4) - math.log2(1 / 4)) / 2
    np.testing.assert_allclose(per_user, [expected, expected])


def test_misaligned_inputs_raise():
    with pytest.raises(ValueError, match="must align"):
        metrics.ndcg_at_k([[1], [2]], np.array([[1, 2]]), 2)
    for bad in (0, True, 2.0):  # True used to pass as k=1
        with pytest.raises(ValueError, match="positive integer"):
            metrics.ndcg_at_k([[1]], np.array([[1, 2]]), bad)


def test_tuple_item_ids_score_like_any_other_ids():
    """fit and recommend take tuple ids; the metrics once built a 2-D array of them."""
    y_true = [[(1, 2)], [(3, 4), (5, 6)]]
    y_pred = np.empty((2, 2), dtype=object)
    y_pred[0] = [(1, 2), (9, 9)]
    y_pred[1] = [(0, 0), (5, 6)]
    as_ints = [[12], [34, 56]], np.array([[12, 99], [0, 56]])
    for name in ("ndcg_at_k", "recall_at_k", "hit_rate_at_k"):
        assert getattr(metrics, name)(y_true, y_pred, 2) == getattr(metrics, name)(*as_ints, 2)


def test_a_missing_relevant_item_is_an_error_not_another_users_item():
    """A NaN item's code (-1) once fell on the previous user's key."""
    for y_true in ([[1], [np.nan, 2]], [[None], [2]]):
        with pytest.raises(ValueError, match="y_true has missing item ids.*Drop them"):
            metrics.recall_at_k(y_true, np.array([[1, 2], [2, 3]]), 2)


def test_large_integer_ids_of_mixed_kinds_never_collide():
    """The integer fast path must not turn ids into floats: 2**60 and 2**60 + 1 are two
    items, whether relevant and ranked ids share a dtype or not."""
    from skrec.metrics import _hit_matrix

    ranked = np.array([[2**60 + 1, 2**60]], dtype=np.int64)
    for relevant in (np.array([2**60], np.int64), np.array([2**60], np.uint64)):
        hits, n_relevant = _hit_matrix(relevant, np.array([1]), ranked, 2)
        assert hits.tolist() == [[False, True]] and n_relevant.tolist() == [1]
