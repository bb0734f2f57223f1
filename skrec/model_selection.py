"""Splitters and ranking scorers that plug into scikit-learn's model selection.

The splitters follow scikit-learn's splitter interface (``split`` yields row positions,
``get_n_splits``), so ``GridSearchCV(cv=LeaveLastOut())`` and ``cross_validate`` work
unchanged. :func:`ranking_scorer` makes a scorer for their ``scoring=``.
"""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.model_selection import BaseCrossValidator
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import metrics as _metrics
from .data.interactions import binary, encode_ids, lookup
from .utils.validation import check_interactions, check_k, check_positive_int

__all__ = [
    "LeaveLastOut",
    "TimeSplit",
    "UserHoldout",
    "evaluate",
    "evaluate_sessions",
    "rank_against_candidates",
    "ranking_scorer",
]


def _user_order(X, require_timestamp=False):
    """User codes, and row positions sorted by (user, time, input order)."""
    # (a weight column may hold signed ratings: a Pipeline's Binarize reads them)
    checked = check_interactions(X, require_timestamp=require_timestamp, signed_weights=True)
    _, users = encode_ids(checked["user"])
    rows = np.arange(len(users))
    keys = (rows, users) if checked["timestamp"] is None else (rows, checked["timestamp"], users)
    return checked, users, np.lexsort(keys)


class _Splitter(BaseCrossValidator):
    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover
        raise NotImplementedError

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({params})"


class LeaveLastOut(_Splitter):
    """Hold out each user's last ``n`` events.

    Events are ordered per user by ``timestamp`` with a stable sort, so equal
    timestamps keep their input order; without a ``timestamp`` column the input order
    is the time order. Users with ``n`` events or fewer keep all of them in train.

    Parameters
    ----------
    n : int, default=1
        Events per user in the test fold.
    """

    def __init__(self, n: int = 1):
        self.n = n

    def split(self, X, y=None, groups=None):
        if not isinstance(self.n, Integral) or self.n < 1:
            raise ValueError(f"LeaveLastOut(n=...) must be a positive integer; got {self.n!r}.")
        _, users, order = _user_order(X)
        sorted_users = users[order]
        ends = np.r_[np.flatnonzero(sorted_users[1:] != sorted_users[:-1]), len(order) - 1]
        sizes = np.diff(np.r_[-1, ends])
        from_end = np.repeat(ends, sizes) - np.arange(len(order))
        test = (from_end < self.n) & (np.repeat(sizes, sizes) > self.n)
        yield np.sort(order[~test]), np.sort(order[test])

    def get_n_splits(self, X=None, y=None, groups=None):
        return 1


class TimeSplit(_Splitter):
    """One global time cut-off: events at or after it are the test fold.

    Parameters
    ----------
    cutoff : timestamp value, optional
        The cut-off; by default the ``1 - test_size`` quantile of the timestamps.
    test_size : float, default=0.2
    filter_cold_users : bool, default=True
        Drop test events of users with no event before the cut-off.
    """

    def __init__(self, cutoff=None, test_size: float = 0.2, filter_cold_users: bool = True):
        self.cutoff = cutoff
        self.test_size = test_size
        self.filter_cold_users = filter_cold_users

    def split(self, X, y=None, groups=None):
        checked, users, _ = _user_order(X, require_timestamp=True)
        times = checked["timestamp"]
        if self.cutoff is None:
            if not isinstance(self.test_size, Real) or not 0 < self.test_size < 1:
                raise ValueError(f"test_size must be in (0, 1); got {self.test_size!r}.")
            cutoff = np.quantile(times, 1 - self.test_size, method="higher")
        else:
            given = pd.Series([self.cutoff])
            data_kind, cutoff_kind = _time_kind(checked["frame"]["timestamp"]), _time_kind(given)
            if data_kind != cutoff_kind:
                raise ValueError(
                    f"cutoff={self.cutoff!r} is a {cutoff_kind} but the timestamps of X are "
                    f"{data_kind}s; the two cannot be compared. Pass a cutoff of the same kind, "
                    + (
                        "e.g. pd.Timestamp('2023-01-01').timestamp() for times in seconds."
                        if data_kind == "number"
                        else "e.g. pd.Timestamp('2023-01-01') or '2023-01-01'."
                    )
                )
            cutoff = check_interactions(
                pd.DataFrame({"user_id": [0], "item_id": [0], "timestamp": given}),
                name="cutoff",
            )["timestamp"][0]
        test = times >= cutoff
        if self.filter_cold_users:
            test &= np.isin(users, users[~test])
        train = times < cutoff
        yield np.flatnonzero(train), np.flatnonzero(test)

    def get_n_splits(self, X=None, y=None, groups=None):
        return 1


