"""How long gBCE's slow start lasts, by calibration ``t``, learning rate and negatives.

On the unit tests' ordered synthetic set (300 users, 80 items, strong successor
structure) SASRec trains 150 epochs per setting, validating every epoch on the event
before the test one. The line per setting gives the first epoch whose validation
NDCG@10 exceeds 0.3 (Popular is near 0.1; learned models reach 0.75), the best score,
and every tenth epoch's score. ``--no-offset`` drops the learned score offset that
skrec starts at the loss's equal-score balance, as before it existed.

    python benchmarks/gbce_start.py
    python benchmarks/gbce_start.py --no-offset
"""

from __future__ import annotations

import argparse

import torch
from gbce_negatives import without_offset

from skrec import SASRec
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut

SETTINGS = [  # (gbce_t, n_negatives, learning_rate)
    (0.0, 16, 5e-3),
    (0.5, 16, 5e-3),
    (0.75, 16, 5e-3),
    (0.75, 16, 1e-3),
    (0.75, 4, 5e-3),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-offset", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cls = without_offset(SASRec) if args.no_offset else SASRec
    X = make_interactions(
        n_users=300, n_items=80, mean_events=15, sequential_strength=0.8, random_state=1
    )
    train_rows, _ = next(LeaveLastOut().split(X))
    train = X.iloc[train_rows]
    for t, n_negatives, learning_rate in SETTINGS:
        model = cls(
            n_factors=32,
            max_len=20,
            loss="gbce",
            gbce_t=t,
            n_negatives=n_negatives,
            learning_rate=learning_rate,
            max_iter=args.epochs,
            early_stopping=True,
            validation_fraction=1.0,
            n_iter_no_change=args.epochs,
            random_state=0,
        ).fit(train)
        scores = model.validation_scores_
        first = next((i + 1 for i, v in enumerate(scores) if v > 0.3), None)
        print(
            f"t={t} negatives={n_negatives} lr={learning_rate}: first epoch > 0.3: {first}, "
            f"best {max(scores):.3f}; every 10th: {' '.join(f'{v:.2f}' for v in scores[::10])}"
        )


if __name__ == "__main__":
    main()
