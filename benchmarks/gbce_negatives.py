"""gSASRec's first epochs under variants of its negatives and output layer.

skrec's sampled sequence losses draw ``n_negatives`` uniform negatives per sequence,
shared by its positions, that are not among the user's items. The gSASRec authors draw
256 per position, uniformly from the whole catalog. Before skrec's score offset existed
(``--no-offset`` below), the config's ``SASRec-gbce`` sat at the popularity level for
its first epochs on ML-1M and ml-100k. This trains it for ``--epochs`` epochs (same
seed, validation NDCG@10 on the event before the test one) under one variant and
prints the curves:

- ``reject``: skrec's sampling (the config as it is);
- ``catalog``: per sequence, from the whole catalog (the user's items included; a
  negative equal to the row's own target is still dropped);
- ``per-position``: the authors' sampling, ``n_negatives`` per position from the whole
  catalog (scored through the full logits, so meant for catalogs of a few thousand);
- ``item-bias``: skrec's sampling with a learned output bias per item;
- ``bce``: skrec's sampling with ``gbce_t=0`` (BCE with the same 256 negatives);
- ``sampled-softmax``: the same 256 negatives under the sampled softmax.

``--no-offset`` drops the learned score offset that skrec starts at the loss's
equal-score balance (``SequentialModel._build_module``), as before it existed: every
score then starts near 0 and the encoder must shift them all first.

    SKREC_DATA=../shared/data python benchmarks/gbce_negatives.py reject
    SKREC_DATA=../shared/data python benchmarks/gbce_negatives.py --no-offset per-position
    SKREC_DATA=../shared/data python benchmarks/gbce_negatives.py --dataset ml-1m --epochs 6 catalog
"""

from __future__ import annotations

import argparse
import time

import torch

from skrec import SASRec
from skrec.bench import _prepare, load_config
from skrec.data.sampling import NegativeSampler
from skrec.nn import losses


class CatalogNegatives(SASRec):
    """Negatives per sequence from the whole catalog, the user's items included."""

    def _prepare(self, data):
        prepared = super()._prepare(data)
        prepared.sampler = NegativeSampler("uniform", data.n_items)
        return prepared


class PerPositionNegatives(SASRec):
    """``n_negatives`` per position, uniform over the whole catalog (the authors')."""

    def _negatives(self, sampler, users, targets, generator):
        shape = (*targets.shape, self.n_negatives)
        return {"negative": torch.randint(0, sampler.n_items, shape, generator=generator)}

    def _loss(self, module, batch):
        hidden = module(batch["inputs"])
        targets = batch["targets"]
        where = targets > 0
        target = targets[where] - 1
        logits = hidden[where] @ module.item_weight().T  # (M, n_items)
        if module.score_offset is not None:
            logits = logits + module.score_offset
        negative = batch["negative"][where]  # (M, N)
        return losses.ranking_loss(
            self.loss,
            logits.gather(1, target[:, None])[:, 0],
            logits.gather(1, negative),
            valid=negative != target[:, None],
            n_items=module.n_items,
            gbce_t=self.gbce_t,
        )


class ItemBias(SASRec):
    """A learned output bias per item beside the shared embeddings."""

    def _build_module(self, data):
        module = super()._build_module(data)
        module.output_bias = torch.nn.Parameter(torch.zeros(module.n_items))
        return module


def without_offset(cls):
    """``cls`` without the score offset: scores start near 0, not at the balance."""

    class NoOffset(cls):
        def _build_module(self, data):
            module = super()._build_module(data)
            module.score_offset = None
            return module

    NoOffset.__name__ = cls.__name__
    return NoOffset


VARIANTS = {
    "reject": (SASRec, {}),
    "catalog": (CatalogNegatives, {}),
    "per-position": (PerPositionNegatives, {}),
    "item-bias": (ItemBias, {}),
    "bce": (SASRec, {"gbce_t": 0.0}),
    "sampled-softmax": (SASRec, {"loss": "sampled_softmax"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-offset", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cls, changes = VARIANTS[args.variant]
    if args.no_offset:
        cls = without_offset(cls)
    # ML-1M's gBCE setting on either dataset (the documented runs used it on ml-100k too)
    params = dict(load_config("ml-1m")["SASRec-gbce"]["params"], max_iter=args.epochs)
    params.update(changes, n_iter_no_change=args.epochs)  # the whole curve, no stop
    model = cls(**params)
    ((train, y, _),) = _prepare(args.dataset, "leave-last-out", None, 0)
    start = time.perf_counter()
    model.fit(train, y)
    offset = "without" if args.no_offset else "with"
    print(f"{args.variant} on {args.dataset}, {offset} the score offset, ", end="")
    print(f"{time.perf_counter() - start:.0f} s")
    print("validation NDCG@10:", " ".join(f"{v:.4f}" for v in model.validation_scores_))
    print("training loss:     ", " ".join(f"{v:.3f}" for v in model.loss_curve_))


if __name__ == "__main__":
    main()
