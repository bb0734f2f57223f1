"""skrec.ALS beside the raw ``implicit`` package, same data and settings, one process.

Fit time (best of ``--repeat``, alternating the two), P1 quality of both, and the time
to recommend top-10 for every user with seen items excluded (skrec's retrieval against
implicit's own ``recommend``).

    SKREC_DATA=../shared/data python benchmarks/als_vs_implicit.py --dataset ml-1m

``--index ivf`` (or ``hnsw``/``flat``) times skrec's recommend through a faiss index
(built after fit, not timed in the fit); the quality columns then show what the
approximate search costs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from skrec import ALS
from skrec.datasets import fetch_interactions
from skrec.metrics import hit_rate_at_k, ndcg_at_k
from skrec.model_selection import LeaveLastOut, evaluate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--index", default="exact", choices=["exact", "flat", "ivf", "hnsw"])
    args = parser.parse_args()

    X = fetch_interactions(args.dataset)
    train_rows, test_rows = next(LeaveLastOut().split(X))
    train, test = X.iloc[train_rows], X.iloc[test_rows]
    params = dict(
        n_factors=args.factors,
        regularization=args.regularization,
        alpha=args.alpha,
        max_iter=args.iterations,
        random_state=0,
    )

    skrec_times, raw_times = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        model = ALS(**params).fit(train)
        skrec_times.append(time.perf_counter() - start)
        # The raw run gets the matrix skrec built (its own input preparation is not timed).
        matrix = model._seen
        seed = np.random.RandomState(0).randint(2**31 - 1)
        start = time.perf_counter()
        with threadpool_limits(1, "blas"):
            raw = AlternatingLeastSquares(
                factors=args.factors,
                regularization=args.regularization,
                alpha=args.alpha,
                iterations=args.iterations,
                random_state=int(seed),
            )
            raw.fit(matrix, show_progress=False)
        raw_times.append(time.perf_counter() - start)

    start = time.perf_counter()
    model.set_params(index=args.index)  # builds a faiss index (none for "exact")
    build = time.perf_counter() - start
    users = test.user_id.to_numpy()
    user_idx = model._user_index.get_indexer(users)
    ours_times, raw_times_recommend = [], []
    for _ in range(args.repeat):  # alternating, best of each
        timings = {}
        ours = evaluate(model, test, metrics=("hr", "ndcg"), timings=timings)
        ours_times.append(timings["recommend_seconds"])
        start = time.perf_counter()
        with threadpool_limits(1, "blas"):
            ids, _ = raw.recommend(
                user_idx, matrix[user_idx], N=10, filter_already_liked_items=True
            )
        raw_times_recommend.append(time.perf_counter() - start)
    ours_recommend, raw_recommend = min(ours_times), min(raw_times_recommend)
    relevant = test.item_id.to_numpy()
    raw_ids = model.item_ids_[ids]
    result = {
        "dataset": args.dataset,
        "params": params,
        "index": args.index,
        "n_users": len(users),
        "fit_seconds": {
            "skrec": min(skrec_times),
            "implicit": min(raw_times),
            "ratio": min(skrec_times) / min(raw_times),
        },
        "ndcg@10": {"skrec": ours["ndcg@10"], "implicit": ndcg_at_k(relevant, raw_ids, 10)},
        "hr@10": {"skrec": ours["hr@10"], "implicit": hit_rate_at_k(relevant, raw_ids, 10)},
        "recommend_all_users_seconds": {
            "skrec recommend (inside evaluate, metrics excluded)": ours_recommend,
            "skrec index build": build,
            "implicit recommend": raw_recommend,
            "ratio": ours_recommend / raw_recommend,
            "ratio counting the build": (ours_recommend + build) / raw_recommend,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
