"""Item embeddings learned from co-occurrence: Item2Vec (skip-gram with negative sampling)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch

from ..base import INDEX_KINDS
from ..nn.factorization import DotProduct
from ..training import document_training_parameters
from ..utils.validation import Interval, StrOptions
from ._events import EVENT_CONSTRAINTS, EventModel, Pairs


@document_training_parameters
class Item2Vec(EventModel):
    """Item2Vec: word2vec's skip-gram with negative sampling over user histories.

    Each user's items are a "sentence": an item (the centre) should predict the items
    near it — within ``window`` positions of the time-ordered history, or anywhere in
    the user's set when ``window=None`` — against ``n_negatives`` items drawn from the
    unigram distribution raised to ``ns_exponent``. Frequent items are subsampled each
    epoch (an event is kept with probability ``min(1, sqrt(subsample / f))``, ``f`` its
    item's share of all events, i.e. discarded with ``1 - sqrt(ρ/f)``).

    A user is the mean of the unit-normalised vectors of their history's items (weighted
    by recency when ``recency_half_life`` is set), and items are ranked by their
    (normalised) vectors' inner product with it — the weighted cosine similarity to the
    history — so new users work through ``history=`` with no training.

    Parameters
    ----------
    n_factors : int, default=64
    window : int or None, default=None
        Context positions on each side; None uses the whole set (each event paired with
        ``n_contexts`` random other events of the same user per epoch, since all pairs
        grow with the square of the history length).
    n_contexts : int, default=5
        Context draws per event when ``window=None``.
    n_negatives : int, default=5
    ns_exponent : float, default=0.75
    subsample : float, default=0.0
        ``ρ`` of the subsampling rule; 0 disables it. word2vec's 1e-3–1e-5 suit
        catalogs with a long, very frequent head; on MovieLens-size catalogs, where
        most events fall on items above that share, it removes too much (see
        docs/benchmarks.md).
    sampler : {"popularity", "uniform", "in_batch", "hard"}, default="popularity"
        ``popularity`` is word2vec's unigram^ns_exponent.
    recency_half_life : float or None, default=None
        Weights a history's items by ``0.5 ** (age / recency_half_life)``, ``age`` the
        number of events since the item (0 for the latest, in time order, ties in input
        order; a repeated item counts at each of its ages). None: the plain mean of
        the history's distinct items, order ignored. For next-item tasks a short
        half-life helps a lot (see docs/benchmarks.md). Only the user vectors depend on
        it: the item vectors are learned the same way (with ``early_stopping`` the
        validation scores, hence the epoch kept, do depend on it), and changing it after
        ``fit`` takes effect without refitting.
    index : {"exact", "flat", "ivf", "hnsw"}, default="exact"
    {training}

    Attributes
    ----------
    item_factors_ : ndarray of shape (n_items, n_factors)
        Input ("centre") vectors.
    module_ : skrec.nn.factorization.DotProduct
        Centre vectors as its ``user`` table, context vectors as its ``item`` table.

    Notes
    -----
    With ``optimizer="sgd"`` (word2vec's optimizer; any sampler but ``in_batch``, no
    ``clip_grad_norm``) each step is taken in closed form, as for :class:`skrec.MF`: the
    update autograd would make, computed from the batch's rows
    (:func:`skrec.nn.factorization.sgd_step`).

    References
    ----------
    O. Barkan and N. Koenigstein. Item2Vec: Neural Item Embedding for Collaborative
    Filtering. MLSP 2016.
    T. Mikolov, I. Sutskever, K. Chen, G. Corrado and J. Dean. Distributed
    Representations of Words and Phrases and their Compositionality. NIPS 2013.

    Examples
    --------
    >>> from skrec import Item2Vec
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> Item2Vec(n_factors=8, max_iter=2, random_state=0).fit(X).similar_items([0], k=3).shape
    (1, 3)
    """

    loss = "bce"  # skip-gram with negative sampling
    logq_correction = False

    _parameter_constraints = {
        **EVENT_CONSTRAINTS,
        "window": [Interval(Integral, 1, None, closed="left"), None],
        "n_contexts": [Interval(Integral, 1, None, closed="left")],
        "ns_exponent": [Interval(Real, None, None, closed="neither")],  # finite
        "subsample": [Interval(Real, 0, None, closed="left")],
        "recency_half_life": [Interval(Real, 0, None, closed="neither"), None],
        "index": [StrOptions(set(INDEX_KINDS))],
    }
    _parameter_constraints.pop("logq_correction")

    def __init__(
        self,
        n_factors: int = 64,
        window: int | None = None,
        n_contexts: int = 5,
        n_negatives: int = 5,
        ns_exponent: float = 0.75,
        subsample: float = 0.0,
        sampler: str = "popularity",
        recency_half_life: float | None = None,
        index: str = "exact",
        max_iter: int = 20,
        batch_size: int = 512,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        clip_grad_norm: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        checkpoint_dir=None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
    ):
        self.n_factors = n_factors
        self.window = window
        self.n_contexts = n_contexts
        self.n_negatives = n_negatives
        self.ns_exponent = ns_exponent
        self.subsample = subsample
        self.sampler = sampler
        self.recency_half_life = recency_half_life
        self.index = index
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _build_module(self, data):
        std = 0.5 / self.n_factors
        return DotProduct(data.n_items, data.n_items, self.n_factors, bias=False, std=std)

    def _sampler_power(self) -> float:
        return self.ns_exponent

    def _positives(self, data):
        return None  # word2vec does not reject negatives that co-occur

    def _prepare(self, data):
        if not (np.diff(data.indptr) >= 2).any():
            raise ValueError(
                "Item2Vec learns from items that co-occur in a user's history; every user in "
                f"X has one event{self._held_out_note(data)}. Pass longer histories."
            )
        return super()._prepare(data)

    def _epoch_pairs(self, prepared: Pairs, generator):
        events = prepared.events
        user, item = torch.from_numpy(events.user), torch.from_numpy(events.item)
        if self.subsample > 0:
            share = torch.from_numpy(events.item_counts() / max(len(events), 1))[item]
            keep_probability = torch.sqrt(self.subsample / share).clamp_max(1.0)
            keep = (
                torch.rand(len(item), generator=generator, dtype=torch.float64) < keep_probability
            )
            user, item = user[keep], item[keep]
        if self.window is not None:
            centres, contexts = [], []
            for offset in range(1, self.window + 1):  # a loop over offsets, not samples
                same = user[offset:] == user[:-offset]
                centres += [item[:-offset][same], item[offset:][same]]
                contexts += [item[offset:][same], item[:-offset][same]]
            return torch.cat(centres), torch.cat(contexts), None
        # The whole set: n_contexts partners per event, drawn among the user's others.
        sizes = torch.bincount(user, minlength=events.n_users)
        starts = torch.cumsum(sizes, 0) - sizes
        eligible = sizes[user] >= 2
        positions = torch.arange(len(user))[eligible].repeat_interleave(self.n_contexts)
        owner = user[positions]
        draw = torch.rand(len(positions), generator=generator, dtype=torch.float64)
        other = (draw * (sizes[owner] - 1)).long()  # 0..size-2, skipping the event itself
        own = positions - starts[owner]
        other = other + (other >= own).long()
        return item[positions], item[starts[owner] + other], None

    def _fit(self, data, y):
        super()._fit(data, y)
        self.item_factors_ = self.module_.user.weight.detach().cpu().numpy()

    def _user_item_vectors(self, context):
        # The current centre vectors (also mid-fit, for the validation score), unit length.
        centres = self.module_.user.weight.detach().cpu().numpy()
        items = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
        events = context.events
        if self.recency_half_life is None:  # the set of items: a repeated one counts once
            history = events.csr()
            history.data[:] = 1.0
        else:  # every event, by age: a repeated item counts at each of its ages
            history = sp.csr_matrix(
                (events.recency_weights(self.recency_half_life), events.item, events.indptr),
                shape=(events.n_users, events.n_items),
            )
        totals = np.asarray(history.sum(1)).ravel()[:, None]
        return np.asarray(history @ items / np.maximum(totals, 1e-300), dtype=np.float32), items

    def _item_vectors(self):
        return self.item_factors_
