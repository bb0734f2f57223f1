"""Torch models trained on (query, item) pairs with negatives: MF, NeuMF, Item2Vec.

The query is a user for MF and NeuMF and a centre item for Item2Vec. Their module has
``forward(queries (B,), items (B,) or (B, N))`` and ``score_all(queries, items=None)``;
this class turns the chosen ``loss`` and ``sampler`` into batches and a loss, once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import torch

from ..data.interactions import Interactions
from ..data.sampling import SAMPLERS, NegativeSampler, minibatches
from ..nn import losses
from ..nn.factorization import CLOSED_FORM_LOSSES, DotProduct, sgd_step
from ..training import TRAINING_CONSTRAINTS, TorchRecommender, _local_seed
from ..utils.validation import Interval, StrOptions

EVENT_CONSTRAINTS = {
    **TRAINING_CONSTRAINTS,
    "n_factors": [Interval(Integral, 1, None, closed="left")],
    "sampler": [StrOptions(set(SAMPLERS))],
    "n_negatives": [Interval(Integral, 1, None, closed="left")],
    "logq_correction": ["boolean"],
}


@dataclass
class Pairs:
    """What the batches are made from: the events, the fixed training pairs
    (``query``/``item`` int64 tensors, ``target`` ratings) and the negative sampler."""

    events: Interactions
    query: torch.Tensor
    item: torch.Tensor
    target: torch.Tensor | None
    sampler: NegativeSampler | None
    n_negatives: int | None = None  # negatives per pair when not the model's own


class EventModel(TorchRecommender):
    """Shared batches and loss for pair-trained torch models (not used directly)."""

    #: Losses the model accepts; subclasses narrow or keep.
    _losses = ("bpr", "bce", "softmax", "sampled_softmax", "gbce", "warp", "mse")

    def _pairs(self, data: Interactions):
        """``(query, item, target)`` arrays the model trains on (one epoch's worth)."""
        target = None
        if self.loss == "mse":
            if data.target is None:
                raise ValueError(
                    f"loss='mse' trains on explicit ratings: pass them as y to fit "
                    f"({type(self).__name__}().fit(X, y=ratings)), or use a ranking loss."
                )
            target = np.asarray(data.target, dtype=np.float32)
        return data.user, data.item, target

    def _prepare(self, data: Interactions) -> Pairs:
        query, item, target = self._pairs(data)
        sampler = None
        if self.loss in losses.PAIRWISE:
            if self.loss == "warp" and self.sampler != "uniform":
                raise ValueError(
                    f"loss='warp' estimates the positive's rank from how many uniform draws "
                    f"it takes to find a violator; sampler={self.sampler!r} draws otherwise "
                    "(hard negatives come best first, so every violator would look top-"
                    "ranked). Use sampler='uniform', or another loss."
                )
            if self.loss == "sampled_softmax" and self.logq_correction and self.sampler == "hard":
                raise ValueError(
                    "logq_correction=True needs each negative's sampling probability, which "
                    "the 'hard' sampler (the model's top-scored items) does not have. Set "
                    "logq_correction=False, or use the 'popularity' or 'in_batch' sampler."
                )
            sampler = NegativeSampler(
                self.sampler,
                data.n_items,
                counts=data.item_counts(),
                power=self._sampler_power(),
                positives=self._positives(data),
            )
        return Pairs(
            data,
            torch.from_numpy(np.asarray(query, dtype=np.int64)),
            torch.from_numpy(np.asarray(item, dtype=np.int64)),
            None if target is None else torch.from_numpy(target),
            sampler,
        )

    def _positives(self, data: Interactions):
        """Pairs a negative must not hit: each user's items."""
        return data.csr()

    def _sampler_power(self) -> float:
        return 0.75

    def _epoch_pairs(self, prepared: Pairs, generator):
        """This epoch's ``(query, item, target)`` tensors; the same every epoch here."""
        return prepared.query, prepared.item, prepared.target

    def _batches(self, prepared: Pairs, module, generator):
        device = self.device_

        def score(queries, items):  # the hard sampler's ranking: without dropout
            training = module.training
            module.eval()
            try:
                return module(queries.to(device), items.to(device))
            finally:
                module.train(training)

        query, item, target = self._epoch_pairs(prepared, generator)
        sampler = prepared.sampler
        n_negatives = prepared.n_negatives or self.n_negatives
        # Model-independent negatives are drawn for the whole epoch at once (one
        # vectorised rejection pass); hard and in-batch ones depend on the batch.
        upfront = sampler is not None and sampler.kind in ("uniform", "popularity")
        if upfront:
            order = torch.randperm(len(query), generator=generator)
            query, item = query[order], item[order]
            target = None if target is None else target[order]
            epoch_negatives = sampler.sample(query, item, n_negatives, generator)
            # Already shuffled: consecutive slices are the batches (views, no gather).
            size = int(self.batch_size)
            batches = (slice(start, start + size) for start in range(0, len(query), size))
        else:
            batches = minibatches(len(query), self.batch_size, generator)
        for index in batches:
            batch = {"query": query[index], "item": item[index]}
            if target is not None:
                batch["target"] = target[index]
            if sampler is not None:
                if upfront:
                    negative, valid = (t[index] for t in epoch_negatives)
                else:
                    negative, valid = sampler.sample(
                        batch["query"], batch["item"], n_negatives, generator, score
                    )
                batch["negative"], batch["valid"] = negative, valid
                if self.loss == "sampled_softmax" and self.logq_correction:
                    batch["log_q_pos"] = sampler.log_q(batch["item"])
                    batch["log_q_neg"] = sampler.log_q(negative)
                    if negative.dim() == 1:  # shared: one row of corrections
                        batch["log_q_neg"] = batch["log_q_neg"][None, :]
            yield batch

    def _regularization(self) -> float:
        """Weight of the per-example L2 penalty the model's ``_loss`` adds (none here)."""
        return 0.0

    def _train_step(self, module, batch, parameters, optimizer):
        # Plain SGD of a dot-product model on bpr/bce with per-row negatives: the same
        # step in closed form (skrec.nn.factorization.sgd_step), without autograd.
        closed_form = (
            isinstance(module, DotProduct)
            and self.loss in CLOSED_FORM_LOSSES
            and self.optimizer == "sgd"
            and self.clip_grad_norm is None
            and batch["negative"].dim() == 2  # per-row negatives (not in-batch)
        )
        if not closed_form:
            return super()._train_step(module, batch, parameters, optimizer)
        return sgd_step(
            module,
            batch,
            self.loss,
            self.learning_rate,
            self._regularization(),
            self.weight_decay,
            trainable=parameters,
        )

    def _loss(self, module, batch) -> torch.Tensor:
        query, item = batch["query"], batch["item"]
        if self.loss == "mse":
            return losses.mse(module(query, item), batch["target"])
        if self.loss == "softmax":
            return losses.softmax(module.score_all(query), item)
        negative = batch["negative"]
        if negative.dim() == 1:  # shared negatives (in-batch)
            pos, neg = module(query, item), module.score_all(query, negative)  # (B,), (B, N)
        else:  # one pass, so each query's rows are looked up once
            scores = module(query, torch.cat([item[:, None], negative], 1))  # (B, 1 + N)
            pos, neg = scores[:, 0], scores[:, 1:]
        return losses.ranking_loss(
            self.loss,
            pos,
            neg,
            valid=batch["valid"],
            n_items=self._train.n_items,
            log_q_pos=batch.get("log_q_pos"),
            log_q_neg=batch.get("log_q_neg"),
        )

    # --------------------------------------------------------------- fold-in
    def _module_for_new_users(self, n_users: int):
        """A module sharing the fitted item side, with fresh user rows, and the
        parameters to train for them."""
        raise NotImplementedError

    def _history_holds_ratings(self) -> bool:
        return self.loss == "mse"

    def _fold_in(self, events: Interactions):
        """Train fresh user rows on ``events`` (item side frozen) with the model's loss;
        returns the module holding them."""
        if self.loss == "mse":  # history carries ratings in its weight column
            events = replace(events, target=events.weight)
        seed = int(np.random.RandomState(self._fold_in_seed).randint(2**31 - 1))
        with _local_seed(seed, self.device_), torch.enable_grad():
            module, parameters = self._module_for_new_users(events.n_users)
            module.to(self.device_)
            generator = torch.Generator().manual_seed(seed)
            try:
                self._run(module, parameters, self._fold_in_pairs(events), generator)
            finally:
                module.eval()  # also when interrupted: shared layers must not stay in training mode
        return module

    def _fold_in_pairs(self, events: Interactions) -> Pairs:
        """The fold-in's pairs. A history is no catalog: popularity negatives follow the
        training counts, and in-batch ones (a history's batch holds only its own items,
        every one a positive) become as many draws from the distribution in-batch
        negatives follow in fit (the training counts)."""
        prepared = self._prepare(events)
        if prepared.sampler is None or self.sampler not in ("popularity", "in_batch"):
            return prepared
        in_batch = self.sampler == "in_batch"
        sampler = NegativeSampler(
            "popularity",
            self._train.n_items,
            counts=self._train.item_counts(),
            power=1.0 if in_batch else self._sampler_power(),
            positives=self._positives(events),
        )
        n = max(1, min(int(self.batch_size) - 1, self._train.n_items - 1)) if in_batch else None
        return replace(prepared, sampler=sampler, n_negatives=n)

    @property
    def _fold_in_seed(self) -> int:
        return self.random_state if isinstance(self.random_state, Integral) else 0
