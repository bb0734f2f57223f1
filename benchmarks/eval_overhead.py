"""What a full P1 evaluation adds to the model's own ``recommend``.

BENCHMARKS.md's target: evaluating every user of the test fold (full ranking, seen
items excluded, NDCG@10 and HR@10) costs at most 10% more than the ``recommend`` call
that produces their lists. Per model, the two are timed alternately in one process
(best of ``--repeat`` each, the same threads):

- ``recommend``: ``model.recommend(test users, k=10)``, one call;
- ``evaluate``: ``skrec.model_selection.evaluate(model, test)``, which recommends in
  blocks of users and scores each block.

The models are fitted briefly (quality is not the point here); every model of
``--models`` ranks through the shared retrieval.

    SKREC_DATA=../shared/data python benchmarks/eval_overhead.py --dataset ml-1m
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from skrec import ALS, MF, Item2Vec, SASRec
from skrec.datasets import fetch_interactions
from skrec.model_selection import LeaveLastOut, evaluate

K = 10

MODELS = {
    "ALS": lambda: ALS(n_factors=64, max_iter=3, random_state=0),
    "MF": lambda: MF(n_factors=64, max_iter=1, early_stopping=False, random_state=0),
    "Item2Vec": lambda: Item2Vec(n_factors=64, max_iter=1, random_state=0),
    "SASRec": lambda: SASRec(max_len=50, max_iter=1, early_stopping=False, random_state=0),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--models", default="ALS,MF,Item2Vec,SASRec")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    X = fetch_interactions(args.dataset)
    train_rows, test_rows = next(LeaveLastOut().split(X))
    train, test = X.iloc[train_rows], X.iloc[test_rows]
    users = test.user_id.unique()
    print(
        f"{args.dataset}: {len(users):,} test users, {train.item_id.nunique():,} items, "
        f"top-{K}, seen excluded; torch threads {torch.get_num_threads()}"
    )
    print(f"{'model':<10} {'recommend s':>12} {'evaluate s':>11} {'ratio':>7}  target <= 1.10")
    for name in args.models.split(","):
        model = MODELS[name]().fit(train)
        known = users[np.isin(users, model.user_ids_)]
        recommend_s = evaluate_s = float("inf")
        for _ in range(args.repeat):  # alternate, so a busy moment hits both sides
            start = time.perf_counter()
            model.recommend(known, k=K)
            recommend_s = min(recommend_s, time.perf_counter() - start)
            start = time.perf_counter()
            scores = evaluate(model, test, metrics=("ndcg", "hr"), k=K)
            evaluate_s = min(evaluate_s, time.perf_counter() - start)
        ratio = evaluate_s / recommend_s
        print(
            f"{name:<10} {recommend_s:>12.3f} {evaluate_s:>11.3f} {ratio:>7.3f}  "
            f"({'met' if ratio <= 1.10 else 'missed'}; ndcg@{K} {scores[f'ndcg@{K}']:.4f})"
        )


if __name__ == "__main__":
    main()