def _time_kind(values: pd.Series) -> str:
    """The kind of times in ``values``: date (datetimes, or text that parses only as
    dates) or number."""
    if values.dtype.kind == "M" or isinstance(values.dtype, pd.DatetimeTZDtype):
        return "date"
    if values.dtype.kind in "iufb":
        return "number"
    try:
        pd.to_numeric(values, errors="raise")
    except (TypeError, ValueError):
        return "date"
    return "number"


class UserHoldout(_Splitter):
    """Hold out a random share of each user's events.

    Each user with at least two events puts ``round(test_size * n_events)`` of them
    (at least 1, at most n_events - 1) in the test fold.

    Parameters
    ----------
    test_size : float, default=0.2
    n_splits : int, default=1
        Independent random repetitions.
    random_state : int, RandomState or None
    """

    def __init__(self, test_size: float = 0.2, n_splits: int = 1, random_state=None):
        self.test_size = test_size
        self.n_splits = n_splits
        self.random_state = random_state

    def split(self, X, y=None, groups=None):
        if not isinstance(self.test_size, Real) or not 0 < self.test_size < 1:
            raise ValueError(f"test_size must be in (0, 1); got {self.test_size!r}.")
        _, users, _ = _user_order(X)
        rng = check_random_state(self.random_state)
        sizes = np.bincount(users)
        n_test = np.clip(np.round(self.test_size * sizes), 1, np.maximum(sizes - 1, 0))
        for _ in range(self.get_n_splits()):
            order = np.lexsort((rng.random_sample(len(users)), users))
            starts = np.r_[0, np.cumsum(sizes)[:-1]]
            position = np.empty(len(users), dtype=np.int64)
            position[order] = np.arange(len(users)) - np.repeat(starts, sizes)
            test = position < n_test[users]
            yield np.flatnonzero(~test), np.flatnonzero(test)

    def get_n_splits(self, X=None, y=None, groups=None):
        if not isinstance(self.n_splits, Integral) or self.n_splits < 1:
            raise ValueError(f"n_splits must be a positive integer; got {self.n_splits!r}.")
        return int(self.n_splits)


# ------------------------------------------------------------------ evaluation
_METRIC_ALIASES = {"hit_rate": "hr", "hitrate": "hr"}


def _metric_name(metric: str) -> str:
    name = _METRIC_ALIASES.get(metric, metric)
    if name not in _metrics.FROM_HITS:
        raise ValueError(
            f"Unknown ranking metric {metric!r}; choose from {sorted(_metrics.FROM_HITS)}."
        )
    return name


def _split_pipeline(estimator, X):
    """The skrec model at the end of ``estimator`` and ``X`` passed through the rest."""
    if isinstance(estimator, Pipeline):
        X = estimator[:-1].transform(X) if len(estimator) > 1 else X
        estimator = estimator[-1]
    if not hasattr(estimator, "recommend"):
        raise TypeError(
            f"{type(estimator).__name__} has no recommend(); ranking scorers need a skrec "
            "estimator or a Pipeline that ends in one."
        )
    return estimator, X


#: Users ranked at once by :func:`evaluate`.
EVALUATE_BLOCK = 4096


class _Grouped:
    """The test events of ``X`` grouped by user (order of first appearance), without a
    Python object per user until a block of users is asked for."""

    def __init__(self, X):
        checked = check_interactions(X, name="X_test", signed_weights=True)
        codes, users = pd.factorize(checked["user"])
        order = np.argsort(codes, kind="stable")
        self.users = np.asarray(users)
        self.items = checked["item"][order]
        self.bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(users)))]

    def block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """The relevant items of users ``start:stop`` back to back, and their counts."""
        bounds = self.bounds[start : stop + 1]
        return self.items[bounds[0] : bounds[-1]], np.diff(bounds)

    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)


def _lists(model, users, served, width, k, **kwargs) -> np.ndarray:
    """Top-``width`` lists of the ``served`` users (a mask over ``users``) in a
    (len(users), k) array; the other rows and the slots past ``width`` hold None."""
    if served.all() and width == k:
        return model.recommend(users, k=k, **kwargs)  # ids keep their dtype
    recs = np.full((len(users), k), None, dtype=object)
    if served.any():
        recs[served, :width] = model.recommend(users[served], k=width, **kwargs)
    return recs


