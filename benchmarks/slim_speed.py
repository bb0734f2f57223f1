"""SLIM coordinate-descent speed on ml-1m-ncf: the blocked solver against the previous one.

Both solve the P2 configuration (alpha=0.1, l1_ratio=0.005, all items as neighbours)
on the item Gram matrix of the ml-1m-ncf training pairs, for the same number of sweeps
and in the same process: the previous solver (one torch rank-1 update of ``(G @ W).T``
per coordinate, copied below as it was), with torch's default threads as ``SLIM`` ran
it or with ``--previous-threads``; then ``skrec.models.linear._slim_coordinate_descent``
on one BLAS thread and on all cores (``SLIM``'s default ``n_jobs``, which only the
once-per-block update of ``G @ W`` uses). ``--signed`` solves without the sign
constraint (``positive=False``, P2's choice since stop 19), where that update is a
dense product and most of the work.
The one-minute load average is printed before each timing, since other jobs may share
the cores. The weights of the two solvers agree to float32 rounding.

    SKREC_DATA=/work/shared/data python benchmarks/slim_speed.py --sweeps 3
    SKREC_DATA=/work/shared/data python benchmarks/slim_speed.py --sweeps 60 --previous-threads 1
    SKREC_DATA=/work/shared/data python benchmarks/slim_speed.py --sweeps 8 --signed

Quality and the full fit time at the configured 60 sweeps come from the benchmark:
``skrec bench --dataset ml-1m-ncf --protocol ncf --models SLIM``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp
import torch
from joblib import effective_n_jobs

from skrec.datasets import load_ml_1m_ncf
from skrec.models.linear import _binary_gram, _slim_coordinate_descent

ALPHA, L1_RATIO = 0.1, 0.005


def previous_descent(G, l1, l2, positive, allowed, max_iter, tol):
    """The solver before blocking: torch, one coordinate's update applied at a time."""
    n = G.shape[0]
    W = torch.zeros(n, n, dtype=G.dtype)
    HT = torch.zeros(n, n, dtype=G.dtype)
    diag = torch.diagonal(G).clone()
    n_iter = 0
    for sweep in range(1, max_iter + 1):
        n_iter = sweep
        biggest_change = 0.0
        for k in range(n):
            old = W[k]
            rho = G[k] - HT[:, k] + diag[k] * old
            if positive:
                new = torch.clamp_min(rho - l1, 0.0)
            else:
                new = torch.sign(rho) * torch.clamp_min(rho.abs() - l1, 0.0)
            new /= diag[k] + l2
            new[k] = 0.0
            if allowed is not None:
                new *= allowed[k]
            delta = new - old
            changed = delta.nonzero().squeeze(1)
            if len(changed) == 0:
                continue
            step = delta[changed]
            HT.index_add_(0, changed, step[:, None] * G[k][None, :])
            W[k, changed] = new[changed]
            biggest_change = max(biggest_change, float(step.abs().max()))
        scale = float(W.abs().max())
        if scale == 0 or biggest_change <= tol * scale:
            break
    return W, n_iter


def gram_matrix():
    train = load_ml_1m_ncf().train
    users = train.user_id.astype("category").cat.codes.to_numpy()
    items = train.item_id.astype("category").cat.codes.to_numpy()
    seen = sp.csr_matrix((np.ones(len(users)), (users, items)))
    return _binary_gram(seen).astype(np.float32), seen.shape[0]


def timed(label, fn):
    load = os.getloadavg()[0]
    start = time.perf_counter()
    W = fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<38} {seconds:7.2f} s   (load average {load:.2f} before)", flush=True)
    return seconds, W


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument(
        "--previous-threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads for the previous solver (default: torch's, as SLIM used)",
    )
    parser.add_argument("--signed", action="store_true", help="positive=False")
    args = parser.parse_args()
    G, n_users = gram_matrix()
    l1 = ALPHA * L1_RATIO * n_users
    l2 = ALPHA * (1.0 - L1_RATIO) * n_users
    positive = not args.signed
    sign = "positive" if positive else "signed"
    print(f"ml-1m-ncf: {G.shape[0]} items, {n_users} users, {args.sweeps} sweeps, {sign}")

    def previous():
        default = torch.get_num_threads()
        torch.set_num_threads(args.previous_threads)
        try:
            gram = torch.from_numpy(G)
            return previous_descent(gram, l1, l2, positive, None, args.sweeps, 0.0)
        finally:
            torch.set_num_threads(default)

    def blocked(threads):
        return lambda: _slim_coordinate_descent(
            G, l1, l2, positive, None, args.sweeps, 0.0, False, threads
        )

    cores = int(effective_n_jobs(-1))
    before, (W_before, _) = timed(f"previous, torch threads={args.previous_threads}", previous)
    one, (W_now, _) = timed("blocked (skrec), one thread", blocked(1))
    every, (W_all, _) = timed(f"blocked (skrec), {cores} threads", blocked(cores))
    print(f"  previous/blocked: {before / one:.1f} on one thread, {before / every:.1f} on {cores}")
    for label, W in (("one thread", W_now), (f"{cores} threads", W_all)):
        gap = float(np.abs(W_before.numpy() - W).max())
        print(f"  largest |W difference|, previous against {label}: {gap:.1e}")


if __name__ == "__main__":
    main()
