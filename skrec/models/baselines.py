"""Baselines: most popular items, and random items."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state

from ..base import BaseRecommender, UserContext
from ..utils.validation import StrOptions


class Popular(BaseRecommender):
    """Recommend the most popular items, the same for every user.

    Parameters
    ----------
    by : {"events", "users", "weight"}, default="events"
        Popularity is the number of events, of distinct users, or the summed ``weight``
        of each item. Ties go to the item with the smaller id.

    Attributes
    ----------
    item_popularity_ : ndarray of shape (n_items,)
    user_ids_, item_ids_ : ndarray
        Raw ids in index order.

    Examples
    --------
    >>> from skrec import Popular
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=50, n_items=20, random_state=0)
    >>> Popular().fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _parameter_constraints = {"by": [StrOptions({"events", "users", "weight"})]}

    def __init__(self, by: str = "events"):
        self.by = by

    def _fit(self, data, y):
        if self.by == "events":
            popularity = data.item_counts().astype(np.float64)
        elif self.by == "users":
            popularity = np.diff(self._seen.tocsc().indptr).astype(np.float64)
        else:  # "weight"
            popularity = np.bincount(data.item, data.weight, minlength=data.n_items)
        self.item_popularity_ = popularity

    def _score_users(self, context: UserContext):
        scores = torch.from_numpy(self.item_popularity_).float()
        return scores.repeat(len(context), 1)  # (n, n_items), a fresh tensor


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _hash_uniform(seed: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) values for (seed, user, item) grids (splitmix64)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * _MIX) ^ (
            users.astype(np.uint64)[:, None] * np.uint64(0xBF58476D1CE4E5B9)
        )
        x = x + items.astype(np.uint64)[None, :] * _MIX
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class Random(BaseRecommender):
    """Recommend random unseen items: the floor every model must clear.

    Scores are a fixed pseudo-random function of (``random_state``, user, item), so
    ``predict`` and ``recommend`` agree and repeated calls give the same answer. A user
    served from ``history=`` is keyed by the items of that history, so the same history
    gets the same list wherever it sits in the request.

    Parameters
    ----------
    random_state : int, RandomState or None
    """

    _parameter_constraints = {"random_state": ["random_state"]}

    def __init__(self, random_state=None):
        self.random_state = random_state

    def _fit(self, data, y):
        self.seed_ = int(check_random_state(self.random_state).randint(2**31 - 1))

    def _score_users(self, context: UserContext):
        trained = (context.user_idx >= 0) & ~context.from_history
        keys = np.where(trained, context.user_idx.astype(np.uint64), _history_keys(context.events))
        scores = _hash_uniform(self.seed_, keys, np.arange(self._train.n_items))
        return torch.from_numpy(scores).float()


def _history_keys(events) -> np.ndarray:
    """A key per user of ``events`` from their items, in any order (top bit set, so never
    a training index): a sum of the items' splitmix hashes, wrapping around."""
    hashed = (_hash_uniform(0, events.item, np.zeros(1, dtype=np.int64))[:, 0] * 2.0**53).astype(
        np.uint64
    )
    keys = np.zeros(events.n_users, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.add.at(keys, events.user, hashed)
    return keys | np.uint64(1 << 63)