def _top_k(names, items, counts, recs, k) -> dict:
    """Per-user values of the named metrics, from one hit matrix.

    ``items`` holds every row's relevant items back to back, ``counts`` how many are
    each row's.
    """
    hits, n_rel = _metrics._hit_matrix(items, counts, recs, k)
    return {
        name: _metrics._finish(_metrics.FROM_HITS[name](hits, n_rel, k), n_rel, per_user=True)
        for name in names
    }


def rank_against_candidates(model, users, positives, negatives) -> np.ndarray:
    """0-based rank of each positive among its negatives (number scored strictly higher).

    ``users``, ``positives``: raw ids of shape (n,); ``negatives``: raw ids (n, m).
    Scores come from ``model.predict``; unknown users or items score NaN and rank last
    (a positive scored NaN ranks behind all ``m`` negatives).
    """
    negatives, positives, users = (_id_array(x) for x in (negatives, positives, users))
    if positives.dtype != negatives.dtype:  # (numpy would turn ints into text beside it)
        positives, negatives = positives.astype(object), negatives.astype(object)
    n, m = negatives.shape
    pairs = pd.DataFrame(
        {
            "user_id": np.repeat(users, m + 1),
            "item_id": np.c_[positives[:, None], negatives].ravel(),
        }
    )
    scores = model.predict(pairs).reshape(n, m + 1)
    unscored = np.isnan(scores[:, 0])
    scores = np.nan_to_num(scores, nan=-np.inf)
    ranks = (scores[:, 1:] > scores[:, :1]).sum(1)
    ranks[unscored] = m
    return ranks


def _id_array(ids) -> np.ndarray:
    """Ids as an array; a list mixing ints and strings stays objects (numpy would make
    every id a string, and the model would know none of them)."""
    array = np.asarray(ids)
    if array.dtype.kind == "U" and not isinstance(ids, np.ndarray):
        array = np.asarray(ids, dtype=object)
    return array


