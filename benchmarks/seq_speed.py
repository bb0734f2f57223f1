"""Sequential models on ML-1M: seconds per training epoch and top-10 for every user.

The papers' settings (``ml-1m-seq``, each user's latest 200 events, 64 dims, batch 128,
learning rate 1e-3): SASRec 2 blocks / 1 head / dropout 0.1 with full cross-entropy and
with one negative + BCE; BERT4Rec 2 layers / 2 heads / 256 inner / mask 0.2; GRU4Rec one
layer. Each model trains ``--epochs`` epochs without validation; the seconds per epoch
are set beside the reference implementation's figures measured on this kind of machine
(BENCHMARKS.md, "Peer speed", 2 CPU threads) — the reference code is not installable
here, so its figures are the published ones, not re-measured in this run. Then
``recommend`` ranks all items for all 6,040 users (seen items excluded), best of 3.

Run on an otherwise idle machine:

    SKREC_DATA=../shared/data python benchmarks/seq_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import os

import torch
from _timing import best_of

from skrec import BERT4Rec, GRU4Rec, SASRec
from skrec.datasets import fetch_interactions

#: Seconds per epoch of the reference implementation (BENCHMARKS.md, "Peer speed").
REFERENCE = {"SASRec": 77.0, "SASRec-bce": 68.0, "GRU4Rec": 56.0, "BERT4Rec": 86.0}
TARGET = 0.7

MODELS = {
    "SASRec": lambda: SASRec(max_len=200),
    "SASRec-bce": lambda: SASRec(max_len=200, loss="bce"),
    "GRU4Rec": lambda: GRU4Rec(max_len=200),
    "BERT4Rec": lambda: BERT4Rec(max_len=200, mask_prob=0.2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X = fetch_interactions("ml-1m")
    users = X.user_id.unique()
    print(
        f"ml-1m-seq: {len(X):,} events, {len(users):,} users; torch threads "
        f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}"
    )
    header = ("model", "s/epoch", "reference", "ratio", "target", "top-10 all users")
    print("{:<11} {:>8} {:>9} {:>6} {:>7} {:>17}".format(*header))
    for name in args.models.split(","):
        model = MODELS[name]().set_params(max_iter=args.epochs, device="cpu", random_state=0)
        model.fit(X)
        per_epoch = model.training_seconds_ / model.n_iter_
        seconds, _ = best_of(lambda m=model: m.recommend(users, k=10))
        ratio = per_epoch / REFERENCE[name]
        verdict = "met" if ratio <= TARGET else "MISS"
        print(
            f"{name:<11} {per_epoch:8.1f} {REFERENCE[name]:9.0f} {ratio:6.2f} "
            f"{'≤' + str(TARGET):>6} {verdict:<4} {seconds:8.2f} s (≤ 2 s)"
        )


if __name__ == "__main__":
    main()
