"""The shared top-k routine against a brute-force sort, and the faiss ItemIndex against it."""

import pickle

import faiss
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skrec.retrieval import (
    ItemIndex,
    dense_scorer,
    faiss_threads,
    restrict_columns,
    topk,
    vector_scorer,
)


def brute_topk(scores, k, exclude=None):
    out = []
    for row, values in enumerate(scores):
        banned = set(exclude[row].indices) if exclude is not None else set()
        order = sorted(
            (c for c in range(len(values)) if c not in banned), key=lambda c: (-values[c], c)
        )
        out.append((order + [-1] * k)[:k])
    return np.array(out)


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 9), st.integers(1, 12)),
        elements=st.integers(-3, 3).map(float),
    ),
    st.integers(1, 12),
    st.integers(0, 2**31 - 1),
    st.integers(1, 40),
)
def test_topk_matches_sort_with_ties_by_index(scores, k, seed, chunk):
    k = min(k, scores.shape[1])
    rng = np.random.default_rng(seed)
    exclude = sp.csr_matrix(rng.random(scores.shape) < 0.3)
    index, values = topk(
        dense_scorer(scores), *scores.shape, k, exclude=exclude, chunk_elements=chunk
    )
    expected = brute_topk(scores, k, exclude)
    np.testing.assert_array_equal(index, expected)
    valid = expected >= 0
    np.testing.assert_array_equal(
        values[valid], np.take_along_axis(scores, np.maximum(expected, 0), 1)[valid]
    )


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(0)
    U, I = rng.normal(size=(500, 8)), rng.normal(size=(300, 8))
    full = topk(vector_scorer(U, I), 500, 300, 10)[0]
    small = topk(vector_scorer(U, I), 500, 300, 10, chunk_elements=1000)[0]
    np.testing.assert_array_equal(full, small)
    np.testing.assert_array_equal(full, np.argsort(-(U @ I.T), axis=1, kind="stable")[:, :10])


def test_restrict_columns_maps_exclusions():
    exclude = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    restricted = restrict_columns(exclude, np.array([2, 3]), 4)
    np.testing.assert_array_equal(restricted.toarray(), [[1, 0], [0, 0]])


def test_nan_scores_rank_last():
    scores = torch.tensor([[np.nan, 1.0, 0.5]])
    assert topk(lambda a, b: scores[a:b], 1, 3, 2)[0].tolist() == [[1, 2]]


def test_nan_and_minus_inf_scores_are_ranked_last_not_taken_for_missing():
    """Only excluded columns (and none beyond them) leave a slot empty."""
    scores = torch.tensor([[np.nan, 2.0, -np.inf, 1.0, np.inf], [0.0, np.nan, 3.0, -np.inf, 1.0]])
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]]))
    index, values = topk(lambda a, b: scores[a:b].clone(), 2, 5, 5, exclude=exclude)
    assert index[0, :2].tolist() == [4, 1] and sorted(index[0, 2:4]) == [0, 2]
    assert index[1, :2].tolist() == [2, 4] and sorted(index[1, 2:4]) == [1, 3]
    assert (index[:, 4] == -1).all() and np.isneginf(values[:, 4]).all()
    assert values[0, 0] == np.inf and (values[:, 2:4] == np.finfo(np.float32).min).all()


# ------------------------------------------------------------------ approximate search
KINDS = ["flat", "ivf", "hnsw"]


