"""Input validation for interaction tables.

This is the one module that touches scikit-learn's private API, so a scikit-learn
upgrade breaks one file.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: F401 (re-exported)

USER, ITEM, TIME, WEIGHT = "user_id", "item_id", "timestamp", "weight"
_ARRAY_COLUMNS = (USER, ITEM, TIME)


def _preview(values, n: int = 5) -> str:
    values = list(values[:n])
    return ", ".join(repr(v) for v in values)


def as_interaction_frame(X, *, name: str = "X") -> pd.DataFrame:
    """Return ``X`` as a DataFrame with skrec's column names, without copying data.

    Accepts a DataFrame with ``user_id`` and ``item_id`` columns, or a 2-D array whose
    columns are ``user_id, item_id`` and optionally ``timestamp``.
    """
    if hasattr(X, "toarray") or hasattr(X, "tocoo"):
        raise TypeError(
            f"{name} is a sparse matrix, and sparse input is not supported: skrec takes an "
            "interaction table (one row per event). Convert a user-item matrix m with "
            "c = m.tocoo(); pandas.DataFrame({'user_id': c.row, 'item_id': c.col})."
        )
    if isinstance(X, pd.DataFrame):
        frame = X
    elif hasattr(X, "__array__") or isinstance(X, (list, tuple)):
        array = np.asarray(X, dtype=object) if isinstance(X, (list, tuple)) else np.asarray(X)
        if array.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: the ids in {name} must be real.")
        if array.ndim != 2:
            raise ValueError(
                f"{name} must be a DataFrame or a 2-D array of (user_id, item_id[, timestamp]) "
                f"rows; got an array with {array.ndim} dimension(s). Reshape your data, or "
                "pass a DataFrame with 'user_id' and 'item_id' columns."
            )
        n_columns = array.shape[1]
        if n_columns < 2:
            raise ValueError(
                f"{name} has {n_columns} feature(s) (shape={array.shape}) while a minimum of 2 "
                "is required: a 2-D array must have the columns (user_id, item_id[, timestamp])."
            )
        if n_columns > 3:
            raise ValueError(
                f"{name} has {n_columns} columns; a 2-D array must have exactly 2 columns "
                "(user_id, item_id) or 3 (user_id, item_id, timestamp). Pass richer data as a "
                "DataFrame with named columns so no column's meaning is guessed."
            )
        columns = _ARRAY_COLUMNS[:n_columns]
        frame = pd.DataFrame({c: array[:, j] for j, c in enumerate(columns)})
    else:
        raise TypeError(
            f"{name} must be a pandas DataFrame or a 2-D array of (user_id, item_id[, "
            f"timestamp]) rows; got {type(X).__name__}."
        )
    missing = [c for c in (USER, ITEM) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} is missing the column(s) {missing}; an interaction table needs "
            f"'user_id' and 'item_id' (got columns {list(frame.columns)}). Rename your columns, "
            "e.g. X.rename(columns={'user': 'user_id', 'movie': 'item_id'})."
        )
    return frame


def _check_ids(values: pd.Series, column: str, name: str) -> np.ndarray:
    array = values.to_numpy()
    missing = pd.isna(values).to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise ValueError(
            f"Column '{column}' of {name} has {int(missing.sum())} missing value(s) (NaN/None), "
            f"first at row(s) {rows}. Drop or fill those rows before fitting."
        )
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            raise ValueError(
                f"Column '{column}' of {name} has infinite ids, first at row(s) "
                f"{np.flatnonzero(bad)[:5].tolist()}. Ids must be finite."
            )
    if isinstance(values.dtype, pd.CategoricalDtype):
        array = np.asarray(values.astype(object))
    return array


def _check_timestamps(values: pd.Series, name: str) -> np.ndarray:
    missing = pd.isna(values).to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise ValueError(
            f"Column 'timestamp' of {name} has {int(missing.sum())} missing value(s), first at "
            f"row(s) {rows}. Sequential models and time splits need a timestamp on every event."
        )
    array = values.to_numpy()
    if array.dtype.kind == "M":
        return array.astype("datetime64[ns]").astype(np.int64)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"Column 'timestamp' of {name} has infinite values; use finite times.")
        return array.astype(np.float64)
    try:
        converted = pd.to_numeric(values, errors="raise").to_numpy()
    except (TypeError, ValueError):
        try:
            converted = pd.to_datetime(values).to_numpy().astype("datetime64[ns]").astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Column 'timestamp' of {name} cannot be ordered: values such as "
                f"{_preview(array)} are neither numbers nor dates. Use ints, floats or "
                "datetime64."
            ) from exc
    return np.asarray(converted, dtype=np.float64 if converted.dtype.kind == "f" else np.int64)


def _check_weights(values, name: str, column: str = "weight") -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Column '{column}' of {name} must be numeric.") from exc
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"Column '{column}' of {name} has NaN or infinite values, first at row(s) "
            f"{np.flatnonzero(bad)[:5].tolist()}. Drop or fill them."
        )
    negative = array < 0
    if negative.any():
        raise ValueError(
            f"Column '{column}' of {name} has negative values, e.g. {array[negative][:3].tolist()} "
            f"at row(s) {np.flatnonzero(negative)[:5].tolist()}; implicit weights must be >= 0. "
            "Shift or clip them, or binarize ratings with skrec.preprocessing.Binarize."
        )
    return array


def check_interactions(
    X,
    y=None,
    *,
    name: str = "X",
    require_timestamp: bool = False,
    require_nonempty: bool = True,
) -> dict:
    """Validate an interaction table and return its columns as numpy arrays.

    Returns a dict with ``user``, ``item`` (raw ids), ``timestamp`` (int64/float64 or
    None), ``weight`` (float64 or None), ``y`` (float64 or None) and ``frame`` (the
    DataFrame view of ``X``).
    """
    frame = as_interaction_frame(X, name=name)
    if require_nonempty and len(frame) == 0:
        raise ValueError(
            f"{name} is an empty interaction table (0 rows); fit needs at least one event per "
            "user and item."
        )
    out = {
        "frame": frame,
        "user": _check_ids(frame[USER], USER, name),
        "item": _check_ids(frame[ITEM], ITEM, name),
        "timestamp": None,
        "weight": None,
        "y": None,
    }
    if TIME in frame.columns:
        out["timestamp"] = _check_timestamps(frame[TIME], name)
    elif require_timestamp:
        raise ValueError(
            f"{name} has no 'timestamp' column, which this model needs to order each user's "
            "events. Add one (ints, floats or datetimes); for data already in order, use "
            "X.assign(timestamp=range(len(X)))."
        )
    if WEIGHT in frame.columns:
        out["weight"] = _check_weights(frame[WEIGHT], name)
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(frame):
            raise ValueError(
                f"y must be 1-D with one value per row of {name} ({len(frame)} rows); got shape "
                f"{y.shape}."
            )
        try:
            out["y"] = y.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError("y must be numeric (ratings, clicks or weights).") from exc
        if not np.isfinite(out["y"]).all():
            raise ValueError("y has NaN or infinite values; drop or fill those rows.")
    return out


def check_k(k, n_candidates: int) -> int:
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    if k > n_candidates:
        raise ValueError(
            f"k={k} is larger than the number of candidate items ({n_candidates}). Ask for at "
            f"most {n_candidates} items, or widen `items=`."
        )
    return int(k)
