"""Hostile input, every estimator: each case ends in a clean fit or a clear error.

A *clear error* is a ValueError or TypeError raised by a ``raise`` statement in skrec's
own code (or scikit-learn's InvalidParameterError for a hyper-parameter) with a real
message: never one bubbling up from torch, numpy or pandas. Nothing may hang, and a
fitted model whose next ``fit`` fails is unchanged (same fitted attributes, same
recommendations); a clean fit leaves a model that serves. The cases, over every
estimator of ``skrec.ESTIMATORS``:

- interaction tables to ``fit``: named ones (``TABLE_CASES``: empty, NaN/None ids, mixed
  and huge ids, bad weights and timestamps, dtypes, containers, ``y``) and generated ones
  (``tables()``, ``valid_tables()``); the same tables as ``history=`` and to ``predict``;
- hyper-parameters: every one of ``BAD_VALUES`` in every constrained parameter;
- requests to a fitted model: ``recommend``/``predict``/``similar_items`` with odd users,
  ``k``, allow-lists and histories (``REQUEST_CASES`` and ``requests()``).

A case may also say how it must end (a table with NaN ids must be refused, ``k=0`` must
be an error, no users must give an empty answer). ``KNOWN_CRASHES`` lists what still
crashes for want of a fix outside these files; those run as strict xfails.

CI tries every named case and a few derandomized examples of each strategy
(``CI_SETTINGS``). ``benchmarks/hostile.py`` imports this module, runs every family with
many more generated examples, and tabulates how each case ended per estimator.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import signal
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skrec
from skrec.data.interactions import lookup
from skrec.datasets import make_interactions
from skrec.utils.validation import InvalidParameterError

# ----------------------------------------------------------------------- estimators
#: Small settings of every estimator: a fit on a toy table takes milliseconds.
_TORCH = dict(max_iter=1, batch_size=8, device="cpu", random_state=0)
TINY = {
    "ALS": dict(n_factors=4, max_iter=2, device="cpu", random_state=0),
    "BERT4Rec": dict(n_factors=4, n_layers=1, n_heads=1, max_len=5, **_TORCH),
    "EASE": dict(l2_reg=1.0),
    "GRU4Rec": dict(n_factors=4, max_len=5, **_TORCH),
    "Item2Vec": dict(n_factors=4, **_TORCH),
    "MF": dict(n_factors=4, **_TORCH),
    "NeuMF": dict(n_factors=4, layers=(8, 4), **_TORCH),
    "Popular": {},
    "Random": dict(random_state=0),
    "SASRec": dict(n_factors=4, n_layers=1, max_len=5, **_TORCH),
    "SLIM": dict(alpha=1e-2, max_iter=5),
}
NAMES = sorted(skrec.ESTIMATORS)

#: The table every reference model is fitted on: 12 users, 8 items, 48 timed events.
GOOD = make_interactions(n_users=12, n_items=8, mean_events=4, random_state=0)


def make(name: str, **params):
    """A fresh, small estimator ``name`` (``params`` override the small settings)."""
    return getattr(skrec, name)(**{**TINY[name], **params})


@cache
def _reference(name: str):
    return make(name).fit(GOOD)


def fitted(name: str):
    """A fitted small estimator, fresh for the caller to break."""
    return copy.deepcopy(_reference(name))


# ------------------------------------------------------------------------- outcomes
CLEAN, ERROR, CRASH = "clean", "error", "crash"
#: Seconds before a case counts as a hang.
TIME_LIMIT = 30.0
_SKREC = Path(skrec.__file__).resolve().parent


@dataclasses.dataclass
class Outcome:
    """How a case ended: ``CLEAN`` (fit or answer), ``ERROR`` (a clear error) or ``CRASH``
    (anything else: a foreign traceback, a hang, a wrong answer, a changed model)."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


class Hang(BaseException):
    """Raised by the time limit; a BaseException, so no ``except Exception`` hides it."""


@contextmanager
def time_limit(seconds: float):
    """Interrupt the block with :class:`Hang` after ``seconds`` (main thread, POSIX)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _interrupt(signum, frame):
        raise Hang(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def unclear(error: BaseException) -> str | None:
    """Why ``error`` is not a clear error, or None when it is one."""
    if not isinstance(error, (ValueError, TypeError)):
        return f"{type(error).__name__} is neither ValueError nor TypeError"
    if isinstance(error, InvalidParameterError):
        return None  # scikit-learn's declarative parameter check: names the parameter
    last = traceback.extract_tb(error.__traceback__)[-1]
    if _SKREC not in Path(last.filename).resolve().parents:
        return f"raised inside {last.filename}:{last.lineno}"
    if not (last.line or "").lstrip().startswith("raise"):
        return f"not a deliberate raise ({Path(last.filename).name}:{last.lineno}: {last.line})"
    if len(str(error)) < 25:
        return "the message is too short to say what is wrong"
    return None


def attempt(call: Callable[[], object], seconds: float = TIME_LIMIT) -> tuple[Outcome, object]:
    """Run ``call`` under a time limit; ``(outcome, its result or None)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_limit(seconds):
                result = call()
        except Hang as error:
            return Outcome(CRASH, str(error)), None
        except Exception as error:  # noqa: BLE001 - every failure is classified
            message = f"{type(error).__name__}: {error}"
            why = unclear(error)
            if why is None:
                return Outcome(ERROR, message), None
            return Outcome(CRASH, f"{why}: {message[:300]}"), None
    return Outcome(CLEAN), result


# ----------------------------------------------------------------- model state
def snapshot(model) -> dict:
    """A deep copy of everything ``fit`` sets (public ``*_`` and private ``_*`` state)."""
    state = {k: v for k, v in vars(model).items() if k.endswith("_") or k.startswith("_")}
    return copy.deepcopy(state)