def _sample_negatives(seen, user_idx, positive_idx, n_negatives, rng, user_ids):
    """Uniform item indices per row, distinct, none of the row user's items in ``seen``
    (a user x item matrix: every stored entry counts) nor the positive (the sampled
    protocol's list of negatives, drawn without replacement)."""
    n_items = seen.shape[1]
    negatives = rng.randint(n_items, size=(len(user_idx), n_negatives))

    def rejected():
        rows = np.repeat(user_idx, n_negatives)
        bad = np.asarray(seen[rows, negatives.ravel()]).ravel().reshape(negatives.shape) != 0
        bad |= negatives == positive_idx[:, None]
        order = np.argsort(negatives, axis=1, kind="stable")
        ordered = np.take_along_axis(negatives, order, axis=1)
        repeat = np.zeros_like(bad)  # every occurrence of an item after its first
        np.put_along_axis(repeat, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
        return bad | repeat

    for _ in range(100):
        bad = rejected()
        if not bad.any():
            return negatives
        negatives[bad] = rng.randint(n_items, size=int(bad.sum()))
    for row in np.flatnonzero(rejected().any(1)):  # rows that rejection did not settle
        allowed = np.setdiff1d(
            np.arange(n_items), np.r_[seen[user_idx[row]].indices, positive_idx[row]]
        )
        if len(allowed) < n_negatives:
            user = user_ids[user_idx[row]]
            user = user.item() if isinstance(user, np.generic) else user
            raise ValueError(
                f"User {user!r} has only {len(allowed)} items left "
                f"to sample {n_negatives} negatives from; lower n_negatives."
            )
        negatives[row] = rng.choice(allowed, n_negatives, replace=False)
    return negatives


def evaluate(
    estimator,
    X,
    *,
    metrics=("ndcg", "hr"),
    k: int = 10,
    protocol: str = "full",
    n_negatives: int = 100,
    random_state=None,
    per_user: bool = False,
    timings: dict | None = None,
) -> dict:
    """Ranking metrics of a fitted model against the events of ``X``.

    ``protocol="full"`` ranks the whole catalog with seen items excluded (the honest
    default). ``protocol="sampled"`` ranks each held-out item among ``n_negatives``
    uniformly sampled items the user has not seen, only to compare with papers that did
    so. Users of ``X`` unknown to the model count as misses.

    Returns a dict ``{"ndcg@10": value, ...}``; with ``per_user`` each value is an array
    over the users of ``X`` (order of first appearance). ``timings``, when given, gets
    ``recommend_seconds``: the time spent in the model's ``recommend`` (``predict`` for
    the sampled protocol), the metrics' own time excluded.
    """
    check_k(k)  # here too: with no servable user, recommend never checks it
    model, X = _split_pipeline(estimator, X)
    check_is_fitted(model, "item_ids_")
    names = [_metric_name(m) for m in metrics]
    if protocol == "sampled":
        check_positive_int(n_negatives, "n_negatives")
    relevant = _Grouped(X)
    users = relevant.users
    known = lookup(model._user_index, users) >= 0
    out = {}
    ranking = 0.0  # seconds in the model's own calls (the metrics not counted)
    if protocol == "full":
        # Users are ranked and scored a block at a time: memory does not grow with them.
        # A catalog smaller than k is ranked whole; the missing slots count as misses.
        width = min(k, len(model.item_ids_))
        parts = {name: [] for name in names}
        for start in range(0, len(users), EVALUATE_BLOCK):
            stop = min(start + EVALUATE_BLOCK, len(users))
            started = time.perf_counter()
            recs = _lists(model, users[start:stop], known[start:stop], width, k)
            ranking += time.perf_counter() - started
            for name, values in _top_k(names, *relevant.block(start, stop), recs, k).items():
                parts[name].append(values)
        for name in names:
            out[f"{name}@{k}"] = np.concatenate(parts[name]) if parts[name] else np.zeros(0)
    elif protocol == "sampled":
        rng = check_random_state(random_state)
        row = np.repeat(np.arange(len(users)), relevant.sizes())
        items = relevant.items
        item_idx = lookup(model._item_index, items)
        ok = known[row] & (item_idx >= 0)
        ranks = np.full(len(row), np.iinfo(np.int64).max)
        if ok.any():
            user_idx = lookup(model._user_index, users[row[ok]])
            # negatives are none of the user's items: training (whatever their weight)
            # nor test (a user's other held-out items are no negatives either)
            seen = binary(model._seen)
            tested = sp.csr_matrix(
                (np.ones(len(user_idx)), (user_idx, item_idx[ok])), shape=seen.shape
            )
            negatives = _sample_negatives(
                seen + tested, user_idx, item_idx[ok], n_negatives, rng, model.user_ids_
            )
            started = time.perf_counter()
            ranks[ok] = rank_against_candidates(
                model, users[row[ok]], items[ok], model.item_ids_[negatives]
            )
            ranking += time.perf_counter() - started
        for name in names:
            per_row = _rank_metric(name, ranks, k)
            out[f"{name}@{k}"] = np.bincount(row, per_row) / np.bincount(row)
    else:
        raise ValueError(f"protocol must be 'full' or 'sampled'; got {protocol!r}.")
    if timings is not None:
        timings["recommend_seconds"] = ranking
    if per_user:
        return out
    return {key: float(np.nanmean(value)) for key, value in out.items()}


def evaluate_sessions(
    estimator,
    sessions,
    *,
    metrics=("hr", "mrr"),
    k: int = 20,
    exclude_seen: bool = False,
    per_user: bool = False,
    timings: dict | None = None,
) -> dict:
    """Next-item metrics over every prefix of held-out sessions (session-based protocol).

    ``sessions`` is an interaction table whose ``user_id`` is a session id and whose
    ``timestamp`` orders each session. Each session of n events gives n - 1 cases: its
    first i events, passed as ``history=`` (the sessions are new to the model; nothing is
    refitted), against event i + 1. Seen items stay rankable by default
    (``exclude_seen=False``): in sessions, viewing an item again is common, and the
    session-based literature (GRU4Rec, SR-GNN) ranks all items. Targets the model does
    not know count as misses. Returns ``{"hr@20": value, "mrr@20": value}`` (``hr`` is
    the literature's "P@20"/recall@20 with one target); with ``per_user`` the arrays over
    the cases.
    """
    check_k(k)  # here too: with no servable user, recommend never checks it
    model, sessions = _split_pipeline(estimator, sessions)
    checked = model._check_context_table(sessions, "sessions", require_timestamp=True)
    frame = pd.DataFrame(
        {"session": checked["user"], "item_id": checked["item"], "timestamp": checked["timestamp"]}
    )
    if checked["weight"] is not None:
        frame["weight"] = checked["weight"]
    frame = frame.iloc[np.lexsort((frame.timestamp.to_numpy(), pd.factorize(frame.session)[0]))]
    codes = pd.factorize(frame.session)[0]
    position = frame.groupby(codes).cumcount().to_numpy()
    # case c = (session, i): history = the session's first i events, target = event i
    case_of = np.flatnonzero(position >= 1)  # rows that are targets
    if not len(case_of):
        raise ValueError(
            "sessions has no session of two or more events: each case is a session's prefix "
            "and its next event, so there is nothing to evaluate."
        )
    lengths = position[case_of]  # case c's history: the lengths[c] rows before its target
    targets = frame.item_id.to_numpy()[case_of]
    events = frame[["item_id", "timestamp"] + (["weight"] if "weight" in frame else [])]
    names = [_metric_name(m) for m in metrics]
    width = min(k, len(model.item_ids_))
    blocks, seconds = [], 0.0
    # The prefixes hold sum(lengths) rows, quadratic in the sessions' lengths: they are
    # built and served a block of cases at a time, so long sessions fit in memory.
    for first, stop in _blocks(lengths, _SESSION_BLOCK_ROWS):
        size = lengths[first:stop]
        case = np.repeat(np.arange(first, stop), size)
        offset = np.arange(len(case)) - np.repeat(np.cumsum(size) - size, size)
        rows = case_of[case] - lengths[case] + offset
        history = events.iloc[rows].reset_index(drop=True).assign(user_id=case)
        # a case whose prefix holds no item the model knows cannot be served: a miss
        known_item = lookup(model._item_index, history.item_id.to_numpy()) >= 0
        served = np.bincount(case - first, known_item, minlength=stop - first) > 0
        started = time.perf_counter()
        blocks.append(
            _lists(
                model,
                np.arange(first, stop),
                served,
                width,
                k,
                history=history[served[case - first]],
                exclude_seen=exclude_seen,
            )
        )
        seconds += time.perf_counter() - started
    recs = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    if timings is not None:
        timings["recommend_seconds"] = seconds
    counts = np.ones(len(targets), dtype=np.int64)
    out = {f"{n}@{k}": v for n, v in _top_k(names, targets, counts, recs, k).items()}
    if per_user:
        return out
    return {key: float(np.mean(value)) for key, value in out.items()}


#: At most this many prefix rows (one per history event of a case) per recommend call.
_SESSION_BLOCK_ROWS = 1 << 21


def _blocks(sizes: np.ndarray, budget: int):
    """``(first, stop)`` ranges of consecutive items whose ``sizes`` add up to at most
    ``budget`` (one item alone may exceed it)."""
    ends = np.cumsum(sizes)
    first = 0
    while first < len(sizes):
        before = ends[first - 1] if first else 0
        stop = max(first + 1, int(np.searchsorted(ends, before + budget, side="right")))
        yield first, stop
        first = stop


def _rank_metric(name, ranks, k):
    """Metric of one relevant item at 0-based ``ranks`` (one relevant item per case)."""
    inside = ranks < k
    if name == "ndcg":
        return np.where(inside, 1.0 / np.log2(np.minimum(ranks, k) + 2.0), 0.0)
    if name in ("hr", "recall"):
        return inside.astype(float)
    if name == "precision":
        return inside / k
    return np.where(inside, 1.0 / (np.minimum(ranks, k) + 1.0), 0.0)  # map, mrr


class _RankingScorer:
    def __init__(self, metric, k, protocol, n_negatives, random_state):
        self.metric = _metric_name(metric)
        self.k = k
        self.protocol = protocol
        self.n_negatives = n_negatives
        self.random_state = random_state

    def __call__(self, estimator, X, y=None):
        return evaluate(
            estimator,
            X,
            metrics=(self.metric,),
            k=self.k,
            protocol=self.protocol,
            n_negatives=self.n_negatives,
            random_state=self.random_state,
        )[f"{self.metric}@{self.k}"]

    def __repr__(self):
        return (
            f"ranking_scorer(metric={self.metric!r}, k={self.k}, protocol={self.protocol!r}"
            f", n_negatives={self.n_negatives})"
        )


def ranking_scorer(
    metric: str = "ndcg",
    k: int = 10,
    protocol: str = "full",
    n_negatives: int = 100,
    random_state=0,
):
    """A scikit-learn scorer ``scorer(estimator, X_test, y=None) -> float``.

    Parameters
    ----------
    metric : {"ndcg", "hr", "recall", "precision", "map", "mrr"}
    k : int, default=10
    protocol : {"full", "sampled"}, default="full"
        ``"full"`` ranks every item (seen ones excluded); ``"sampled"`` ranks the
        held-out item among ``n_negatives`` sampled unseen items.
    n_negatives : int, default=100
    random_state : int or None, default=0
        Seed of the sampled negatives (fixed so every candidate sees the same ones).
    """
    if protocol not in ("full", "sampled"):
        raise ValueError(f"protocol must be 'full' or 'sampled'; got {protocol!r}.")
    if protocol == "sampled":
        check_positive_int(n_negatives, "n_negatives")
    return _RankingScorer(metric, k, protocol, n_negatives, random_state)
