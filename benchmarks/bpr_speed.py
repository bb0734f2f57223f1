"""MF (BPR) seconds per epoch against implicit's BPR, same data and factors, same run.

Both train on the ml-1m-ncf training pairs (994,169 positives) with one uniform negative
per positive and ``--factors`` factors. implicit runs its Cython SGD (hogwild over
``--threads`` threads); skrec runs its shared torch loop (mini-batches of
``--batch-size``, Adam). Reports seconds per epoch, positives per second and the ratio.

    SKREC_DATA=../shared/data python benchmarks/bpr_speed.py --epochs 5
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from threadpoolctl import threadpool_limits

from skrec import MF
from skrec.datasets import load_ml_1m_ncf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-bias", action="store_true", help="MF without biases")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_ml_1m_ncf().train
    print(
        f"{len(train):,} positives, {args.factors} factors, {args.threads} thread(s), "
        f"load {os.getloadavg()[0]:.1f}"
    )

    # skrec: one epoch first (fit overhead: encoding, module, sampler), then the run.
    def skrec_fit(epochs):
        model = MF(
            n_factors=args.factors,
            loss="bpr",
            max_iter=epochs,
            batch_size=args.batch_size,
            learning_rate=0.01,
            bias=not args.no_bias,
            device="cpu",
            random_state=0,
        )
        model.fit(train)
        # The loop's own clock: epochs only, not encoding, module set-up or sampler.
        return model.training_seconds_, model

    one, model = skrec_fit(1)
    full, model = skrec_fit(1 + args.epochs)
    skrec_epoch = (full - one) / args.epochs

    from implicit.bpr import BayesianPersonalizedRanking

    seen = model._seen.tocsr()

    def implicit_fit(epochs):
        bpr = BayesianPersonalizedRanking(
            factors=args.factors, iterations=epochs, num_threads=args.threads, random_state=0
        )
        start = time.perf_counter()
        with threadpool_limits(1, "blas"):
            bpr.fit(seen, show_progress=False)
        return time.perf_counter() - start

    implicit_epoch = (implicit_fit(1 + args.epochs) - implicit_fit(1)) / args.epochs
    for name, seconds in (("skrec MF", skrec_epoch), ("implicit BPR", implicit_epoch)):
        print(f"{name:>13}: {seconds:.3f} s/epoch, {len(train) / seconds:,.0f} positives/s")
    print(f"ratio skrec / implicit: {skrec_epoch / implicit_epoch:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