def differences(a, b, path: str = "") -> list[str]:
    """Where two snapshots differ (empty when they are the same)."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} became {type(b).__name__}"]
    if isinstance(a, np.ndarray):
        same = a.shape == b.shape and a.dtype == b.dtype
        if same and a.dtype.kind in "fc":
            same = np.array_equal(a, b, equal_nan=True)
        elif same:
            same = a.tolist() == b.tolist()
        return [] if same else [f"{path}: array changed"]
    if isinstance(a, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [f"{path}: tensor changed"]
    if isinstance(a, torch.nn.Module):
        return differences(dict(a.state_dict()), dict(b.state_dict()), f"{path}.state_dict()")
    if sp.issparse(a):
        same = a.shape == b.shape and (a != b).nnz == 0
        return [] if same else [f"{path}: sparse matrix changed"]
    if isinstance(a, pd.Index):
        return [] if a.equals(b) and a.dtype == b.dtype else [f"{path}: index changed"]
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(map(str, a))} became {sorted(map(str, b))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}[{k!r}]")]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} became {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if dataclasses.is_dataclass(a) or hasattr(a, "__dict__"):
        return differences(vars(a), vars(b), path)
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} became {b!r}"]


def _recommendations(model):
    return model.recommend(model.user_ids_[:3], k=3, return_scores=True)


def unusable(model) -> str | None:
    """Why a model that fitted cleanly cannot serve, or None when it can."""
    users = model.user_ids_[:2].tolist()  # a list: the most common way users arrive
    outcome, result = attempt(lambda: model.recommend(users, k=1, exclude_seen=False))
    if outcome.kind != CLEAN:
        return f"recommend after the fit: {outcome}"
    ids = np.asarray(result, dtype=object).ravel()
    if len(ids) != 2 or (lookup(model._item_index, ids) < 0).any():
        return f"recommend after the fit gave {result!r}, not fitted item ids (NaN scores?)"
    return None


def fit_outcome(name: str, make_X: Callable[[], object], y=None, **params) -> Outcome:
    """Fit a fitted model again on ``make_X()`` (and ``y``, with ``params`` set first).

    A clean fit must leave a model that recommends; a clear error must leave the model
    exactly as it was: the same fitted state and, with its parameters set back, the
    same recommendations.
    """
    model = fitted(name)
    before, served = snapshot(model), _recommendations(model)
    X = make_X()
    outcome, _ = attempt(lambda: model.set_params(**params).fit(X, y))
    if outcome.kind == CLEAN:
        problem = unusable(model)
        return Outcome(CRASH, problem) if problem else outcome
    if outcome.kind == CRASH:
        return outcome
    try:
        changed = differences(before, snapshot(model))
    except Exception as error:  # noqa: BLE001 - e.g. tensors moved to a device that cannot compare
        return Outcome(CRASH, f"cannot compare the model after the failed fit: {error!r}")
    if changed:
        return Outcome(CRASH, f"the failed fit changed the model: {changed[:3]} ({outcome})")
    # set_params is no part of fit: serve with the parameters the model was fitted with
    model.set_params(**{k: v for k, v in _reference(name).get_params().items() if k in params})
    served_again, again = attempt(lambda: _recommendations(model))
    if served_again.kind != CLEAN:
        return Outcome(CRASH, f"recommend after the failed fit ({outcome}): {served_again}")
    if not all(np.array_equal(x, y) for x, y in zip(served, again)):
        return Outcome(CRASH, f"recommendations changed after the failed fit ({outcome})")
    return outcome


def expect(outcome: Outcome, expected: str | None) -> Outcome:
    """``outcome``, or a crash when it is not the ``expected`` kind (None: either)."""
    if expected is None or outcome.kind in (expected, CRASH):
        return outcome
    return Outcome(CRASH, f"expected a {expected} ending, got {outcome}")


# ------------------------------------------------------------------ named tables
@dataclasses.dataclass(frozen=True)
class TableCase:
    """An interaction table (made fresh by ``make``: generators are single-use).

    ``fails``: True when it must end in a clear error, False when it must fit (if the
    model's needs are met: a timestamp, and a user with two events, for sequential
    models), None when either is fine.
    """

    name: str
    make: Callable[[], object] = dataclasses.field(repr=False)
    fails: bool | None = None
    timed: bool = True
    sequences: bool = True
    y: object = None

    def expected(self, name: str) -> str | None:
        if self.fails is None:
            return None
        sequential = getattr(skrec, name)._requires_timestamp
        if self.fails or (sequential and not (self.timed and self.sequences)):
            return ERROR
        return CLEAN

    def run(self, name: str) -> Outcome:
        return expect(fit_outcome(name, self.make, self.y), self.expected(name))


_U = [1, 1, 2, 2, 3, 3]
_I = [10, 11, 10, 12, 11, 12]
_T = [1, 2, 3, 4, 5, 6]


def _table(user=_U, item=_I, timestamp=_T, **extra):
    columns = {"user_id": user, "item_id": item}
    if timestamp is not None:
        columns["timestamp"] = timestamp
    return pd.DataFrame({**columns, **extra})


def _rows(container=list, timestamp=True):
    rows = [(u, i, t) if timestamp else (u, i) for u, i, t in zip(_U, _I, _T)]
    return container(rows)


def _frame_with_columns(columns):
    frame = pd.DataFrame(np.array([_U, _I, _T, _T]).T[:, : len(columns)])
    frame.columns = columns
    return frame


_NOW = datetime(2024, 3, 1)
_TABLES = [
    # size and shape
    ("empty table", lambda: _table([], [], []), True),
    ("no columns at all", pd.DataFrame, True),
    ("one row", lambda: _table([1], [2], [0]), True),
    ("one user", lambda: _table([1] * 4, [1, 2, 3, 4], [1, 2, 3, 4]), True),
    ("one item", lambda: _table([1, 2, 3], [5] * 3, [1, 2, 3]), True),
    ("one pair repeated", lambda: _table([1] * 4, [5] * 4, [0] * 4), True),
    ("all rows duplicated", lambda: _table([1, 1, 2, 2] * 2, [5, 6, 5, 6] * 2, [0] * 8), False),
    ("each row 300 times", lambda: _table(_U * 300, _I * 300, _T * 300), False),
    ("every user one event", lambda: _table([1, 2, 3], [4, 5, 6], [1, 2, 3]), None),
    # ids
    ("NaN user id", lambda: _table(user=[1, np.nan, 2, 2, 3, 3]), True),
    ("None item id", lambda: _table(item=[10, None, 10, 12, 11, 12]), True),
    ("pd.NA ids", lambda: _table(user=pd.array([1, None, 2, 2, 3, 3], dtype="Int64")), True),
    ("NaT ids", lambda: _table(item=[pd.NaT, _NOW, _NOW, _NOW, _NOW, _NOW]), True),
    ("infinite float ids", lambda: _table(user=[1.0, np.inf, 2.0, 2.0, 3.0, 3.0]), True),
    ("mixed int and str ids", lambda: _table(user=[1, "1", 2, "b", 3, 3]), False),
    ("int, float and bool ids", lambda: _table(item=[10, 10.0, True, 12, 1, 12]), None),
    (
        "ids near 2**63",
        lambda: _table(user=[2**63 - 1, 2**63 - 1, -(2**63), -(2**63), 0, 0]),
        False,
    ),
    (
        "uint64 ids above 2**63",
        lambda: _table(item=np.array([2**64 - 1, 2**63, 1, 2, 3, 2**63], dtype=np.uint64)),
        False,
    ),
    (
        "ids beyond 64 bits",
        lambda: _table(user=[2**70, 2**70, 2**80, 2**80, -(2**90), -(2**90)]),
        False,
    ),
    ("bytes and int ids", lambda: _table(user=[2, 2, b"", b"", b"2", b"2"]), False),
    (
        "non-ASCII str and bytes ids",
        lambda: _table(user=["\xf2", "\xf2", b"\xf2", b"\xf2", "é", "é"]),
        False,
    ),
    (
        "ids with a trailing NUL",
        lambda: _table(user=["a\x00", "a\x00", "a", "a", "\x00", "\x00"]),
        False,
    ),
    (
        "small and beyond-int64 ids",
        lambda: _table(user=[1, 1, 2**64 - 1, 2**64 - 1, "a", "a"]),
        False,
    ),
    (
        "unicode ids",
        lambda: _table(
            user=["é", "é", "😀", "😀", "\u202e", "\u202e"], item=["", "\x00", "", "ẞ", "\x00", "ẞ"]
        ),
        False,
    ),
    ("bytes ids", lambda: _table(user=[b"a", b"a", b"\xff", b"\xff", b"", b""]), False),
    ("tuple ids", lambda: _table(user=[(1, 2), (1, 2), (3,), (3,), (), ()]), False),
    (
        "datetime ids",
        lambda: _table(item=[_NOW, _NOW + timedelta(1), _NOW, _NOW, _NOW, _NOW]),
        False,
    ),
    ("list ids", lambda: _table(user=[[1], [1], [2], [2], [3], [3]]), True),
    ("dict ids", lambda: _table(item=[{}, {}, {1: 2}, {}, {}, {}]), True),
    ("complex ids", lambda: _table(user=np.array(_U) + 1j), True),
    ("float ids", lambda: _table(user=[0.5, 0.5, -0.0, 0.0, 1e300, 1e300]), False),
    # weights
    ("negative weights", lambda: _table(weight=[-1.0, 1, 1, 1, 1, 1]), True),
    ("infinite weights", lambda: _table(weight=[np.inf, 1, 1, 1, 1, 1]), True),
    ("NaN weights", lambda: _table(weight=[np.nan, 1, 1, 1, 1, 1]), True),
    ("None weights", lambda: _table(weight=[None, 1, 1, 1, 1, 1]), True),
    ("weights beyond float32", lambda: _table(weight=[1e300] * 6), True),
    ("huge weights", lambda: _table(weight=[1e30] * 6), None),
    ("tiny weights", lambda: _table(weight=[1e-300] * 6), None),
    ("zero weights", lambda: _table(weight=[0.0] * 6), None),
    ("text weights", lambda: _table(weight=["a"] * 6), True),
    ("bool weights", lambda: _table(weight=[True, False] * 3), None),
    ("Decimal weights", lambda: _table(weight=[Decimal("1.5")] * 6), None),
    ("categorical weights", lambda: _table(weight=pd.Categorical([1.0, 2.0] * 3)), None),
    # timestamps
    ("unsorted timestamps", lambda: _table(timestamp=_T[::-1]), False),
    ("equal timestamps", lambda: _table(timestamp=[7] * 6), False),
    ("negative timestamps", lambda: _table(timestamp=[-5, -1, -3, -2, -9, -7]), False),
    ("float timestamps", lambda: _table(timestamp=[0.5, 0.25, 1e9, -1e9, 3.0, 3.0]), False),
    ("missing (NaN) timestamps", lambda: _table(timestamp=[1, np.nan, 3, 4, 5, 6]), True),
    ("None timestamps", lambda: _table(timestamp=[None] * 6), True),
    ("infinite timestamps", lambda: _table(timestamp=[1, np.inf, 3, 4, 5, 6]), True),
    ("text timestamps", lambda: _table(timestamp=list("abcdef")), True),
    ("date-string timestamps", lambda: _table(timestamp=["2024-01-0" + str(t) for t in _T]), False),
    ("datetime64 timestamps", lambda: _table(timestamp=pd.to_datetime(_T, unit="D")), False),
    (
        "tz-aware timestamps",
        lambda: _table(timestamp=pd.to_datetime(_T, unit="h", utc=True)),
        False,
    ),
    (
        "mixed-timezone timestamps",
        lambda: _table(
            timestamp=[pd.Timestamp("2024-01-01", tz=tz) for tz in ["UTC", "Asia/Tokyo"] * 3]
        ),
        False,
    ),
    ("timedelta timestamps", lambda: _table(timestamp=pd.to_timedelta(_T, unit="s")), None),
    (
        "dates beyond 2262",
        lambda: _table(timestamp=[datetime(2500, 1, 1), datetime(1500, 1, 1)] * 3),
        True,
    ),
    (
        "datetime64[s] beyond 2262",
        lambda: _table(timestamp=np.array(["3000-01-01", "1000-01-01"] * 3, dtype="datetime64[s]")),
        True,
    ),
    ("date strings beyond 2262", lambda: _table(timestamp=["2500-01-01", "2000-01-01"] * 3), True),
    (
        "date objects as timestamps",
        lambda: _table(timestamp=[_NOW.date() - timedelta(t) for t in _T]),
        False,
    ),
    (
        "Period timestamps",
        lambda: _table(timestamp=pd.period_range("2020-01", periods=6, freq="M")),
        None,
    ),
    ("bool timestamps", lambda: _table(timestamp=[True, False] * 3), None),
    (
        "uint64 timestamps above 2**63",
        lambda: _table(timestamp=np.array([2**64 - 1, 1, 2, 3, 4, 5], dtype=np.uint64)),
        True,
    ),
    ("timestamps beyond 64 bits", lambda: _table(timestamp=[2**70, 1, 2, 3, 4, 5]), True),
    ("mixed-type timestamps", lambda: _table(timestamp=[1, 2.5, "3", 4, 5, 6]), None),
    ("no timestamp column", lambda: _table(timestamp=None), False, False),
    # dtypes and columns
    (
        "categorical ids",
        lambda: _table().astype({"user_id": "category", "item_id": "category"}),
        False,
    ),
    (
        "categorical ids with unused categories",
        lambda: _table(user=pd.Categorical(_U, categories=[1, 2, 3, 99])),
        False,
    ),
    ("categorical timestamps", lambda: _table(timestamp=pd.Categorical(_T)), None),
    ("pandas sparse ids", lambda: _table(user=pd.arrays.SparseArray(_U)), False),
    (
        "string-dtype ids",
        lambda: _table(user=pd.array([str(u) for u in _U], dtype="string")),
        False,
    ),
    ("nullable Int64 columns", lambda: _table().astype("Int64"), False),
    ("extra columns", lambda: _table(rating=[5] * 6, genre=["x"] * 6), False),
    ("columns in another order", lambda: _table()[["timestamp", "item_id", "user_id"]], False),
    ("scrambled row index", lambda: _table().set_axis([9, 3, 3, -1, 100, 0]), False),
    (
        "duplicate column names",
        lambda: _frame_with_columns(["user_id", "item_id", "timestamp", "item_id"]),
        True,
    ),
    (
        "MultiIndex columns",
        lambda: _frame_with_columns(
            pd.MultiIndex.from_product([["user_id", "item_id"], ["a", "b"]])
        ),
        True,
    ),
    ("misnamed columns", lambda: _table().rename(columns={"user_id": "user"}), True),
    # targets
    ("y of the wrong length", _table, True, True, True, [1.0, 2.0]),
    ("2-D y", _table, True, True, True, np.ones((6, 2))),
    ("NaN in y", _table, True, True, True, [1.0, np.nan, 1, 1, 1, 1]),
    ("infinite y", _table, True, True, True, [1.0, np.inf, 1, 1, 1, 1]),
    ("text y", _table, True, True, True, list("abcdef")),
    ("scalar y", _table, True, True, True, 3.0),
    ("y for a ranking model", _table, False, True, True, [5.0, 3, 4, 1, 2, 5]),
    # containers
    ("list of rows", _rows, False),
    ("tuple of rows", lambda: _rows(tuple), False),
    ("list of rows without time", lambda: _rows(timestamp=False), False, False),
    ("ragged rows", lambda: [(1, 10, 1), (1, 11), (2, 10, 3)], True),
    ("numpy int array", lambda: np.array(_rows()), False),
    ("numpy str array", lambda: np.array(_rows(), dtype=str), False),
    ("numpy object array", lambda: np.array(_rows(), dtype=object), False),
    ("numpy array with NaN", lambda: np.array(_rows(), dtype=float) * [1, np.nan, 1][::-1], True),
    (
        "numpy structured array",
        lambda: np.array(_rows(), dtype=[("user_id", int), ("item_id", int), ("timestamp", int)]),
        False,
    ),
    ("numpy masked array", lambda: np.ma.masked_equal(np.array(_rows()), 11), True),
    ("numpy masked array, no mask", lambda: np.ma.array(np.array(_rows())), False),
    ("torch tensor", lambda: torch.tensor(_rows()), False),
    ("1-D array", lambda: np.array(_U), True),
    ("3-D array", lambda: np.zeros((2, 2, 2)), True),
    ("empty 2-D array", lambda: np.zeros((0, 3)), True),
    ("array with no columns", lambda: np.zeros((3, 0)), True),
    ("array with 4 columns", lambda: np.ones((6, 4)), True),
    ("complex array", lambda: np.array(_rows()) + 1j, True),
    ("dict of columns", lambda: {"user_id": _U, "item_id": _I, "timestamp": _T}, True),
    ("generator of rows", lambda: (r for r in _rows()), True),
    ("set of rows", lambda: set(_rows()), True),
    ("sparse matrix", lambda: sp.random(4, 4, density=0.5, format="csr", random_state=0), True),
    ("Series", lambda: pd.Series(_U), True),
    ("None", lambda: None, True),
    ("scalar", lambda: 5, True),
    ("string", lambda: "user_id,item_id", True),
    ("bytes", lambda: b"\x00\x01", True),
    ("empty list", list, True),
]
TABLE_CASES = [TableCase(*case) for case in _TABLES]


# --------------------------------------------------------- generated tables
_ID_KINDS = {
    "small ints": st.integers(0, 4),
    "ints near the int64 limits": st.integers(2**63 - 3, 2**63 - 1)
    | st.integers(-(2**63), -(2**63) + 2),
    "unicode text": st.text(max_size=2),
    "floats": st.floats(),
    "anything": st.one_of(
        st.integers(-2, 2),
        st.sampled_from([2**64 - 1, 2**70, -(2**63)]),
        st.text(max_size=2),
        st.floats(),
        st.booleans(),
        st.none(),
        st.just(pd.NA),
        st.binary(max_size=1),
        st.tuples(st.integers(0, 1)),
    ),
}
_TIME_KINDS = {
    "sorted ints": st.integers(0, 5),  # sorted below
    "ints": st.integers(-3, 3),
    "floats": st.floats(),
    "datetimes": st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(3000, 1, 1)),
    "text": st.text(max_size=3),
    "with gaps": st.none() | st.integers(0, 3),
    "huge": st.sampled_from([2**63 - 1, 2**64 - 1, 2**70, -(2**63)]),
}
_WEIGHT_KINDS = {
    "non-negative": st.floats(0, 10),
    "any float": st.floats(),
    "ints": st.integers(-2, 3),
    "bools": st.booleans(),
    "text": st.text(max_size=2),
    "with gaps": st.none() | st.floats(0, 1),
}
_CONTAINERS = ("DataFrame", "list of rows", "tuple of rows", "ndarray", "object ndarray")
_NOT_TABLES = {
    "None": None,
    "int": 3,
    "float NaN": float("nan"),
    "str": "user_id,item_id",
    "dict of columns": {"user_id": [1, 2], "item_id": [3, 4]},
    "sparse matrix": sp.eye(3, format="csr"),
    "set": {(1, 2), (2, 3)},
}


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _must_fail(frame: pd.DataFrame) -> bool:
    """Tables every estimator must refuse: empty, missing ids, bad weights/timestamps."""
    if len(frame) == 0:
        return True
    for column in ("user_id", "item_id", "timestamp"):
        if column in frame and any(_missing(v) for v in frame[column]):
            return True
    if "timestamp" in frame and any(
        isinstance(v, float) and math.isinf(v) for v in frame.timestamp
    ):
        return True
    if "weight" in frame:
        try:
            weight = np.asarray(frame.weight, dtype=np.float64)
        except (TypeError, ValueError):
            return True
        return bool((~np.isfinite(weight)).any() or (weight < 0).any())
    return False


@st.composite
def _column(draw, kinds: dict, n: int):
    kind = draw(st.sampled_from(sorted(kinds)))
    values = draw(st.lists(kinds[kind], min_size=n, max_size=n))
    return sorted(values) if kind == "sorted ints" else values


@st.composite
def tables(draw) -> TableCase:
    """Generated interaction tables: few rows, odd ids, weights, timestamps, dtypes and
    containers; now and then something that is no table at all."""
    if draw(st.integers(0, 9)) == 0:
        label = draw(st.sampled_from(sorted(_NOT_TABLES)))
        return TableCase(f"not a table: {label}", lambda: copy.copy(_NOT_TABLES[label]), True)
    n = draw(st.integers(0, 8))
    columns = {"user_id": draw(_column(_ID_KINDS, n)), "item_id": draw(_column(_ID_KINDS, n))}
    if draw(st.booleans()):
        columns["timestamp"] = draw(_column(_TIME_KINDS, n))
    container = draw(st.sampled_from(_CONTAINERS))
    if container == "DataFrame" and draw(st.booleans()):
        columns["weight"] = draw(_column(_WEIGHT_KINDS, n))
    frame = pd.DataFrame(columns, dtype=object)
    # numpy turns a mixed array's None and NaN into the strings "None" and "nan"
    fails = True if _must_fail(frame) and container != "ndarray" else None
    if n == 0:
        fails = True
    casts = {}
    if container == "DataFrame":
        for column in columns:
            cast = draw(st.sampled_from(["infer", "object", "category"]))
            if cast != "object":
                casts[column] = cast
    description = f"{container} {columns!r} casts={casts}"

    def build():
        if container == "DataFrame":
            out = pd.DataFrame(columns)
            for column, cast in casts.items():
                out[column] = out[column].astype("category") if cast == "category" else out[column]
            return out
        rows = list(zip(*columns.values())) if n else []
        if container == "list of rows":
            return rows
        if container == "tuple of rows":
            return tuple(rows)
        if container == "ndarray":
            try:
                return np.array(rows)
            except ValueError:  # numpy cannot make one array of ids and tuples
                pass
        return np.array(rows, dtype=object)

    return TableCase(description, build, fails, timed="timestamp" in columns)


@st.composite
def valid_tables(draw) -> TableCase:
    """Small tables every estimator must fit: int ids, at least 2 users and 2 items, a
    user with two events, ints for time, non-negative weights."""
    n = draw(st.integers(3, 14))
    users = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    assume_ok = len(set(users)) >= 2 and len(set(items)) >= 2 and len(users) > len(set(users))
    columns = {"user_id": users, "item_id": items}
    columns["timestamp"] = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["weight"] = draw(st.lists(st.floats(0, 5), min_size=n, max_size=n))
    frame = pd.DataFrame(columns)
    return TableCase(f"valid {columns!r}", frame.copy, False if assume_ok else None)


#: Hypothesis settings for CI: few examples, the same ones every run.
CI_SETTINGS = settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ parameters
#: Values tried in every constrained hyper-parameter: negative, zero, wrong types, NaN,
#: unknown strings, numpy scalars, odd devices.
BAD_VALUES = (
    -1,
    0,
    0.5,
    1.5,
    -0.5,
    float("nan"),
    float("inf"),
    -float("inf"),
    True,
    None,
    "nonsense",
    "",
    [],
    (-1, 4),
    ("a",),
    {},
    np.int64(2),
    np.float64(0.5),
    np.float32(-1.0),
    "cpu",
    "meta",
    torch.device("meta"),
    "cuda:99",
)


@dataclasses.dataclass(frozen=True)
class ParamCase:
    """Set ``param`` to ``value`` on a fitted model and fit again."""

    param: str
    value: object

    @property
    def name(self) -> str:
        return f"{self.param}={self.value!r}"

    def run(self, name: str) -> Outcome:
        with _scratch_directory():
            return fit_outcome(name, lambda: GOOD, **{self.param: self.value})


def param_cases(name: str) -> list[ParamCase]:
    """Every (constrained parameter, bad value) pair of estimator ``name``."""
    constraints = getattr(skrec, name)._parameter_constraints
    return [ParamCase(param, value) for param in sorted(constraints) for value in BAD_VALUES]


@contextmanager
def _scratch_directory():
    """Run in a temporary working directory (a checkpoint_dir of "" or "cpu" writes)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


