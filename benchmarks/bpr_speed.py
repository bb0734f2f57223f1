"""MF (BPR) seconds per epoch against implicit's BPR, same data and factors, same run.

All train on the ml-1m-ncf training pairs (994,169 positives) with ``--factors``
factors, one negative per positive (skrec: uniform):

- implicit: its Cython SGD (hogwild over ``--threads`` threads), whose negatives are the
  items of random training pairs (popularity-weighted) and whose samples with a
  negative the user has are skipped without an update (the script prints that share
  and the ratio per update beside the ratio per epoch);
- skrec MF, ``optimizer="sgd"``: plain SGD, each step in closed form
  (``skrec.nn.factorization.sgd_step``), batches of ``--sgd-batch-size``;
- skrec MF, ``optimizer="adam"``: the shared autograd step with Adam, batches of
  ``--batch-size``.

The three are timed in turn, ``--repeats`` times, so that a slow spell of the machine
falls on all of them; the medians are reported. skrec's seconds per epoch come from the
training loop's own clock (``training_seconds_`` of a (1 + epochs)-epoch fit minus that
of a 1-epoch fit); implicit's from the wall time of two fits, the same way.

With ``--quality-epochs N`` each is also trained N epochs and scored by HR@10 and
NDCG@10 on the NCF protocol (each test item among its 99 listed negatives). The SGD
settings mirror implicit's defaults: implicit moves each pair's rows by learning rate
0.01 with L2 0.01 on the row; skrec's SGD step is on the batch mean, so its
``learning_rate`` is 0.01 × the batch size, and its penalty ``regularization · |row|²``
has gradient ``2 · regularization · row``, so ``regularization`` is 0.005.

    SKREC_DATA=../shared/data python benchmarks/bpr_speed.py --epochs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from skrec import MF
from skrec.datasets import load_ml_1m_ncf
from skrec.model_selection import _rank_metric, rank_against_candidates

IMPLICIT_LR, IMPLICIT_REG = 0.01, 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16384, help="Adam's batches")
    parser.add_argument("--sgd-batch-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quality-epochs", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_ml_1m_ncf()
    train = data.train
    print(
        f"{len(train):,} positives, {args.factors} factors, {args.threads} thread(s), "
        f"load {os.getloadavg()[0]:.1f}"
    )

    def skrec_model(optimizer, epochs):
        if optimizer == "sgd":
            size = args.sgd_batch_size
            settings = dict(learning_rate=IMPLICIT_LR * size, regularization=IMPLICIT_REG / 2)
        else:
            size, settings = args.batch_size, dict(learning_rate=0.01)
        return MF(
            n_factors=args.factors,
            loss="bpr",
            optimizer=optimizer,
            max_iter=epochs,
            batch_size=size,
            device="cpu",
            random_state=0,
            **settings,
        ).fit(train)

    def skrec_epoch(optimizer):
        # The loop's own clock: epochs only, not encoding, module set-up or sampler.
        one = skrec_model(optimizer, 1).training_seconds_
        return (skrec_model(optimizer, 1 + args.epochs).training_seconds_ - one) / args.epochs

    encoder = skrec_model("sgd", 1)  # its id encoding serves implicit too
    seen = encoder._seen.tocsr()  # users x items in skrec's encoding

    def implicit_model(epochs):
        from implicit.bpr import BayesianPersonalizedRanking

        bpr = BayesianPersonalizedRanking(
            factors=args.factors,
            learning_rate=IMPLICIT_LR,
            regularization=IMPLICIT_REG,
            iterations=epochs,
            num_threads=args.threads,
            random_state=0,
        )
        start = time.perf_counter()
        with threadpool_limits(1, "blas"):
            bpr.fit(seen, show_progress=False)
        return bpr, time.perf_counter() - start

    def implicit_epoch():
        one = implicit_model(1)[1]
        return (implicit_model(1 + args.epochs)[1] - one) / args.epochs

    runs = {"implicit BPR": implicit_epoch, "skrec MF sgd": lambda: skrec_epoch("sgd")}
    runs["skrec MF adam"] = lambda: skrec_epoch("adam")
    times = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, run in runs.items():
            times[name].append(run())
        print(
            f"repeat {repeat + 1}: "
            + ", ".join(f"{name} {seconds[-1]:.3f}" for name, seconds in times.items())
        )
    # implicit's epoch is not one update per positive: it draws len(pairs) random
    # (user, positive) entries, takes the item of another random entry as the negative
    # (so negatives follow item popularity) and skips the sample, without an update,
    # when the user has that item. skrec redraws such negatives, so each of its epochs
    # makes one update per positive. The expected share implicit skips:
    counts = np.bincount(seen.indices, minlength=seen.shape[1]).astype(np.float64)
    per_user = np.diff(seen.indptr).astype(np.float64)
    skipped = float((per_user * (seen @ counts)).sum() / seen.nnz**2)
    print(
        f"implicit skips {skipped:.1%} of its samples (negative already the user's): "
        f"{1 - skipped:.1%} of an epoch's samples are updates"
    )
    reference = times["implicit BPR"]
    for name, seconds in times.items():
        epoch = statistics.median(seconds)
        # each repeat's ratio is taken within the repeat, where the machine's pace is alike
        ratios = [mine / theirs for mine, theirs in zip(seconds, reference)]
        print(
            f"{name:>14}: {epoch:.3f} s/epoch (median of {len(seconds)}), "
            f"{len(train) / epoch:,.0f} positives/s, ratio to implicit "
            f"{statistics.median(ratios):.2f} (per repeat "
            + " ".join(f"{r:.2f}" for r in ratios)
            + ")"
        )
    updates = [
        (mine / len(train)) / (theirs / (len(train) * (1 - skipped)))
        for mine, theirs in zip(times["skrec MF sgd"], reference)
    ]
    print(
        f"per SGD update, skrec sgd / implicit: {statistics.median(updates):.2f} (per repeat "
        + " ".join(f"{r:.2f}" for r in updates)
        + f"); implicit makes {len(train) * (1 - skipped) / statistics.median(reference):,.0f}"
        " updates/s"
    )
    print("target: skrec / implicit <= 2")

    if args.quality_epochs:
        users, items = data.test.user_id.to_numpy(), data.test.item_id.to_numpy()
        for optimizer in ("sgd", "adam"):
            model = skrec_model(optimizer, args.quality_epochs)
            ranks = rank_against_candidates(model, users, items, data.negatives)
            report(f"skrec MF {optimizer}", ranks, args.quality_epochs)
        bpr = implicit_model(args.quality_epochs)[0]
        user_idx = np.searchsorted(encoder.user_ids_, users)
        assert (encoder.user_ids_[user_idx] == users).all()  # every test user trained
        raw = np.c_[items, data.negatives]
        candidates = np.searchsorted(encoder.item_ids_, raw).clip(max=len(encoder.item_ids_) - 1)
        known = encoder.item_ids_[candidates] == raw  # a few test and listed items never train
        scores = np.einsum(
            "nd,nmd->nm",
            bpr.user_factors[user_idx],
            bpr.item_factors[candidates],
        )
        # Unknown items rank last, and the rank counts negatives scored strictly higher,
        # as in rank_against_candidates.
        scores = np.where(known, scores, -np.inf)
        report("implicit BPR", (scores[:, 1:] > scores[:, :1]).sum(1), args.quality_epochs)


def report(name, ranks, epochs):
    hr, ndcg = (_rank_metric(metric, ranks, 10).mean() for metric in ("hr", "ndcg"))
    print(f"{name:>14}: {epochs} epochs, HR@10 {hr:.4f}, NDCG@10 {ndcg:.4f}")


if __name__ == "__main__":
    main()
