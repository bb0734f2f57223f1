"""Ranking metrics.

Every top-k metric takes ``y_true``, the relevant items of each user (a sequence of
collections, or a 1-D array with one relevant item per user), and ``y_pred``, a 2-D
array of recommended items per user, best first (the output of ``recommend``). All of
them are computed from one hit matrix built by :func:`_hits`.

Users with no relevant item get NaN in the per-user values and are left out of the
mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .utils.validation import check_k

__all__ = [
    "auc",
    "coverage",
    "hit_rate_at_k",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
]


def _relevance(y_true) -> tuple[np.ndarray, np.ndarray]:
    """The relevant items of all users in one flat array, and how many each user has."""
    relevant = [
        list(v) if isinstance(v, (list, tuple, set, frozenset, np.ndarray, pd.Series)) else [v]
        for v in y_true
    ]
    counts = np.fromiter((len(r) for r in relevant), dtype=np.int64, count=len(relevant))
    # A Series keeps tuple ids whole (np.array would make a 2-D array of them).
    return pd.Series([x for r in relevant for x in r], dtype=object).to_numpy(), counts


def _hits(y_true, y_pred, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean hit matrix (n_users, k) and the number of distinct relevant items per user."""
    k = check_k(k)
    rel_items, counts = _relevance(y_true)
    pred = np.asarray(y_pred)
    if pred.ndim != 2:
        raise ValueError(f"y_pred must be 2-D (users x ranked items); got shape {pred.shape}.")
    if len(counts) != len(pred):
        raise ValueError(
            f"y_true has {len(counts)} users but y_pred has {len(pred)} rows; they must align."
        )
    return _hit_matrix(rel_items, counts, pred, k)