# -------------------------------------------------------------------- requests
@dataclasses.dataclass(frozen=True)
class Request:
    """A call on a fitted model; ``expected`` is CLEAN, ERROR or None (either), and
    ``shape`` the shape a clean ``recommend`` must return."""

    name: str
    call: Callable = dataclasses.field(repr=False)
    expected: str | None = None
    shape: tuple | None = None

    def applies(self, name: str) -> bool:
        return not self.name.startswith("similar_items") or hasattr(
            _reference(name), "similar_items"
        )

    def run(self, name: str) -> Outcome:
        model = _reference(name)
        outcome, result = attempt(lambda: self.call(model))
        if outcome.kind == CLEAN and self.shape is not None:
            ids = result[0] if isinstance(result, tuple) else result
            if np.shape(ids) != self.shape:
                return Outcome(CRASH, f"shape {np.shape(ids)}, expected {self.shape}")
        return expect(outcome, self.expected)


_USER, _ITEM = GOOD.user_id.iloc[0], GOOD.item_id.iloc[0]
_N_ITEMS = GOOD.item_id.nunique()


def _history(**columns):  # sequential models need the events' times
    return pd.DataFrame({"user_id": ["new"], "item_id": [_ITEM], "timestamp": [0], **columns})


_REQUESTS = [
    ("unknown user", lambda m: m.recommend(["nobody"], k=2), ERROR),
    ("unknown int user", lambda m: m.recommend([10**6], k=2), ERROR),
    ("NaN user", lambda m: m.recommend([np.nan], k=2), ERROR),
    ("None user", lambda m: m.recommend([None], k=2), ERROR),
    ("k=0", lambda m: m.recommend([_USER], k=0), ERROR),
    ("negative k", lambda m: m.recommend([_USER], k=-3), ERROR),
    ("float k", lambda m: m.recommend([_USER], k=2.0), ERROR),
    ("NaN k", lambda m: m.recommend([_USER], k=float("nan")), ERROR),
    ("string k", lambda m: m.recommend([_USER], k="3"), ERROR),
    ("None k", lambda m: m.recommend([_USER], k=None), ERROR),
    ("bool k", lambda m: m.recommend([_USER], k=True), ERROR),
    ("numpy int k", lambda m: m.recommend([_USER], k=np.int64(2)), CLEAN, (1, 2)),
    ("k beyond the catalog", lambda m: m.recommend([_USER], k=_N_ITEMS + 1), ERROR),
    ("k=2**63", lambda m: m.recommend([_USER], k=2**63), ERROR),
    ("k = catalog", lambda m: m.recommend([_USER], k=_N_ITEMS), CLEAN, (1, _N_ITEMS)),
    ("empty items=", lambda m: m.recommend([_USER], k=1, items=[]), ERROR),
    ("unknown items=", lambda m: m.recommend([_USER], k=1, items=["zzz"]), ERROR),
    ("None in items=", lambda m: m.recommend([_USER], k=1, items=[None]), ERROR),
    ("2-D items=", lambda m: m.recommend([_USER], k=1, items=[[_ITEM]]), ERROR),
    ("set items=", lambda m: m.recommend([_USER], k=1, items={_ITEM}), ERROR),
    ("scalar items=", lambda m: m.recommend([_USER], k=1, items=_ITEM), CLEAN, (1, 1)),
    ("repeated items=", lambda m: m.recommend([_USER], k=1, items=[_ITEM] * 3), CLEAN, (1, 1)),
    ("k beyond items=", lambda m: m.recommend([_USER], k=2, items=[_ITEM]), ERROR),
    ("empty users=", lambda m: m.recommend([], k=2), CLEAN, (0, 2)),
    ("empty users= with scores", lambda m: m.recommend([], k=2, return_scores=True), CLEAN, (0, 2)),
    ("empty int array users=", lambda m: m.recommend(np.array([], dtype=int), k=2), CLEAN, (0, 2)),
    ("2-D users=", lambda m: m.recommend([[_USER]], k=2), ERROR),
    ("2-D array users=", lambda m: m.recommend(np.array([[_USER, _USER]]), k=2), ERROR),
    ("DataFrame users=", lambda m: m.recommend(GOOD[["user_id"]], k=2), ERROR),
    ("scalar users=", lambda m: m.recommend(_USER, k=2), CLEAN, (1, 2)),
    ("repeated users=", lambda m: m.recommend([_USER] * 3, k=2), CLEAN, (3, 2)),
    ("Series users=", lambda m: m.recommend(pd.Series([_USER]), k=2), CLEAN, (1, 2)),
    ("None users=", lambda m: m.recommend(None, k=2), ERROR),
    ("set users=", lambda m: m.recommend({_USER}, k=2), ERROR),
    ("dict users=", lambda m: m.recommend({_USER: 1}, k=2), ERROR),
    ("generator users=", lambda m: m.recommend((u for u in [_USER]), k=2), ERROR),
    ("sparse users=", lambda m: m.recommend(sp.eye(2, format="csr"), k=2), ERROR),
    ("unhashable users=", lambda m: m.recommend(np.array([[1], [2, 3]], dtype=object), k=2), ERROR),
    ("history: new user", lambda m: m.recommend(["new"], k=2, history=_history()), CLEAN, (1, 2)),
    ("history: empty", lambda m: m.recommend(["new"], k=2, history=_history().iloc[:0]), ERROR),
    (
        "history: unknown items only",
        lambda m: m.recommend(["new"], k=2, history=_history(item_id=["zz"])),
        ERROR,
    ),
    (
        "history: NaN item",
        lambda m: m.recommend(["new"], k=2, history=_history(item_id=[np.nan])),
        ERROR,
    ),
    (
        "history: list ids",
        lambda m: m.recommend(["new"], k=2, history=_history(user_id=[["new"]])),
        ERROR,
    ),
    (
        "history: text timestamp",
        lambda m: m.recommend(["new"], k=2, history=_history(timestamp=["x"])),
        ERROR,
    ),
    (
        "history: negative weight",
        lambda m: m.recommend(["new"], k=2, history=_history(weight=[-1.0])),
        ERROR,
    ),
    (
        "history: zero weight",
        lambda m: m.recommend(["new"], k=2, history=_history(weight=[0.0])),
        None,
    ),
    ("history: not a table", lambda m: m.recommend(["new"], k=2, history=5), ERROR),
    ("history: empty users=", lambda m: m.recommend([], k=2, history=_history()), CLEAN, (0, 2)),
    ("predict: empty", lambda m: m.predict(GOOD.iloc[:0]), CLEAN),
    (
        "predict: unknown and odd ids",
        lambda m: m.predict(_table(user=["x", 2**63 - 1, (1,), b"", -0.0, 1])),
        CLEAN,
    ),
    ("predict: NaN id", lambda m: m.predict(_table(user=[np.nan] * 6)), ERROR),
    ("predict: list ids", lambda m: m.predict(_table(item=[[1]] * 6)), ERROR),
    ("predict: not a table", lambda m: m.predict(None), ERROR),
    ("similar_items: k=0", lambda m: m.similar_items([_ITEM], k=0), ERROR),
    ("similar_items: unknown item", lambda m: m.similar_items(["zz"], k=1), ERROR),
    ("similar_items: empty", lambda m: m.similar_items([], k=1), CLEAN, (0, 1)),
    ("similar_items: k = catalog", lambda m: m.similar_items([_ITEM], k=_N_ITEMS), ERROR),
    ("similar_items: 2-D", lambda m: m.similar_items([[_ITEM]], k=1), ERROR),
]
REQUEST_CASES = [Request(*case) for case in _REQUESTS]


