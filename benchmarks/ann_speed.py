"""Approximate top-10 retrieval against the exact one, on ALS factors of Amazon Beauty.

Fits skrec's ALS (64 factors, 5 sweeps) on Beauty (54,542 items), then recommends 10
unseen items to every user with the exact :func:`skrec.retrieval.topk` and with
:class:`skrec.retrieval.ItemIndex` of each kind, all in the same process. Prints, per
kind: build time, search time, speed-up over exact and recall@10 against exact, then
the recall/time trade-off of the IVF and HNSW search settings. Exact and approximate
searches alternate (``--repeat`` pairs, the best of each side kept), so a slow spell
of the machine falls on both, and torch and faiss use the same number of threads
(``--threads``, default all cores). The machine load (1-minute average) is printed
beside the timings.

    SKREC_DATA=/work/shared/data python benchmarks/ann_speed.py [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _timing import best_of

from skrec import ALS
from skrec.datasets import load_beauty
from skrec.retrieval import ItemIndex, topk, vector_scorer

K = 10


def load() -> float:
    return os.getloadavg()[0]


def recall(found: np.ndarray, reference: np.ndarray) -> float:
    """Mean share of each user's exact top-k that the approximate top-k holds."""
    hits = [
        len(np.intersect1d(a, b[b >= 0])) / max(1, (b >= 0).sum()) for a, b in zip(found, reference)
    ]
    return float(np.mean(hits))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, help="exact/approximate pairs timed per setting"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch and faiss threads"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = ALS(n_factors=64, max_iter=5, random_state=0).fit(load_beauty().interactions)
    users, items, seen = model.user_factors_, model.item_factors_, model._seen
    print(
        f"ALS fit in {time.perf_counter() - start:.1f} s: {len(users)} users x {len(items)} items, "
        f"{items.shape[1]} factors, {seen.nnz} seen pairs excluded; top-{K}"
    )

    def exact():
        return topk(vector_scorer(users, items), len(users), len(items), K, exclude=seen)

    reference = exact()[0]
    print(f"\n{args.threads} thread(s) for torch (exact topk) and faiss")

    def search(index):
        """Alternating exact and approximate searches: a report line with both times,
        the speed-up, recall and the machine load."""
        before = load()
        exact_s = search_s = float("inf")
        for _ in range(args.repeat):
            exact_s = min(exact_s, best_of(exact, 1)[0])
            seconds, (found, _) = best_of(lambda: index.search(users, K, exclude=seen), 1)
            search_s = min(search_s, seconds)
        return (
            search_s,
            exact_s,
            (
                f"{search_s:6.2f} s against exact {exact_s:.2f} s: {exact_s / search_s:5.1f}x "
                f"faster, recall@10 {recall(found, reference):.4f}  "
                f"[load {before:.1f} -> {load():.1f}]"
            ),
        )

    indexes = {}
    for kind, settings in (
        ("flat", "IndexFlatIP"),
        ("ivf", "n_lists={0.n_lists} n_probe={0.n_probe}"),
        ("hnsw", "M=32 ef_construction=200 ef_search={0.ef_search}"),
    ):
        index = indexes[kind] = ItemIndex(items, kind, n_threads=args.threads, random_state=0)
        seconds, exact_s, report = search(index)
        with_build = exact_s / (seconds + index.build_seconds)
        print(f"{kind:<5} search {report}")
        print(
            f"      build {index.build_seconds:.2f} s ({with_build:.1f}x faster than exact "
            f"counting the build); {settings.format(index)}"
        )

    print("\ntrade-off (same indexes, search setting changed):")
    for kind, name in (("ivf", "n_probe"), ("hnsw", "ef_search")):
        index = indexes[kind]
        default = getattr(index, name)
        for value in (max(1, default // 2), default, 2 * default):
            setattr(index, name, value)
            print(f"  {kind:<5}{name}={value:<4} {search(index)[2]}")
        setattr(index, name, default)


if __name__ == "__main__":
    main()