def _hit_matrix(rel_items, counts, pred, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_hits` of checked input: ``rel_items`` flat, ``counts`` per row of ``pred``."""
    pred = pred[:, :k]
    n, width = pred.shape
    if np.result_type(rel_items, pred).kind in "iu":  # (int64 with uint64 would be float)
        both = np.r_[rel_items, pred.ravel()]  # integer ids: no Python object per id
    else:
        both = np.r_[rel_items.astype(object), pred.ravel().astype(object)]
    codes, _ = pd.factorize(both, use_na_sentinel=True)
    rel_codes, pred_codes = codes[: len(rel_items)], codes[len(rel_items) :].reshape(n, width)
    if (rel_codes < 0).any():
        users = np.unique(np.repeat(np.arange(n), counts)[rel_codes < 0])
        raise ValueError(
            f"y_true has missing item ids (NaN/None) for {len(users)} user(s), first at "
            f"position(s) {users[:5].tolist()}. Drop them: a missing id can be no one's hit."
        )
    n_codes = codes.max() + 2 if len(codes) else 1
    rel_keys = np.unique(np.repeat(np.arange(n), counts) * n_codes + rel_codes)
    n_relevant = np.bincount(rel_keys // n_codes, minlength=n)
    keys = np.arange(n)[:, None] * n_codes + pred_codes
    hits = np.zeros(keys.shape, dtype=bool)
    if len(rel_keys):  # sorted (np.unique): membership by binary search
        found = rel_keys[np.minimum(np.searchsorted(rel_keys, keys), len(rel_keys) - 1)]
        hits = (found == keys) & (pred_codes >= 0)
    # A repeated item in a ranking counts once, at its first position. Only rows with two
    # or more hits can hold a repeated hit, so only those are sorted.
    rows = np.flatnonzero(hits.sum(1) > 1)
    if len(rows):
        codes_r = pred_codes[rows]
        first = np.ones_like(codes_r, dtype=bool)
        order = np.argsort(codes_r, axis=1, kind="stable")
        sorted_codes = np.take_along_axis(codes_r, order, axis=1)
        repeat = np.c_[np.zeros((len(rows), 1), bool), sorted_codes[:, 1:] == sorted_codes[:, :-1]]
        np.put_along_axis(first, order, ~repeat, axis=1)
        hits[rows] &= first
    if width < k:
        hits = np.c_[hits, np.zeros((n, k - width), bool)]
    return hits, n_relevant


def _finish(values: np.ndarray, n_relevant: np.ndarray, per_user: bool):
    values = np.where(n_relevant > 0, values, np.nan).astype(np.float64)
    if per_user:
        return values
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float("nan")


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def _hit_rate(hits, n_rel, k):
    return hits.any(1)


def _precision(hits, n_rel, k):
    return hits.sum(1) / k


def _recall(hits, n_rel, k):
    return hits.sum(1) / np.maximum(n_rel, 1)


def _ndcg(hits, n_rel, k):
    discounts = _discounts(k)
    ideal = np.r_[0.0, np.cumsum(discounts)][np.minimum(n_rel, k)]
    return hits @ discounts / np.maximum(ideal, 1e-12)


def _map(hits, n_rel, k):
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision * hits).sum(1) / np.maximum(np.minimum(n_rel, k), 1)


def _mrr(hits, n_rel, k):
    return np.where(hits.any(1), 1.0 / (hits.argmax(1) + 1), 0.0)


#: Each top-k metric as a function of :func:`_hits`' output, by its short name.
FROM_HITS = {
    "ndcg": _ndcg,
    "hr": _hit_rate,
    "recall": _recall,
    "precision": _precision,
    "map": _map,
    "mrr": _mrr,
}


def _top_k(metric, y_true, y_pred, k, per_user):
    hits, n_rel = _hits(y_true, y_pred, k)
    return _finish(metric(hits, n_rel, k), n_rel, per_user)


def hit_rate_at_k(y_true, y_pred, k: int = 10, *, per_user: bool = False):
    """Share of users with at least one relevant item in their top ``k``."""
    return _top_k(_hit_rate, y_true, y_pred, k, per_user)


def precision_at_k(y_true, y_pred, k: int = 10, *, per_user: bool = False):
    """Relevant items in the top ``k``, divided by ``k``."""
    return _top_k(_precision, y_true, y_pred, k, per_user)


def recall_at_k(y_true, y_pred, k: int = 10, *, per_user: bool = False):
    """Relevant items in the top ``k``, divided by the number of relevant items."""
    return _top_k(_recall, y_true, y_pred, k, per_user)


def ndcg_at_k(y_true, y_pred, k: int = 10, *, per_user: bool = False):
    """Normalised discounted cumulative gain with binary relevance.

    DCG = sum over hits at 0-based position i of 1 / log2(i + 2); the ideal DCG puts
    min(n_relevant, k) hits first.
    """
    return _top_k(_ndcg, y_true, y_pred, k, per_user)


def map_at_k(y_true, y_pred, k: int = 10, *, per_user: bool = False):
    """Mean average precision: precision at each hit, summed, over min(n_relevant, k)."""
    return _top_k(_map, y_true, y_pred, k, per_user)


def mrr_at_k(y_true, y_pred, k: int = 10, *, per_user: bool = False):
    """Reciprocal rank of the first relevant item in the top ``k`` (0 if none)."""
    return _top_k(_mrr, y_true, y_pred, k, per_user)


def auc(y_true, y_score, *, per_user: bool = False):
    """Area under the ROC curve; ties count one half.

    ``y_true`` and ``y_score`` of shape (n,) give one AUC; of shape (n_users, n_items)
    give one AUC per row (rows with a single class are NaN), averaged unless
    ``per_user``.
    """
    labels = np.asarray(y_true).astype(bool)
    scores = np.asarray(y_score, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim not in (1, 2):
        raise ValueError(
            f"y_true and y_score must have the same 1-D or 2-D shape; got {labels.shape} and "
            f"{scores.shape}."
        )
    two_d = labels.ndim == 2
    labels, scores = np.atleast_2d(labels), np.atleast_2d(scores)
    ranks = rankdata(scores, axis=1)
    n_pos = labels.sum(1)
    n_neg = labels.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        values = ((ranks * labels).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    values = np.where((n_pos > 0) & (n_neg > 0), values, np.nan)
    if not two_d:
        return float(values[0])
    if per_user:
        return values
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float("nan")


def coverage(y_pred, catalog) -> float:
    """Share of the catalog that appears in at least one recommendation list.

    ``catalog`` is the catalog size or the array of its item ids.
    """
    size = int(catalog) if np.ndim(catalog) == 0 else len(np.asarray(catalog))
    if size < 1:
        raise ValueError("catalog must hold at least one item.")
    shown = pd.unique(pd.Series(np.asarray(y_pred, dtype=object).ravel()).dropna())
    return len(shown) / size


def novelty(y_pred, X_train, k: int = 10, *, per_user: bool = False):
    """Mean self-information ``-log2(p(i))`` of the top-``k`` items.

    ``p(i)`` is the share of users in ``X_train`` (an interaction table) who interacted
    with item i; items absent from ``X_train`` count as seen by one user.
    """
    from .utils.validation import check_interactions

    checked = check_interactions(X_train, name="X_train")
    pairs = pd.DataFrame({"u": checked["user"], "i": checked["item"]}).drop_duplicates()
    n_users = pairs["u"].nunique()
    counts = pairs.groupby("i").size()
    pred = np.asarray(y_pred, dtype=object)[:, :k]
    observed = counts.reindex(pred.ravel()).to_numpy(dtype=np.float64).reshape(pred.shape)
    info = -np.log2(np.nan_to_num(observed, nan=1.0) / n_users)
    values = np.nanmean(np.where(pd.isna(pred), np.nan, info), axis=1)
    return values if per_user else float(np.nanmean(values))