def _first_user(X) -> list:
    """The first user id of table ``X`` as a request (``["new"]`` if there is none)."""
    try:
        if isinstance(X, pd.DataFrame):
            return [X["user_id"].iloc[0]]
        return [np.asarray(X, dtype=object)[0, 0]]
    except Exception:  # noqa: BLE001 - no first user: ask for an unknown one
        return ["new"]


@dataclasses.dataclass(frozen=True)
class TableRequest:
    """A hostile table given to a fitted model as ``history=`` (recommending for its first
    user) or to ``predict``: a clean answer of the right shape or a clear error."""

    table: TableCase
    method: str  # "history" or "predict"

    @property
    def name(self) -> str:
        return f"{self.method}: {self.table.name}"

    def run(self, name: str) -> Outcome:
        model, X = _reference(name), self.table.make()
        if self.method == "history":
            users = _first_user(X)
            outcome, result = attempt(lambda: model.recommend(users, k=1, history=X))
            shape = (len(users), 1)
        else:
            outcome, result = attempt(lambda: model.predict(X))
            shape = (len(X),) if outcome.kind == CLEAN else None
        if outcome.kind == CLEAN and np.shape(result) != shape:
            return Outcome(CRASH, f"shape {np.shape(result)}, expected {shape}")
        return outcome


