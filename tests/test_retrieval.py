"""The shared top-k routine against a brute-force sort."""

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skrec.retrieval import dense_scorer, restrict_columns, topk, vector_scorer


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
