"""The benchmark behind ``skrec bench``: fit models on a dataset, evaluate, compare.

Every number in docs/benchmarks.md comes from :func:`run_bench`, through the public
API (``fit``, ``recommend``, ``predict``, splitters). Tuned hyper-parameters per
dataset live in ``skrec/configs/<dataset>.json``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
from sklearn.base import clone
from sklearn.pipeline import Pipeline, make_pipeline
from tqdm.auto import tqdm

from . import preprocessing
from .datasets import fetch_interactions, load_ml_1m_ncf, load_ml_100k
from .model_selection import (
    LeaveLastOut,
    _rank_metric,
    evaluate,
    evaluate_sessions,
    rank_against_candidates,
)

logger = logging.getLogger(__name__)

PROTOCOLS = ("leave-last-out", "ncf", "ratings", "session")
CONFIG_DIR = Path(__file__).parent / "configs"


class PeakMemory:
    """Peak resident memory above the starting level, sampled from a thread (MiB)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_mb = float("nan")

    @staticmethod
    def _rss() -> float:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return float("nan")

    def __enter__(self):
        self._start = self._rss()
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.peak_mb = self._peak - self._start
        return False


def load_config(dataset: str, path=None) -> dict:
    """Model specs for ``dataset`` from ``path`` or ``skrec/configs/<dataset>.json``.

    A dataset without a shipped config has none (defaults); a ``path`` given must be a
    JSON object with a ``"models"`` mapping.
    """
    if path is None:
        shipped = CONFIG_DIR / f"{dataset}.json"
        return json.loads(shipped.read_text())["models"] if shipped.exists() else {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {str(path)!r} is not a file.")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"config {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("models"), dict):
        raise ValueError(
            f'config {str(path)!r} must be a JSON object with a "models" mapping of model '
            'names to parameters, e.g. {"models": {"EASE": {"l2_reg": 500}}}.'
        )
    return config["models"]


def make_model(name: str, spec: dict | None = None):
    """An estimator from a config entry.

    ``spec`` is either keyword arguments of the skrec estimator ``name``, or
    ``{"estimator": "EASE", "params": {...}}``, or ``{"steps": [["Binarize",
    {"threshold": 4}], ["Popular", {}]]}`` for a Pipeline.
    """
    import skrec

    def build(cls_name, params):
        if cls_name in skrec.ESTIMATORS:
            cls = getattr(skrec, cls_name)
        elif cls_name in preprocessing.__all__:
            cls = getattr(preprocessing, cls_name)
        else:
            raise ValueError(
                f"Unknown model {cls_name!r}; skrec's estimators are {skrec.ESTIMATORS} (and "
                f"the config's names), its transformers {preprocessing.__all__}."
            )
        return cls(**params)

    spec = dict(spec or {})
    if "steps" in spec:
        return make_pipeline(*(build(n, p) for n, p in spec["steps"]))
    if "estimator" in spec:
        return build(spec["estimator"], spec.get("params", {}))
    return build(name, spec)


def _params(model) -> dict:
    if isinstance(model, Pipeline):
        return {name: step.get_params(deep=False) for name, step in model.steps}
    return model.get_params(deep=False)


def _summary(per_user: np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width (Student's t: the ratings protocol has 5 folds, not
    thousands of users, and there 1.96 would be 30% too narrow)."""
    values = per_user[~np.isnan(per_user)]
    n = len(values)
    if n < 2:
        return float(values.mean()) if n else float("nan"), 0.0
    half_width = scipy.stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return float(values.mean()), float(half_width)


def _prepare(dataset, protocol, data_home, random_state):
    """The folds of one dataset and protocol: a list of (train X, train y, evaluate)."""
    if protocol == "leave-last-out":
        X = fetch_interactions(dataset, data_home, random_state=random_state)
        train_rows, test_rows = next(LeaveLastOut().split(X))
        train, test = X.iloc[train_rows], X.iloc[test_rows]

        def run(model, k, timings):
            return evaluate(
                model, test, metrics=("hr", "ndcg"), k=k, per_user=True, timings=timings
            )

        return [(train, None, run)]
    if protocol == "ncf":
        if dataset != "ml-1m-ncf":
            raise ValueError("protocol 'ncf' is defined for --dataset ml-1m-ncf only.")
        # Time order (recovered from ml-1m-seq): early stopping holds out users' latest
        # training pairs, as the test split holds out their latest event.
        data = load_ml_1m_ncf(data_home, order="time")
        negatives = data.negatives

        def run(model, k, timings):
            start = time.perf_counter()
            ranks = rank_against_candidates(
                model, data.test.user_id.to_numpy(), data.test.item_id.to_numpy(), negatives
            )
            timings["recommend_seconds"] = time.perf_counter() - start
            return {f"{m}@{k}": _rank_metric(m, ranks, k) for m in ("hr", "ndcg")}

        return [(data.train, None, run)]
    if protocol == "ratings":
        if dataset != "ml-100k":
            raise ValueError("protocol 'ratings' is defined for --dataset ml-100k (u1-u5).")
        return [_rating_fold(base, test) for base, test in load_ml_100k(data_home).folds]
    if protocol == "session":
        if dataset != "diginetica":
            raise ValueError("protocol 'session' is defined for --dataset diginetica only.")
        train, test = session_split(fetch_interactions(dataset, data_home))

        def run(model, k, timings):
            return evaluate_sessions(
                model, test, metrics=("hr", "mrr", "ndcg"), k=k, per_user=True, timings=timings
            )

        return [(train, None, run)]
    raise ValueError(f"Unknown protocol {protocol!r}; choose from {PROTOCOLS}.")


_DAY_NS = 86_400 * 10**9


def session_split(X: pd.DataFrame, test_days: int = 7, min_item_count: int = 5):
    """The session-based split of SR-GNN's DIGINETICA preprocessing.

    Drops sessions of one event, then items seen fewer than ``min_item_count`` times,
    then sessions left with one event; the sessions ending in the last ``test_days``
    days (timestamps in nanoseconds) are the test set, from which items absent from
    training and then sessions left with one event are removed.
    """
    size = X.groupby("user_id").item_id.transform("size")
    X = X[size > 1]
    X = X[X.groupby("item_id").item_id.transform("size") >= min_item_count]
    X = X[X.groupby("user_id").item_id.transform("size") > 1]
    day = X.timestamp // _DAY_NS
    last_day = day.groupby(X.user_id).transform("max")
    is_test = last_day > day.max() - test_days
    train, test = X[~is_test], X[is_test]
    test = test[test.item_id.isin(set(train.item_id))]
    test = test[test.groupby("user_id").item_id.transform("size") > 1]
    return train, test


def _rating_fold(base, test):
    """Explicit ratings: fit on ``base`` with the ratings as y, RMSE on ``test``. Pairs the
    model cannot score (an item absent from ``base``) get the training mean rating."""
    mean = float(base.weight.mean())

    def run(model, k, timings):
        start = time.perf_counter()
        predicted = model.predict(test[["user_id", "item_id"]])
        timings["recommend_seconds"] = time.perf_counter() - start
        predicted = np.where(np.isnan(predicted), mean, predicted)
        return {"rmse": np.array([np.sqrt(np.mean((predicted - test.weight.to_numpy()) ** 2))])}

    return base[["user_id", "item_id", "timestamp"]], base.weight.to_numpy(np.float64), run


def run_bench(
    dataset: str = "synthetic",
    models=("Popular", "Random"),
    *,
    protocol: str = "leave-last-out",
    k: int = 10,
    config=None,
    data_home=None,
    random_state: int = 0,
    checkpoint_dir=None,
    baseline: str | None = None,
    verbose: bool = True,
) -> list[dict]:
    """Fit and evaluate ``models`` on ``dataset``; return one record per model.

    ``models`` holds names (looked up in the dataset's config) or a dict of name ->
    estimator (a skrec estimator or a Pipeline ending in one). With ``checkpoint_dir``,
    every model that takes one checkpoints there, so a rerun resumes. With ``baseline``
    (one of ``models``), each record also gets ``paired``: the mean per-user difference
    of each metric from the baseline's on the same test users, with its 95% interval —
    a much tighter comparison than two separate intervals.
    """
    if not len(models):
        raise ValueError("no models to run; name at least one, e.g. models=['Popular'].")
    if baseline is not None and baseline not in list(models):
        raise ValueError(f"baseline={baseline!r} must be one of the models {list(models)}.")
    specs = load_config(dataset, config)
    if isinstance(models, dict):
        estimators = dict(models)
    else:
        estimators = {name: make_model(name, specs.get(name)) for name in models}
    if checkpoint_dir is not None:
        for estimator in estimators.values():
            final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
            if "checkpoint_dir" in final.get_params(deep=False):
                final.set_params(checkpoint_dir=str(checkpoint_dir))
    folds = _prepare(dataset, protocol, data_home, random_state)
    records, values_of = [], {}
    bar = tqdm(estimators.items(), disable=not verbose, desc=f"bench {dataset}", unit="model")
    for name, estimator in bar:
        bar.set_postfix_str(name)
        fit_seconds, timings, per_user = 0.0, {}, {}
        with PeakMemory() as memory:
            for train, y, run in folds:  # one fold, or several whose values are pooled
                model = clone(estimator)
                start = time.perf_counter()
                model.fit(train, y)
                fit_seconds += time.perf_counter() - start
                fold_timings = {}
                for key, values in run(model, k, fold_timings).items():
                    per_user.setdefault(key, []).append(np.asarray(values, dtype=np.float64))
                timings["recommend_seconds"] = timings.get("recommend_seconds", 0.0) + (
                    fold_timings.get("recommend_seconds", float("nan"))
                )
        per_user = {key: np.concatenate(values) for key, values in per_user.items()}
        values_of[name] = per_user
        metrics, intervals = {}, {}
        for key, values in per_user.items():
            metrics[key], intervals[key] = _summary(np.asarray(values, dtype=np.float64))
        records.append(
            {
                "model": name,
                "dataset": dataset,
                "protocol": protocol,
                "params": _params(model),
                "metrics": metrics,
                "ci95": intervals,
                # users scored (the ratings protocol: folds)
                ("n_folds" if protocol == "ratings" else "n_users"): int(
                    len(next(iter(per_user.values())))
                ),
                "fit_seconds": fit_seconds,
                **_training_record(model),
                "recommend_seconds": timings.get("recommend_seconds", float("nan")),
                "peak_memory_mb": memory.peak_mb,
            }
        )
    if baseline is not None:
        for record in records:
            record["paired"] = _paired(values_of[record["model"]], values_of[baseline], baseline)
    return records


def _paired(values: dict, reference: dict, name: str) -> dict:
    """Mean paired difference per metric (values - reference over the same users, those
    with both defined) and its 95% half-width."""
    difference, half_width = {}, {}
    for key, mine in values.items():
        theirs = reference[key]
        both = ~np.isnan(mine) & ~np.isnan(theirs)
        difference[key], half_width[key] = _summary(mine[both] - theirs[both])
    return {"baseline": name, "difference": difference, "ci95": half_width}


def _training_record(model) -> dict:
    """Epochs, best epoch and training wall time of a torch model (the last fold's)."""
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if not hasattr(final, "best_iteration_"):
        return {}
    return {
        "epochs": int(final.n_iter_),
        "best_epoch": int(final.best_iteration_),
        "training_seconds": float(final.training_seconds_),
    }


def leaderboard(records: list[dict]) -> str:
    """A plain-text table of ``records``, best NDCG first."""
    rows = []
    for r in sorted(records, key=_rank_key):
        row = {"model": r["model"]}
        for key, value in r["metrics"].items():
            row[key] = f"{value:.4f} ± {r['ci95'][key]:.4f}"
        row["fit s"] = f"{r['fit_seconds']:.2f}"
        if "best_epoch" in r:
            row["best epoch"] = f"{r['best_epoch']}/{r['epochs']}"
            row["train s"] = f"{r['training_seconds']:.0f}"
        row["recommend s"] = f"{r['recommend_seconds']:.2f}"
        row["peak MiB"] = f"{r['peak_memory_mb']:.0f}"
        if "paired" in r:
            key = _main_metric(r)
            paired = r["paired"]
            row[f"{key} - {paired['baseline']}"] = (
                f"{paired['difference'][key]:+.4f} ± {paired['ci95'][key]:.4f}"
            )
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def _main_metric(record: dict) -> str:
    return next((k for k in record["metrics"] if k.startswith("ndcg")), "rmse")


def _rank_key(record: dict) -> float:
    """Best first: highest NDCG, or lowest RMSE for the ratings protocol."""
    key = _main_metric(record)
    return record["metrics"][key] * (1 if key == "rmse" else -1)


def _nan_to_none(value):
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_results(records: list[dict], out) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and, with matplotlib, ``results.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "results.csv"]
    # strict JSON: a figure that could not be measured (NaN) is null
    written[0].write_text(json.dumps(_nan_to_none(records), indent=2, default=str, allow_nan=False))
    flat = []
    for r in records:
        row = {key: r[key] for key in ("model", "dataset", "protocol")}
        for key, value in r["metrics"].items():
            row[key], row[f"{key}_ci95"] = value, r["ci95"][key]
        row.update({key: r[key] for key in ("fit_seconds", "recommend_seconds", "peak_memory_mb")})
        row.update(
            {key: r[key] for key in ("epochs", "best_epoch", "training_seconds") if key in r}
        )
        if "paired" in r:
            for key, value in r["paired"]["difference"].items():
                row[f"{key}_minus_{r['paired']['baseline']}"] = value
                row[f"{key}_minus_{r['paired']['baseline']}_ci95"] = r["paired"]["ci95"][key]
        row["params"] = json.dumps(r["params"], default=str)
        flat.append(row)
    pd.DataFrame(flat).to_csv(written[1], index=False)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib not installed; skipping results.png")
        return written
    key = _main_metric(records[0])
    fig, ax = plt.subplots(figsize=(6, 1.5 + 0.4 * len(records)))
    names = [r["model"] for r in records]
    ax.barh(
        names,
        [r["metrics"][key] for r in records],
        xerr=[r["ci95"][key] for r in records],
        color="tab:blue",
    )
    ax.set_xlabel(f"{key} (95% CI over {'folds' if key == 'rmse' else 'users'})")
    ax.set_title(f"{records[0]['dataset']} · {records[0]['protocol']}")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=100)
    plt.close(fig)
    written.append(out / "results.png")
    return written