def table_requests(cases) -> list[TableRequest]:
    return [TableRequest(case, method) for case in cases for method in ("history", "predict")]


@st.composite
def requests(draw) -> Request:
    """Generated recommend calls: known and unknown users, any ``k``, any allow-list."""
    known = sorted(GOOD.user_id.unique().tolist())
    items = sorted(GOOD.item_id.unique().tolist())
    users = draw(st.lists(st.sampled_from(known), max_size=4) | st.lists(st.integers(99, 100)))
    k = draw(st.integers(1, 3) | st.integers(-2, _N_ITEMS + 2) | st.floats(-1, 3) | st.none())
    allowed = draw(
        st.none() | st.lists(st.sampled_from(items), max_size=4) | st.lists(st.just("zz"))
    )
    candidates = _N_ITEMS if allowed is None else len(set(allowed))
    ok_k = isinstance(k, int) and 1 <= k <= candidates
    ok_items = allowed is None or (allowed and "zz" not in allowed)
    ok_users = all(u in known for u in users)
    expected = CLEAN if ok_k and ok_items and ok_users else ERROR
    shape = (len(users), k) if expected == CLEAN else None
    return Request(
        f"recommend({users!r}, k={k!r}, items={allowed!r})",
        lambda m: m.recommend(users, k=k, items=allowed),
        expected,
        shape,
    )


