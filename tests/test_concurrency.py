"""One fitted model serving ``recommend`` from many threads at once gives what serial
calls give (including users served from ``history=``, which folds in or encodes)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import skrec
from skrec.datasets import make_interactions

SMALL = {"max_iter": 2, "n_factors": 8, "max_len": 10, "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=80, n_items=40, mean_events=8, random_state=4)


def _requests(X, n=12):
    users = X.user_id.unique()
    requests = []
    for r in range(n):
        batch = users[(np.arange(10) * (r + 1)) % len(users)]
        if r % 2:  # fresh sessions from history=
            source = X[X.user_id == batch[0]]
            history = source.assign(user_id=f"new-{r}").iloc[: 3 + r % 4]
            requests.append((np.array([f"new-{r}"]), history))
        else:
            requests.append((batch, None))
    return requests


@pytest.mark.parametrize("name", skrec.ESTIMATORS)
def test_threads_get_the_serial_results(X, name):
    cls = getattr(skrec, name)
    model = cls(**{k: v for k, v in SMALL.items() if k in cls().get_params()}).fit(X)
    requests = _requests(X)

    def call(request):
        users, history = request
        return model.recommend(users, k=5, history=history, return_scores=True)

    serial = [call(r) for r in requests]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(5):
            for (items, scores), (expected, expected_scores) in zip(
                pool.map(call, requests), serial
            ):
                np.testing.assert_array_equal(items, expected)
                np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
