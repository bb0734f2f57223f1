"""Top-10 retrieval speed and memory: all ML-1M-sized users, 64-dim vectors, seen excluded.

Prints the time of skrec's retrieval beside a naive reference run in the same process
(dense score matrix, seen items set to -inf, full numpy argsort), and the peak memory
when the number of users grows 10x (each
measured in a fresh process). Seen items come from ml-1m (SKREC_DATA) when
available, otherwise from a random matrix of the same density.

    python benchmarks/topk_speed.py
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import scipy.sparse as sp
from _timing import best_of

from skrec.bench import PeakMemory
from skrec.retrieval import topk, vector_scorer

N_USERS, N_ITEMS, DIM, K = 6040, 3706, 64, 10


def seen_matrix(rng):
    try:
        from skrec.datasets import load_ml_1m

        pairs = load_ml_1m(download=False).interactions
        users = pairs.user_id.astype("category").cat.codes.to_numpy()
        items = pairs.item_id.astype("category").cat.codes.to_numpy()
        return sp.csr_matrix((np.ones(len(users), np.float32), (users, items))), "ml-1m"
    except FileNotFoundError:
        density = 1_000_209 / (N_USERS * N_ITEMS)
        return sp.random(N_USERS, N_ITEMS, density, format="csr", random_state=rng), "random"


def naive(U, I, seen):
    scores = U @ I.T
    scores[seen.nonzero()] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :K]


def main():
    rng = np.random.default_rng(0)
    seen, source = seen_matrix(rng)
    U = rng.normal(size=(N_USERS, DIM)).astype(np.float32)
    I = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    skrec_s, (index, _) = best_of(
        lambda: topk(vector_scorer(U, I), N_USERS, N_ITEMS, K, exclude=seen)
    )
    naive_s, reference = best_of(lambda: naive(U, I, seen))
    agree = (index == reference).mean()
    print(f"seen items from {source}: {seen.nnz} events")
    print(f"top-{K}, {N_USERS} users x {N_ITEMS} items, {DIM} dims, seen excluded")
    print(f"  skrec.retrieval.topk  {skrec_s:.3f} s")
    print(f"  naive dense argsort   {naive_s:.3f} s   ratio skrec/naive = {skrec_s / naive_s:.2f}")
    print(f"  identical lists: {agree:.4%}")

    peaks = {}
    for factor in (1, 10):
        done = subprocess.run(
            [sys.executable, __file__, "--memory", str(factor)],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[factor] = float(done.stdout.split()[-1])
        print(
            f"  users x{factor:<3} ({factor * N_USERS}): peak memory above start "
            f"{peaks[factor]:.0f} MiB (fresh process)"
        )
    print(
        f"  memory ratio 10x users / 1x users = {peaks[10] / peaks[1]:.2f} "
        f"(the (n_users, k) result arrays alone grow by {9 * N_USERS * K * 12 / 2**20:.0f} MiB)"
    )


def memory(factor: int):
    """Peak resident memory of one top-k pass over ``factor`` x the users, in MiB."""
    rng = np.random.default_rng(0)
    U = np.tile(rng.normal(size=(N_USERS, DIM)).astype(np.float32), (factor, 1))
    I = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    density = 1_000_209 / (N_USERS * N_ITEMS)
    seen = sp.random(len(U), N_ITEMS, density, format="csr", random_state=rng)
    with PeakMemory() as peak:
        topk(vector_scorer(U, I), len(U), N_ITEMS, K, exclude=seen)
    print(f"{peak.peak_mb:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory(int(sys.argv[2]))
    else:
        main()