# ------------------------------------------------------------- known crashes
#: Cases that still crash; each reason names the file and the fix. The tests above skip
#: them and ``test_known_crashes_still_crash`` runs them as strict xfails, so a fix shows
#: up as an XPASS: then delete the entry.
_TORCH_MODELS = ("BERT4Rec", "GRU4Rec", "Item2Vec", "MF", "NeuMF", "SASRec")
KNOWN_CRASHES: dict[tuple[str, str], str] = {}
#: Known crashes that take the whole process down: never run.
ABORTS: set[tuple[str, str]] = set()


def is_known(name: str, case) -> bool:
    return (name, case.name) in KNOWN_CRASHES


def named_case(name: str, label: str):
    """The named case of estimator ``name`` called ``label`` (table, request or parameter)."""
    cases = [*TABLE_CASES, *REQUEST_CASES, *table_requests(TABLE_CASES), *param_cases(name)]
    return next(case for case in cases if case.name == label)


def _grid(cases) -> list:
    return [
        pytest.param(name, case, id=f"{name}-{case.name}")
        for name in NAMES
        for case in cases
        if not is_known(name, case) and getattr(case, "applies", lambda _: True)(name)
    ]


def _check(name: str, case) -> None:
    outcome = case.run(name)
    assert outcome.kind != CRASH, f"{name}: {case.name}: {outcome.detail}"