def clustered(n_users=300, n_items=3000, dim=16, seed=0):
    """Users and items around shared cluster centres; item norms spread like a factor model's."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, dim))
    items = centres[rng.integers(30, size=n_items)] + 0.5 * rng.normal(size=(n_items, dim))
    items *= rng.lognormal(sigma=0.7, size=(n_items, 1))
    users = centres[rng.integers(30, size=n_users)] + 0.5 * rng.normal(size=(n_users, dim))
    seen = sp.random(n_users, n_items, density=0.01, format="csr", random_state=seed)
    return users.astype(np.float32), items.astype(np.float32), seen


def build(items, kind, **params):
    # One thread: faiss's OpenMP threads spin-wait badly on a busy two-core machine.
    return ItemIndex(items, kind, n_threads=1, random_state=0, **params)


def exact(users, items, k, seen):
    return topk(vector_scorer(users, items), len(users), len(items), k, exclude=seen)


def test_flat_index_matches_exact_topk():
    users, items, seen = clustered(n_users=200, n_items=1000)
    index, scores = build(items, "flat").search(users, 10, exclude=seen)
    expected, expected_scores = exact(users, items, 10, seen)
    assert [set(row) for row in index] == [set(row) for row in expected]
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_at_10(kind):
    users, items, seen = clustered()
    index, scores = build(items, kind).search(users, 10, exclude=seen)
    expected = exact(users, items, 10, seen)[0]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(index, expected)])
    assert recall >= 0.9
    np.testing.assert_allclose(
        scores, np.take_along_axis(users @ items.T, index, axis=1), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "kind, params",
    [("flat", {}), ("ivf", {}), ("hnsw", {}), ("ivf", {"n_lists": 10, "n_probe": 1})],
)
def test_excluded_items_never_returned_and_k_filled(kind, params):
    users, items, _ = clustered(n_users=50, n_items=400)
    rng = np.random.default_rng(1)
    # Up to 95% of the catalog seen; one probed IVF cell then runs short (exact fallback).
    seen = sp.csr_matrix(rng.random((50, 400)) < rng.uniform(0, 0.95, size=(50, 1)))
    index, scores = build(items, kind, **params).search(users, 10, exclude=seen)
    assert (index >= 0).all() and np.isfinite(scores).all()
    assert not seen[np.arange(50)[:, None], index].toarray().any()
    assert all(len(set(row)) == 10 for row in index)


@pytest.mark.parametrize("kind", KINDS)
def test_pads_when_fewer_than_k_items_allowed(kind):
    rng = np.random.default_rng(0)
    items = rng.normal(size=(20, 4))
    seen = sp.csr_matrix(np.array([[1] * 15 + [0] * 5, [0] * 20]))
    index, scores = build(items, kind).search(rng.normal(size=(2, 4)), 25, exclude=seen)
    assert sorted(index[0, :5]) == [15, 16, 17, 18, 19]
    assert (index[0, 5:] == -1).all() and np.isneginf(scores[0, 5:]).all()
    assert sorted(index[1, :20]) == list(range(20)) and (index[1, 20:] == -1).all()


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip_gives_identical_results(kind):
    users, items, seen = clustered(n_users=100, n_items=1000)
    index = build(items, kind)
    restored = pickle.loads(pickle.dumps(index))
    for got, expected in zip(
        restored.search(users, 10, exclude=seen), index.search(users, 10, exclude=seen)
    ):
        np.testing.assert_array_equal(got, expected)


def test_ivf_build_is_reproducible_with_random_state():
    users, items, _ = clustered(n_users=100, n_items=2000)
    first, second = (build(items, "ivf", n_probe=2) for _ in range(2))
    np.testing.assert_array_equal(first.search(users, 10)[0], second.search(users, 10)[0])


def test_faiss_threads_restores_global_setting():
    before = faiss.omp_get_max_threads()
    with faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


def test_item_index_rejects_mismatched_input():
    index = ItemIndex(np.ones((5, 3)), "flat")
    with pytest.raises(ValueError, match="3"):
        index.search(np.ones((2, 4)), 2)
    with pytest.raises(ValueError, match="shape"):
        index.search(np.ones((2, 3)), 2, exclude=sp.csr_matrix((2, 6)))
    with pytest.raises(ValueError, match="kind"):
        ItemIndex(np.ones((5, 3)), "lsh")


@pytest.mark.parametrize(
    "kind, params",
    [
        ("hnsw", {"n_links": 0}),  # faiss aborted the process
        ("hnsw", {"n_links": 1}),
        ("hnsw", {"n_links": 2.5}),
        ("hnsw", {"ef_search": 0}),
        ("hnsw", {"ef_construction": True}),
        ("ivf", {"n_probe": -1}),  # faiss raised OverflowError at search time
        ("ivf", {"n_lists": 2.5}),
        ("flat", {"n_threads": 0}),
    ],
)
def test_item_index_checks_its_parameters_before_faiss_sees_them(kind, params):
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"{name} must be an integer"):
        ItemIndex(np.ones((50, 3)), kind, **params)


def test_item_index_refuses_an_empty_catalog_and_a_bool_k():
    with pytest.raises(ValueError, match="empty"):
        ItemIndex(np.ones((0, 3)), "flat")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ItemIndex(np.ones((5, 3)), "flat").search(np.ones((2, 3)), True)
