"""MF (BPR) beside implicit's BPR on P1 ml-100k, implicit's default settings, several seeds.

BENCHMARKS.md's BPR anchor (0.0688 NDCG@10) is implicit's ``BayesianPersonalizedRanking``
with its defaults: 100 factors, 100 epochs, per-pair SGD at learning rate 0.01 with L2
0.01. skrec's ``MF(loss="bpr", optimizer="sgd")`` is given the same settings: its step
is on the batch mean, so ``learning_rate`` is 0.01 × the batch size, and its penalty
``regularization · |row|²`` has gradient ``2 · regularization · row``, so
``regularization`` is 0.005. Both are scored on the P1 test event (full ranking, seen
items excluded), one thread each, for each seed of ``--seeds``.

    SKREC_DATA=../shared/data python benchmarks/bpr_anchor.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from implicit.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from skrec import MF
from skrec.datasets import fetch_interactions
from skrec.metrics import ndcg_at_k
from skrec.model_selection import LeaveLastOut, evaluate

FACTORS, EPOCHS, LR, L2, BATCH = 100, 100, 0.01, 0.01, 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    X = fetch_interactions("ml-100k")
    train_rows, test_rows = next(LeaveLastOut().split(X))
    train, test = X.iloc[train_rows], X.iloc[test_rows]
    scores = {"implicit BPR": [], "skrec MF sgd": []}
    for seed in map(int, args.seeds.split(",")):
        model = MF(
            n_factors=FACTORS,
            loss="bpr",
            optimizer="sgd",
            learning_rate=LR * BATCH,
            regularization=L2 / 2,
            batch_size=BATCH,
            max_iter=EPOCHS,
            device="cpu",
            random_state=seed,
        ).fit(train)
        scores["skrec MF sgd"].append(evaluate(model, test)["ndcg@10"])
        # implicit trains on the user-item matrix skrec built, in skrec's id encoding.
        matrix = model._seen.tocsr().astype(np.float32)
        matrix.data[:] = 1.0  # a repeated pair is one positive, as for MF
        test_rows = model._user_index.get_indexer(test.user_id.to_numpy())
        assert (test_rows >= 0).all()  # every test user trained
        with threadpool_limits(1):
            bpr = BayesianPersonalizedRanking(
                factors=FACTORS,
                learning_rate=LR,
                regularization=L2,
                iterations=EPOCHS,
                random_state=seed,
                num_threads=1,
            )
            bpr.fit(matrix, show_progress=False)
            top, _ = bpr.recommend(test_rows, matrix[test_rows], N=10)
        relevant = test.item_id.to_numpy()
        scores["implicit BPR"].append(ndcg_at_k(relevant, model.item_ids_[top], 10))
        print(
            f"seed {seed}: implicit {scores['implicit BPR'][-1]:.4f}, "
            f"skrec {scores['skrec MF sgd'][-1]:.4f}",
            flush=True,
        )
    for name, values in scores.items():
        print(
            f"{name:>13}: NDCG@10 mean {statistics.mean(values):.4f} "
            f"(min {min(values):.4f}, max {max(values):.4f}) over {len(values)} seeds"
        )
    print("anchor (BENCHMARKS.md): 0.0688")


if __name__ == "__main__":
    main()