# ====================================================================== the tests
def test_every_estimator_has_small_settings():
    assert set(TINY) == set(skrec.ESTIMATORS)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_constrained(name):
    """A parameter without a constraint is never checked: bad values reach torch."""
    cls = getattr(skrec, name)
    assert set(cls().get_params()) <= set(cls._parameter_constraints)


@pytest.mark.parametrize("name, case", _grid(TABLE_CASES))
def test_named_tables(name, case):
    _check(name, case)


@pytest.mark.parametrize("name", NAMES)
@CI_SETTINGS
@given(case=tables())
def test_generated_tables(name, case):
    _check(name, case)


@pytest.mark.parametrize("name", NAMES)
@CI_SETTINGS
@given(case=valid_tables())
def test_generated_valid_tables(name, case):
    _check(name, case)


@pytest.mark.parametrize("name", NAMES)
@settings(CI_SETTINGS, max_examples=25)
@given(data=st.data())
def test_bad_hyper_parameters(name, data):
    cases = [case for case in param_cases(name) if not is_known(name, case)]
    _check(name, data.draw(st.sampled_from(cases), label="case"))


@pytest.mark.parametrize("name", NAMES)
def test_bool_is_not_a_number(name):
    """scikit-learn lets True pass as the int 1; skrec refuses it where a number is due."""
    for param, allowed in getattr(skrec, name)._parameter_constraints.items():
        if not {"boolean", "verbose"} & {c for c in allowed if isinstance(c, str)}:
            outcome = ParamCase(param, True).run(name)
            assert outcome.kind == ERROR, f"{name}({param}=True): {outcome}"


