"""Input validation for interaction tables.

This is the one module that touches scikit-learn's private API, so a scikit-learn
upgrade breaks one file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,  # noqa: F401 (re-exported)
)

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
    elif isinstance(X, np.ndarray) and X.dtype.names is not None:
        frame = pd.DataFrame(X)  # a structured array names its columns
    elif hasattr(X, "__array__") or isinstance(X, (list, tuple)):
        if isinstance(X, np.ma.MaskedArray):  # masked entries are missing values
            array = np.asarray(X, dtype=object)
            array[np.ma.getmaskarray(X)] = None
        elif isinstance(X, (list, tuple)):
            array = np.asarray(X, dtype=object)
        else:
            array = np.asarray(X)
        if array.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: the ids in {name} must be real.")
        if array.ndim == 1 and len(array) and all(isinstance(r, (list, tuple)) for r in array):
            lengths = sorted({len(r) for r in array})
            raise ValueError(
                f"The rows of {name} have different lengths {lengths}; each row must be "
                "(user_id, item_id[, timestamp]). Fix the short rows, or pass a DataFrame."
            )
        if array.ndim == 1 and len(array) == 0:
            raise ValueError(f"{name} is empty; an interaction table needs at least one row.")
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
        hint = ""
        if isinstance(X, Mapping):
            hint = " For a dict of columns, pass pandas.DataFrame(X)."
        elif isinstance(X, (Iterator, Set)):
            hint = " Materialise it first, e.g. pandas.DataFrame(list(X), columns=[...])."
        raise TypeError(
            f"{name} must be a pandas DataFrame or a 2-D array of (user_id, item_id[, "
            f"timestamp]) rows; got {type(X).__name__}.{hint}"
        )
    missing = [c for c in (USER, ITEM) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} is missing the column(s) {missing}; an interaction table needs "
            f"'user_id' and 'item_id' (got columns {list(frame.columns)}). Rename your columns, "
            "e.g. X.rename(columns={'user': 'user_id', 'movie': 'item_id'})."
        )
    for column in (USER, ITEM, TIME, WEIGHT):
        if column in frame.columns and not isinstance(frame[column], pd.Series):
            raise ValueError(
                f"{name} has more than one column named {column!r} (or a multi-level column "
                f"under it); each of 'user_id', 'item_id', 'timestamp' and 'weight' must be one "
                "column. Drop or rename the duplicates."
            )
    return frame


def check_hashable(values: np.ndarray, what: str) -> None:
    """Raise a clear TypeError when an object array of ids holds an unhashable value
    (a list, a dict, an array): ids are looked up by hash."""
    if values.dtype != object:
        return
    for position, value in enumerate(values.ravel()):
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"{what} must be hashable ids (ints, strings, tuples); got {_short(value)} of "
                f"type {type(value).__name__} at position {position}."
            ) from None


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_ids(values: pd.Series, column: str, name: str) -> np.ndarray:
    array = values.to_numpy()
    missing = pd.isna(values).to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise ValueError(
            f"Column '{column}' of {name} has {int(missing.sum())} missing value(s) (NaN/None), "
            f"first at row(s) {rows}. Drop or fill those rows."
        )
    if array.dtype.kind == "c":
        raise ValueError(
            f"Column '{column}' of {name} is complex; ids must be real numbers or text."
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
    if isinstance(values.dtype, pd.DatetimeTZDtype):  # in UTC, as nanoseconds (any unit)
        return _nanoseconds(values.dt.tz_convert(None).to_numpy(), name)
    array = values.to_numpy()
    if array.dtype.kind == "M":
        return _nanoseconds(array, name)
    if array.dtype.kind == "u" and len(array) and array.max() > np.iinfo(np.int64).max:
        raise ValueError(_TIME_RANGE.format(name=name, example=array.max()))
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
            # in UTC, so mixed time zones order too; naive times are taken as UTC
            dates = pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy()
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Column 'timestamp' of {name} cannot be ordered: values such as "
                f"{_preview(array)} are neither numbers nor dates. Use ints, floats or "
                "datetime64."
            ) from exc
        converted = _nanoseconds(dates, name)
    if converted.dtype.kind not in "iuf":  # e.g. Python ints beyond 64 bits stay objects
        raise ValueError(_TIME_RANGE.format(name=name, example=_preview(array, 1)))
    if converted.dtype.kind == "u" and len(converted) and converted.max() > np.iinfo(np.int64).max:
        raise ValueError(_TIME_RANGE.format(name=name, example=converted.max()))
    if converted.dtype.kind == "f" and not np.isfinite(converted).all():
        bad = ~np.isfinite(converted)
        raise ValueError(
            f"Column 'timestamp' of {name} has values that are not finite times, e.g. "
            f"{_preview(array[bad], 3)} at row(s) {np.flatnonzero(bad)[:5].tolist()}. Use "
            "finite numbers or dates."
        )
    return np.asarray(converted, dtype=np.float64 if converted.dtype.kind == "f" else np.int64)


def _nanoseconds(dates: np.ndarray, name: str) -> np.ndarray:
    """datetime64 values of any unit as int64 nanoseconds since 1970, refusing dates that
    do not fit (numpy's cast would wrap them around silently, scrambling the order)."""
    unit, count = np.datetime_data(dates.dtype)
    per_unit = np.timedelta64(count, unit) / np.timedelta64(1, "ns")
    ticks = dates.astype(np.int64)
    outside = np.abs(ticks) > np.iinfo(np.int64).max / max(per_unit, 1.0)
    if outside.any():
        raise ValueError(
            f"Column 'timestamp' of {name} has dates outside the years 1677-2262, which "
            f"nanosecond timestamps cannot hold, e.g. {dates[outside][:3].tolist()}. Use "
            "numbers (e.g. seconds since an epoch) for such times."
        )
    return dates.astype("datetime64[ns]").astype(np.int64)


_TIME_RANGE = (
    "Column 'timestamp' of {name} has values beyond the 64-bit integer range, e.g. {example}. "
    "Use seconds or nanoseconds since an epoch, floats, or datetime64."
)


def _check_weights(values, name: str, column: str = "weight", signed: bool = False) -> np.ndarray:
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
    too_large = np.abs(array) > np.finfo(np.float32).max
    if too_large.any():
        raise ValueError(
            f"Column '{column}' of {name} has values too large for float32 training, e.g. "
            f"{array[too_large][:3].tolist()} at row(s) {np.flatnonzero(too_large)[:5].tolist()}. "
            "Rescale them (e.g. divide by their maximum) or take a logarithm."
        )
    negative = array < 0
    if not signed and negative.any():
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
    signed_weights: bool = False,
) -> dict:
    """Validate an interaction table and return its columns as numpy arrays.

    Returns a dict with ``user``, ``item`` (raw ids), ``timestamp`` (int64/float64 or
    None), ``weight`` (float64 or None), ``y`` (float64 or None) and ``frame`` (the
    DataFrame view of ``X``). ``weight`` holds implicit weights (>= 0) unless
    ``signed_weights``, where it holds ratings of any sign.
    """
    frame = as_interaction_frame(X, name=name)
    if require_nonempty and len(frame) == 0:
        raise ValueError(
            f"{name} is an empty interaction table (0 rows); pass at least one event (a row of "
            "user_id, item_id)."
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
        out["weight"] = _check_weights(frame[WEIGHT], name, signed=signed_weights)
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


def check_params(estimator) -> None:
    """Check the hyper-parameters against ``_parameter_constraints`` (scikit-learn's
    declarative checker), and refuse a bool where a number is expected: scikit-learn lets
    ``True`` pass as the int 1, which then fails deep inside torch or threadpoolctl."""
    estimator._validate_params()
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        value = params.get(name)
        if not isinstance(value, bool) or any(_takes_bool(c) for c in constraints):
            continue
        if any(_is_numeric(c) for c in constraints):
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be a number, not a "
                f"bool. Got {value!r} instead."
            )


def _takes_bool(constraint) -> bool:
    if isinstance(constraint, str):
        return constraint in ("boolean", "verbose", "no_validation")
    return constraint is bool or constraint is object


def _is_numeric(constraint) -> bool:
    if isinstance(constraint, str):
        return constraint == "random_state"
    return isinstance(constraint, Interval) or (
        isinstance(constraint, type) and issubclass(constraint, (Integral, Real))
    )


def check_positive_int(value, name: str) -> int:
    """``value`` as an int: an integer (not a bool) of at least 1."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def check_k(k, n_candidates: int | None = None) -> int:
    """``k`` as an int: a positive integer, at most ``n_candidates`` when given."""
    k = check_positive_int(k, "k")
    if n_candidates is not None and k > n_candidates:
        raise ValueError(
            f"k={k} is larger than the number of candidate items ({n_candidates}). Ask for at "
            f"most {n_candidates} items, or widen `items=`."
        )
    return int(k)
