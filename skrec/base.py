"""The estimator contract every skrec model keeps.

A model subclasses :class:`BaseRecommender` and writes ``_fit`` plus ONE way to score:

- ``_user_item_vectors(context) -> (U, I)`` for inner-product models, or
- ``_score_users(context) -> (n_users, n_items)`` for everything else.

``fit``, ``predict``, ``recommend``, ``score`` and ``similar_items`` are written once,
here, over :mod:`skrec.retrieval`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .data.interactions import Interactions, encode_ids, lookup
from .retrieval import INDEX_KINDS as ANN_KINDS
from .retrieval import ItemIndex, chunk_rows, restrict_columns, topk, vector_scorer
from .utils.validation import check_hashable, check_interactions, check_k, check_params

#: Top-k retrieval for embedding models: exact, or a faiss index over the item vectors.
INDEX_KINDS = ("exact", *ANN_KINDS)
#: Known users ``recommend`` serves at once (their events, vectors and top-k together).
RECOMMEND_BLOCK = 1024


@dataclass(frozen=True, eq=False)
class UserContext:
    """The users a model is asked to score, and the events it may condition on.

    Attributes
    ----------
    user_idx : int64 ndarray (n,)
        Training index of each user; -1 for users unknown to the model.
    from_history : bool ndarray (n,)
        True where the events come from ``history=`` rather than the training data;
        a model should then represent the user from ``events`` alone.
    events : Interactions
        The events of each user, with ``events.user`` the row in this context.
    """

    user_idx: np.ndarray
    from_history: np.ndarray
    events: Interactions

    def __len__(self) -> int:
        return len(self.user_idx)

    def rows(self, start: int, stop: int) -> UserContext:
        rows = np.arange(start, stop)
        return UserContext(
            self.user_idx[rows], self.from_history[rows], self.events.take_users(rows)
        )


def _overrides(obj, name: str) -> bool:
    return getattr(type(obj), name) is not getattr(BaseRecommender, name)


class BaseRecommender(BaseEstimator):
    """Base class of skrec recommenders (not to be used directly).

    Subclasses store hyper-parameters in ``__init__`` and implement ``_fit`` and one of
    ``_user_item_vectors`` / ``_score_users``.
    """

    #: Sequential models need each user's events in time order.
    _requires_timestamp = False
    #: Hyper-parameter constraints, checked at fit (scikit-learn's declarative style).
    _parameter_constraints: dict = {}

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit the model on an interaction table.

        Parameters
        ----------
        X : DataFrame or 2-D array
            One row per event with ``user_id`` and ``item_id`` columns (optionally
            ``timestamp`` and ``weight``), or an array of (user_id, item_id[, timestamp]).
        y : array-like of shape (n_events,), optional
            Targets for models that use them; ranking models ignore it.

        Returns
        -------
        self
        """
        check_params(self)  # declarative _parameter_constraints, scikit-learn's checker
        checked = check_interactions(X, y, require_timestamp=self._requires_timestamp)
        user_ids, user_codes = encode_ids(checked["user"], "Column 'user_id' of X")
        item_ids, item_codes = encode_ids(checked["item"], "Column 'item_id' of X")
        for what, ids in (("users", user_ids), ("items", item_ids)):
            if len(ids) < 2:
                raise ValueError(
                    f"X has {len(ids)} distinct {what}; a recommender needs at least 2 users and "
                    "2 items to learn anything. Fit on more data."
                )
        data = Interactions.build(
            user_codes,
            item_codes,
            n_users=len(user_ids),
            n_items=len(item_ids),
            weight=checked["weight"],
            timestamp=checked["timestamp"],
            target=checked["y"],
        )
        previous = dict(self.__dict__)
        try:
            for name in [k for k in self.__dict__ if k.endswith("_") and not k.startswith("__")]:
                del self.__dict__[name]
            self.user_ids_ = user_ids
            self.item_ids_ = item_ids
            self.n_features_in_ = checked["frame"].shape[1]
            self._user_index = pd.Index(user_ids)
            self._item_index = pd.Index(item_ids)
            self._train = data
            self._seen = data.csr()
            self._fit(data, data.target)
            self._build_ann_index()
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise
        return self

    #: What ``fit`` sets before ``_fit``: the id encoding and the encoded training data.
    _ENCODING = (
        "user_ids_",
        "item_ids_",
        "n_features_in_",
        "_user_index",
        "_item_index",
        "_train",
        "_seen",
    )

    def _sub_model(self, **params):
        """A clone of this model with ``params`` set (and checked), sharing this fit's
        id encoding and encoded data, ready for its own ``_fit`` — for models built from
        other fitted models (NeuMF's pre-trained parts)."""
        sub = clone(self).set_params(**params)
        check_params(sub)
        for name in self._ENCODING:
            setattr(sub, name, getattr(self, name))
        return sub

    def _fit(self, data: Interactions, y: np.ndarray | None) -> None:
        """Learn from ``data``; ``self._seen`` already holds its user-item CSR matrix.

        ``y`` is the target given to fit in the order of ``data``'s events (or None).
        """
        raise NotImplementedError

    # ----------------------------------------------------------- scoring hooks
    def _user_item_vectors(self, context: UserContext):
        """Embedding models: ``(U (n, d), I (n_items, d))`` so that scores are U @ I.T."""
        raise NotImplementedError

    def _score_users(self, context: UserContext):
        """Other models: scores of every item for each user, shape (n, n_items).

        Return a new array or tensor, never a view of the model's state: retrieval masks
        it in place.
        """
        raise NotImplementedError

    def _score_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Scores of (user, item) index pairs of known users, from the hooks above."""
        users, inverse = np.unique(user_idx, return_inverse=True)
        context = self._training_context(users)
        if _overrides(self, "_user_item_vectors"):
            U, I = (torch.as_tensor(v) for v in self._user_item_vectors(context))
            u, i = torch.from_numpy(inverse).to(U.device), torch.from_numpy(item_idx).to(I.device)
            return (U[u].float() * I[i].float()).sum(1).cpu().numpy().astype(np.float64)
        out = np.empty(len(user_idx), dtype=np.float64)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(users) + 1))
        step = chunk_rows(self._train.n_items)
        for start in range(0, len(users), step):
            stop = min(start + step, len(users))
            scores = torch.as_tensor(self._score_users(context.rows(start, stop)))
            pick = order[bounds[start] : bounds[stop]]
            rows = torch.from_numpy(inverse[pick] - start)
            out[pick] = scores[rows, torch.from_numpy(item_idx[pick])].double().cpu().numpy()
        return out

    def _retrieval_device(self) -> str | torch.device:
        return "cpu"

    # ------------------------------------------------- approximate retrieval
    def _build_ann_index(self) -> None:
        """Embedding models with ``index`` other than "exact": a faiss index over the
        item vectors that ``recommend`` searches (seen items still excluded exactly)."""
        self.__dict__.pop("_ann_index_", None)
        kind = getattr(self, "index", "exact")
        if kind == "exact":
            return
        # The item side of any context; one user, since not every encoder takes zero.
        _, items = self._user_item_vectors(self._training_context(np.zeros(1, dtype=np.int64)))
        items = torch.as_tensor(items).detach().float().cpu().numpy()
        self._ann_index_ = ItemIndex(items, kind, random_state=getattr(self, "random_state", None))

    def set_params(self, **params):
        if "index" not in params or not hasattr(self, "item_ids_"):
            return super().set_params(**params)
        # A fitted model searches with the new index at once: the parameters are checked
        # and the index built now, and a failure leaves the model as it was.
        before = self.get_params(deep=True)
        built = self.__dict__.get("_ann_index_")
        try:  # (an unknown name after ``index`` fails inside set_params: rolled back too)
            super().set_params(**params)
            check_params(self)
            self._build_ann_index()
        except BaseException:
            super().set_params(**{name: before[name] for name in params if name in before})
            self.__dict__.pop("_ann_index_", None)
            if built is not None:
                self._ann_index_ = built
            raise
        return self

    # ------------------------------------------------------------- contexts
    def _training_context(self, user_idx: np.ndarray) -> UserContext:
        return UserContext(
            user_idx, np.zeros(len(user_idx), dtype=bool), self._train.take_users(user_idx)
        )

    def _known_users(self, users: np.ndarray) -> np.ndarray:
        """Training indices of ``users``; an error naming any the model does not know."""
        user_idx = lookup(self._user_index, users, "users")
        unknown = user_idx < 0
        if unknown.any():
            raise ValueError(
                f"{int(unknown.sum())} user(s) were not seen in fit, e.g. "
                f"{users[unknown][:5].tolist()}. Pass their events with history=... to "
                "recommend for them without refitting."
            )
        return user_idx

    def _context(self, users, history) -> UserContext:
        users = _as_1d(users, "users")
        if history is None:
            return self._training_context(self._known_users(users))
        user_idx = lookup(self._user_index, users, "users")

        checked = self._check_context_table(
            history, "history", require_nonempty=False, require_timestamp=self._requires_timestamp
        )
        request_codes, request_users = pd.factorize(users)
        hist_row = lookup(
            pd.Index(np.asarray(request_users, dtype=object)),
            np.asarray(checked["user"], dtype=object),
            "Column 'user_id' of history",
        )
        hist_item = lookup(self._item_index, checked["item"], "Column 'item_id' of history")
        keep = (hist_row >= 0) & (hist_item >= 0)
        has_history = np.zeros(len(request_users), dtype=bool)
        has_history[hist_row[keep]] = True
        from_history = has_history[request_codes]
        unknown = (user_idx < 0) & ~from_history
        if unknown.any():
            raise ValueError(
                f"{int(unknown.sum())} user(s) are neither known from fit nor present in "
                f"history (with items the model knows), e.g. {users[unknown][:5].tolist()}."
            )
        # Each user's history events, in time order (ties keep input order).
        history_events = Interactions.build(
            hist_row[keep],
            hist_item[keep],
            n_users=len(request_users),
            n_items=self._train.n_items,
            weight=None if checked["weight"] is None else checked["weight"][keep],
            timestamp=None if checked["timestamp"] is None else checked["timestamp"][keep],
        ).take_users(request_codes)
        # Users without history keep their training events; the two sets of rows are
        # disjoint, and a stable sort by row keeps each one's order.
        train_rows = np.flatnonzero(~from_history)
        train_events = self._train.take_users(user_idx[train_rows])
        events = Interactions.build(
            np.r_[history_events.user, train_rows[train_events.user]],
            np.r_[history_events.item, train_events.item],
            n_users=len(users),
            n_items=self._train.n_items,
            weight=np.r_[history_events.weight, train_events.weight],
        )
        return UserContext(user_idx, from_history, events)

    def _history_holds_ratings(self) -> bool:
        """Whether ``history``'s ``weight`` column holds explicit ratings (any sign, and
        required) rather than implicit weights."""
        return False

    def _check_context_table(self, table, name: str, **kwargs) -> dict:
        """``check_interactions`` of events given as users' context (``history=``, or
        evaluated sessions): a ratings model needs their ratings, of any sign."""
        ratings = self._history_holds_ratings()
        checked = check_interactions(table, name=name, signed_weights=ratings, **kwargs)
        if ratings and checked["weight"] is None:
            raise ValueError(
                f"{type(self).__name__} learns the users of {name} from their ratings, and "
                f"{name} has no 'weight' column: add the ratings as a 'weight' column."
            )
        return checked

    # ------------------------------------------------------------- public API
    def predict(self, X) -> np.ndarray:
        """Relevance score of each (user_id, item_id) row of ``X``.

        Users or items unknown to the model get NaN.
        """
        check_is_fitted(self, "item_ids_")
        checked = check_interactions(X, require_nonempty=False)
        u = lookup(self._user_index, checked["user"], "Column 'user_id' of X")
        i = lookup(self._item_index, checked["item"], "Column 'item_id' of X")
        out = np.full(len(u), np.nan)
        known = (u >= 0) & (i >= 0)
        if known.any():
            out[known] = self._score_pairs(u[known], i[known])
        return out

    def recommend(
        self,
        users,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items=None,
        history=None,
        return_scores: bool = False,
    ):
        """Top-``k`` items for each user, best first.

        Parameters
        ----------
        users : array-like of raw user ids, shape (n_users,)
        k : int, default=10
        exclude_seen : bool, default=True
            Never return items of the user's context (training events, or ``history``).
        items : array-like of raw item ids, optional
            Allow-list: recommend only among these.
        history : interaction table, optional
            Events used as the context of the users it names, instead of their training
            events: new users and fresh sessions are served without refitting. Items the
            model does not know are ignored; a known user whose history holds none it
            knows keeps their training events (a new one is an error).
        return_scores : bool, default=False

        Returns
        -------
        items : ndarray of shape (n_users, k)
            Raw item ids. If fewer than ``k`` items remain for a user (tiny catalog,
            everything seen), the array has dtype object and the empty slots hold None.
        scores : float32 ndarray of shape (n_users, k), only if ``return_scores``
        """
        check_is_fitted(self, "item_ids_")
        columns = self._candidate_columns(items)
        k = check_k(k, len(columns))
        users = _as_1d(users, "users")
        if history is None:
            # Known users are served a block at a time: memory does not grow with them.
            user_idx = self._known_users(users)
            contexts = (
                (start, self._training_context(user_idx[start : start + RECOMMEND_BLOCK]))
                for start in range(0, len(users), RECOMMEND_BLOCK)
            )
        else:
            contexts = [(0, self._context(users, history))]
        ids = np.empty((len(users), k), dtype=self.item_ids_.dtype)
        scores = np.empty((len(users), k), dtype=np.float32) if return_scores else None
        missing = np.zeros((len(users), k), dtype=bool)
        for start, context in contexts:
            index, block_scores = self._top_items(context, k, columns, exclude_seen)
            rows = slice(start, start + len(context))
            missing[rows] = index < 0
            ids[rows] = self.item_ids_[columns[np.where(index < 0, 0, index)]]
            if scores is not None:
                scores[rows] = block_scores
        if missing.any():
            ids = ids.astype(object)
            ids[missing] = None
        return (ids, scores) if return_scores else ids

    def _candidate_columns(self, items) -> np.ndarray:
        if items is None:
            return np.arange(self._train.n_items)
        items = _as_1d(items, "items")
        if len(items) == 0:
            raise ValueError("items= is empty; pass at least one candidate item, or None for all.")
        columns = lookup(self._item_index, items, "items")
        if (columns < 0).any():
            raise ValueError(
                f"items= has {int((columns < 0).sum())} id(s) unknown to the model, e.g. "
                f"{items[columns < 0][:5].tolist()}. Restrict the allow-list to fitted items "
                "(model.item_ids_)."
            )
        return np.unique(columns)

    def _top_items(self, context: UserContext, k: int, columns=None, exclude_seen=True):
        """Best ``k`` of ``columns`` (item indices; all by default) for each context row.

        Returns positions into ``columns`` (-1 when fewer than ``k`` remain) and scores.
        """
        if len(context) == 0:  # no model hook is ever asked to score zero users
            return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
        all_items = columns is None or len(columns) == self._train.n_items
        exclude = context.events.csr() if exclude_seen else None
        if not all_items:
            exclude = restrict_columns(exclude, columns, self._train.n_items)
        n_columns = self._train.n_items if all_items else len(columns)
        check_nan = True
        if _overrides(self, "_user_item_vectors"):
            U, I = (torch.as_tensor(v) for v in self._user_item_vectors(context))
            ann = self.__dict__.get("_ann_index_")
            if ann is not None and all_items:  # allow-lists are searched exactly
                users = U.detach().float().cpu().numpy()
                return ann.search(users, k, exclude=exclude)
            I = I if all_items else I[torch.from_numpy(columns)]
            # Finite vectors give NaN-free scores: skip the per-chunk NaN pass.
            check_nan = not (torch.isfinite(U).all() and torch.isfinite(I).all())
            score_chunk = vector_scorer(U, I, self._retrieval_device())
        else:

            def score_chunk(start, stop):
                scores = torch.as_tensor(self._score_users(context.rows(start, stop)))
                return scores if all_items else scores[:, torch.from_numpy(columns)]

            # every item is scored before the allow-list is cut: chunks sized by the catalog
            rows = chunk_rows(self._train.n_items)
            return topk(
                score_chunk,
                len(context),
                n_columns,
                k,
                exclude=exclude,
                chunk_elements=rows * n_columns,
            )

        return topk(score_chunk, len(context), n_columns, k, exclude=exclude, check_nan=check_nan)

    def score(self, X, y=None) -> float:
        """NDCG@10 of ``recommend`` against the events of ``X`` (full ranking, seen excluded).

        Users of ``X`` unknown to the model count as misses.
        """
        from .model_selection import evaluate

        return evaluate(self, X, metrics=("ndcg",), k=10)["ndcg@10"]

    # ---------------------------------------------------------- similar items
    def _item_vectors(self):
        """Models with item embeddings: (n_items, d) array for ``similar_items``."""
        raise NotImplementedError

    def _item_similarities(self, item_idx: np.ndarray):
        """Item-item models: similarity of ``item_idx`` to every item, (n, n_items)."""
        raise NotImplementedError

    def _has_similar_items(self) -> bool:
        return _overrides(self, "_item_vectors") or _overrides(self, "_item_similarities")

    @available_if(_has_similar_items)
    def similar_items(self, items, k: int = 10, *, return_scores: bool = False):
        """The ``k`` items most similar to each of ``items`` (itself excluded).

        Embedding models use cosine similarity of item vectors; item-item models their
        learned item-item weights.
        """
        check_is_fitted(self, "item_ids_")
        items = _as_1d(items, "items")
        item_idx = lookup(self._item_index, items, "items")
        if (item_idx < 0).any():
            raise ValueError(
                f"{int((item_idx < 0).sum())} item id(s) unknown to the model, e.g. "
                f"{items[item_idx < 0][:5].tolist()}; similar_items takes fitted items "
                "(model.item_ids_)."
            )
        k = check_k(k, self._train.n_items - 1)
        exclude = _identity_rows(item_idx, self._train.n_items)
        if _overrides(self, "_item_vectors"):
            vectors = torch.as_tensor(self._item_vectors()).float()
            vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
            score_chunk = vector_scorer(
                vectors[torch.from_numpy(item_idx)], vectors, self._retrieval_device()
            )
        else:

            def score_chunk(start, stop):
                return torch.as_tensor(self._item_similarities(item_idx[start:stop]))

        index, scores = topk(score_chunk, len(item_idx), self._train.n_items, k, exclude=exclude)
        ids = self.item_ids_[np.where(index < 0, 0, index)]
        return (ids, scores) if return_scores else ids

    # ---------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags


def _identity_rows(item_idx, n_items):
    import scipy.sparse as sp

    return sp.csr_matrix(
        (np.ones(len(item_idx), np.float32), (np.arange(len(item_idx)), item_idx)),
        shape=(len(item_idx), n_items),
    )


def _as_1d(values, name: str) -> np.ndarray:
    if hasattr(values, "toarray") or isinstance(values, (Mapping, Set, Iterator)):
        raise TypeError(
            f"{name} must be a 1-D array-like of ids (list, ndarray, Series); got "
            f"{type(values).__name__}. Convert it first, e.g. list({name})."
        )
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    if isinstance(values, (list, tuple)):
        array = _sequence_array(values)
    else:
        array = np.asarray(values)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one id per entry); got shape {array.shape}.")
    check_hashable(array, name)
    if array.dtype.kind in "iub":  # integers cannot be missing
        return array
    missing = np.asarray(pd.isna(array))  # elementwise, also for an object array of tuples
    if missing.any():
        raise ValueError(
            f"{name} has {int(missing.sum())} missing id(s) (NaN/None), first at position(s) "
            f"{np.flatnonzero(missing)[:5].tolist()}. Drop them: no user or item has a missing id."
        )
    return array


def _sequence_array(values: list | tuple) -> np.ndarray:
    """A list of ids as an array, without numpy's lossy guesses for anything but plain
    ints or floats: 7 and "7" stay apart, bytes and str are not decoded into each other,
    trailing NULs and ints past int64 stay exact, tuple ids stay whole."""
    if any(isinstance(v, (list, np.ndarray)) for v in values):
        return np.asarray(values, dtype=object)  # nested: 2-D, or unhashable rows
    if all(_is_int64(v) for v in values) or all(isinstance(v, float) for v in values):
        return np.asarray(values)
    return np.fromiter(values, dtype=object, count=len(values))


def _is_int64(value) -> bool:
    return (
        isinstance(value, Integral)
        and not isinstance(value, (bool, np.bool_))
        and -(2**63) <= value < 2**63
    )
