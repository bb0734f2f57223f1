"""EASE's validation score over l2_reg on each of the last events before the test one.

Fold -1 holds out the validation event (the one before the test event) and trains on
the events before it; fold -2 drops that event too and holds out the one before; and so
on. The test event is cut off first and never scored. Shows how much the λ that a
single validation event chooses moves from event to event.

    SKREC_DATA=../shared/data python benchmarks/validation_folds.py ml-100k \\
        50,100,200,300,500,800,1200
"""

from __future__ import annotations

import argparse

import numpy as np

from skrec import EASE
from skrec.datasets import fetch_interactions
from skrec.model_selection import LeaveLastOut, ranking_scorer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("l2_regs", help="comma-separated values of EASE's l2_reg")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    l2_regs = [float(value) for value in args.l2_regs.split(",")]

    X = fetch_interactions(args.dataset)
    remaining = X.iloc[next(LeaveLastOut().split(X))[0]]  # the test event is cut off
    scorer = ranking_scorer("ndcg", k=10)
    print("l2_reg", " ".join(f"{value:>7g}" for value in l2_regs))
    scores = []
    for fold in range(1, args.folds + 1):
        train_rows, held_out_rows = next(LeaveLastOut().split(remaining))
        train, held_out = remaining.iloc[train_rows], remaining.iloc[held_out_rows]
        scores.append([scorer(EASE(l2_reg=value).fit(train), held_out) for value in l2_regs])
        best = l2_regs[int(np.argmax(scores[-1]))]
        print(f"fold -{fold}", " ".join(f"{s:.4f}" for s in scores[-1]), f"best {best:g}")
        remaining = train
    mean = np.mean(scores, axis=0)
    print("mean   ", " ".join(f"{s:.4f}" for s in mean), f"best {l2_regs[int(np.argmax(mean))]:g}")


if __name__ == "__main__":
    main()
