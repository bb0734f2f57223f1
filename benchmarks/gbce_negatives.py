"""gSASRec's first epochs with and without rejecting the user's items from the negatives.

skrec's sampled sequence losses draw uniform negatives that are not among the user's
items. The gSASRec authors draw them uniformly from the whole catalog, and gBCE's
calibration (``β`` from the sampling rate ``N / (n_items - 1)``) assumes that. Rejecting a
user's items skews the negatives toward unpopular items, a candidate cause of the
popularity plateau that ML-1M's ``SASRec-gbce`` run sat on. This trains the config's
``SASRec-gbce`` for ``--epochs`` epochs both ways (same seed, validation NDCG@10 on the
event before the test one) and prints the two curves.

    SKREC_DATA=../shared/data python benchmarks/gbce_negatives.py --epochs 6 reject
    SKREC_DATA=../shared/data python benchmarks/gbce_negatives.py --epochs 6 catalog
"""

from __future__ import annotations

import argparse
import time

import torch

from skrec import SASRec
from skrec.bench import _prepare, load_config
from skrec.data.sampling import NegativeSampler


class CatalogNegatives(SASRec):
    """SASRec whose negatives are drawn from the whole catalog, the user's items included
    (a negative equal to the row's own target is still redrawn)."""

    def _prepare(self, data):
        prepared = super()._prepare(data)
        prepared.sampler = NegativeSampler("uniform", data.n_items)
        return prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("negatives", choices=["reject", "catalog"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = dict(load_config("ml-1m")["SASRec-gbce"]["params"], max_iter=args.epochs)
    model = (SASRec if args.negatives == "reject" else CatalogNegatives)(**params)
    ((train, y, _),) = _prepare("ml-1m", "leave-last-out", None, 0)
    start = time.perf_counter()
    model.fit(train, y)
    print(f"negatives: {args.negatives}, {time.perf_counter() - start:.0f} s")
    print("validation NDCG@10:", " ".join(f"{v:.4f}" for v in model.validation_scores_))
    print("training loss:     ", " ".join(f"{v:.3f}" for v in model.loss_curve_))


if __name__ == "__main__":
    main()
