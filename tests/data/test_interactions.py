"""Id encoding and the user-item matrix: the fast paths agree with the plain ones."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skrec.data.interactions import Interactions, encode_ids


def _sorted_factorize(values):
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques), codes.astype(np.int64)


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
)
def test_integer_ids_encode_like_a_sorted_factorisation(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    cases = [
        rng.integers(max(info.min, -50), min(info.max, 100), 500).astype(dtype),
        np.array([info.max, info.min, info.max], dtype=dtype),  # extremes: hash path
        np.array([7], dtype=dtype),
    ]
    for values in cases:
        uniques, codes = encode_ids(values)
        expected_uniques, expected_codes = _sorted_factorize(values)
        assert uniques.dtype == values.dtype and codes.dtype == np.int64
        np.testing.assert_array_equal(uniques, expected_uniques)
        np.testing.assert_array_equal(codes, expected_codes)
        np.testing.assert_array_equal(uniques[codes], values)


def test_sparse_wide_ids_take_the_hash_path():
    values = np.array([10**12, 3, 10**12, -(10**11)])
    uniques, codes = encode_ids(values)
    np.testing.assert_array_equal(uniques, [-(10**11), 3, 10**12])
    np.testing.assert_array_equal(codes, [2, 1, 2, 0])


def test_csr_sums_duplicates_in_item_order():
    rng = np.random.default_rng(1)
    n_users, n_items, n = 50, 30, 2_000  # many repeated (user, item) pairs
    user, item = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    weight = rng.random(n).astype(np.float32)
    data = Interactions.build(
        user, item, n_users=n_users, n_items=n_items, weight=weight, timestamp=rng.random(n)
    )
    events_weight = data.weight.copy()
    matrix = data.csr()
    expected = sp.coo_matrix((weight, (user, item)), shape=(n_users, n_items)).tocsr()
    expected.sum_duplicates()
    assert matrix.has_canonical_format
    np.testing.assert_array_equal(matrix.indptr, expected.indptr)
    np.testing.assert_array_equal(matrix.indices, expected.indices)
    np.testing.assert_allclose(matrix.data, expected.data, rtol=1e-6)
    assert data.item.tolist() != np.sort(data.item).tolist()  # the events stay in time order
    matrix.data[:] = 1.0  # callers may write into the matrix (Item2Vec binarises it)
    np.testing.assert_array_equal(data.weight, events_weight)
