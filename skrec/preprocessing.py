"""Transformers on interaction tables, for use in a Pipeline before a recommender.

Filters that drop rows (``KCoreFilter``, ``Deduplicate``) act at fit time only: in
``transform`` (called on test folds by scorers) they pass the table through unchanged,
so held-out events are never silently dropped. ``Binarize`` filters at both.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .utils.validation import _check_weights, as_interaction_frame, check_interactions, check_params

__all__ = ["Binarize", "Deduplicate", "KCoreFilter"]


class _TableTransformer(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self._fit_table(X)
        return self

    def _fit_table(self, X) -> dict:
        """``fit``'s checks of ``X`` and the parameters; returns ``check_interactions``'s
        columns (the frame, parsed timestamps), so a filter need not check ``X`` again.
        A ``weight`` column may hold ratings of either sign here (Binarize's input)."""
        checked = check_interactions(X, signed_weights=True)
        check_params(self)
        self.n_features_in_ = checked["frame"].shape[1]
        return checked

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.string = True
        return tags


class Binarize(_TableTransformer):
    """Turn ratings into implicit feedback: keep events whose rating is >= ``threshold``.

    The rating is the ``column`` column (default ``weight``). Kept events get weight 1
    unless ``keep_weight``.

    Parameters
    ----------
    threshold : float, default=4.0
    column : str, default="weight"
    keep_weight : bool, default=False
    """

    _parameter_constraints = {
        "threshold": [Interval(Real, None, None, closed="neither")],  # finite
        "column": [str],
        "keep_weight": ["boolean"],
    }

    def __init__(self, threshold: float = 4.0, column: str = "weight", keep_weight: bool = False):
        self.threshold = threshold
        self.column = column
        self.keep_weight = keep_weight

    def fit(self, X, y=None):
        self._ratings(self._fit_table(X)["frame"])
        return self

    def _ratings(self, frame) -> np.ndarray:
        if self.column not in frame.columns:
            raise ValueError(
                f"Binarize needs a '{self.column}' column of ratings; X has {list(frame.columns)}."
            )
        return _check_weights(frame[self.column], "X", self.column, signed=True)

    def transform(self, X):
        check_params(self)
        frame = as_interaction_frame(X)
        kept = frame[self._ratings(frame) >= self.threshold]
        if not self.keep_weight and self.column == "weight":
            kept = kept.assign(weight=1.0)
        return kept.reset_index(drop=True)


class KCoreFilter(_TableTransformer):
    """Keep the k-core: users with >= ``min_user_events`` and items with >=
    ``min_item_events`` events, repeated until both hold.

    Filters at fit time only (``fit_transform``); ``transform`` passes tables through.

    Parameters
    ----------
    min_user_events : int, default=5
    min_item_events : int, default=5
    max_iter : int, default=100
    """

    _parameter_constraints = {
        name: [Interval(Integral, 0, None, closed="left")]
        for name in ("min_user_events", "min_item_events", "max_iter")
    }

    def __init__(self, min_user_events: int = 5, min_item_events: int = 5, max_iter: int = 100):
        self.min_user_events = min_user_events
        self.min_item_events = min_item_events
        self.max_iter = max_iter

    def fit_transform(self, X, y=None):
        frame = self._fit_table(X)["frame"]
        keep = np.ones(len(frame), dtype=bool)
        users = pd.factorize(frame["user_id"])[0]
        items = pd.factorize(frame["item_id"])[0]
        for done in range(self.max_iter + 1):  # pass max_iter + 1 only checks for a change
            user_ok = np.bincount(users[keep], minlength=users.max() + 1) >= self.min_user_events
            item_ok = np.bincount(items[keep], minlength=items.max() + 1) >= self.min_item_events
            new_keep = keep & user_ok[users] & item_ok[items]
            if (new_keep == keep).all():
                break
            if done == self.max_iter:
                warnings.warn(
                    f"KCoreFilter did not reach the k-core in max_iter={self.max_iter} passes: "
                    "some users or items are still under their thresholds. Raise max_iter.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
                break
            keep = new_keep
        if not keep.any():
            raise ValueError(
                f"KCoreFilter(min_user_events={self.min_user_events}, min_item_events="
                f"{self.min_item_events}) removed every event; lower the thresholds."
            )
        return frame[keep].reset_index(drop=True)

    def transform(self, X):
        return as_interaction_frame(X)  # the same kind of table as fit_transform's


class Deduplicate(_TableTransformer):
    """Drop repeated (user, item) events, keeping the ``"first"`` or ``"last"`` in time.

    Filters at fit time only; ``transform`` passes tables through.
    """

    _parameter_constraints = {"keep": [StrOptions({"first", "last"})]}

    def __init__(self, keep: str = "last"):
        self.keep = keep

    def fit_transform(self, X, y=None):
        checked = self._fit_table(X)
        frame, times = checked["frame"], checked["timestamp"]  # dates parsed, not their text
        # Positions, not index labels: the rows keep their input order (which is the time
        # order when there is no timestamp), whatever the index holds.
        order = np.arange(len(frame)) if times is None else np.argsort(times, kind="stable")
        pairs = frame[["user_id", "item_id"]].iloc[order]
        keep = np.ones(len(frame), dtype=bool)
        keep[order[pairs.duplicated(keep=self.keep).to_numpy()]] = False
        return frame[keep].reset_index(drop=True)

    def transform(self, X):
        return as_interaction_frame(X)  # the same kind of table as fit_transform's