@pytest.mark.parametrize("name, case", _grid(REQUEST_CASES))
def test_named_requests(name, case):
    _check(name, case)


@pytest.mark.parametrize("name", NAMES)
@settings(CI_SETTINGS, max_examples=25)
@given(case=requests())
def test_generated_requests(name, case):
    _check(name, case)


@pytest.mark.parametrize("name", NAMES)
def test_named_tables_as_history_and_predict_input(name):
    crashes = []
    for case in table_requests(TABLE_CASES):
        if not is_known(name, case):
            outcome = case.run(name)
            if outcome.kind == CRASH:
                crashes.append(f"{case.name}: {outcome.detail}")
    assert not crashes, "\n".join(crashes)


@pytest.mark.parametrize("name", NAMES)
@CI_SETTINGS
@given(case=tables(), method=st.sampled_from(["history", "predict"]))
def test_generated_tables_as_history_and_predict_input(name, case, method):
    _check(name, TableRequest(case, method))


@pytest.mark.parametrize("name", NAMES)
def test_failure_inside_training_leaves_the_model_unchanged(name):
    """Failures after validation (inside ``_fit``) roll back too: a sequential model on
    one-event users, a torch model whose loss diverges."""
    _check(name, TableCase("every user one event", lambda: _table([1, 2, 3], [4, 5, 6], [1, 2, 3])))
    if "learning_rate" in getattr(skrec, name)._parameter_constraints:
        outcome = fit_outcome(name, lambda: GOOD, learning_rate=1e30, max_iter=3)
        assert outcome.kind != CRASH, outcome.detail


@pytest.mark.parametrize(
    "name, label",
    [
        pytest.param(*key, marks=pytest.mark.xfail(strict=True, run=key not in ABORTS, reason=why))
        for key, why in KNOWN_CRASHES.items()
    ],
)
def test_known_crashes_still_crash(name, label):
    _check(name, named_case(name, label))


def test_the_checks_can_fail():
    """The classifier itself: foreign tracebacks and silent changes are crashes."""
    assert attempt(lambda: np.zeros(-1))[0].kind == CRASH  # numpy's own ValueError
    assert attempt(lambda: int("x"))[0].kind == CRASH  # not a skrec raise
    assert attempt(lambda: torch.zeros(2) @ torch.zeros(3))[0].kind == CRASH
    assert attempt(lambda: skrec.Popular().fit(None))[0].kind == ERROR
    model = fitted("Popular")
    before = snapshot(model)
    model.item_popularity_[0] += 1  # an in-place change
    assert differences(before, snapshot(model))
    assert expect(Outcome(CLEAN), ERROR).kind == CRASH


def test_a_hang_is_a_crash():
    outcome, _ = attempt(lambda: time.sleep(5), seconds=0.2)
    assert outcome.kind == CRASH and "no answer" in outcome.detail
