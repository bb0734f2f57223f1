"""Compare settings of a configured sequential model on the validation event only.

A sequential model fit with ``early_stopping=True, validation_fraction=1.0`` holds out
every user's last training event (the one before the test event) and keeps the epoch
with the best NDCG@10 on it. This script cuts the P1 test event off first, then fits
the dataset's configured model once per setting and prints each fit's best validation
NDCG@10, its epoch and its time. The test event is never scored: the setting with the
best validation figure is the one to write into ``skrec/configs/<dataset>.json``.

    SKREC_DATA=../shared/data python benchmarks/sequence_validation.py ml-100k \\
        GRU4Rec-gbce n_factors=128 dropout=0.3 n_factors=128,dropout=0.3

Each argument after the model is one setting: comma-separated ``name=value`` pairs
(values read as JSON) laid over the configured parameters. ``base`` is the configured
model itself.
"""

from __future__ import annotations

import argparse
import json
import time

from sklearn.base import clone

from skrec.bench import _prepare, load_config, make_model


def parse_setting(text: str) -> dict:
    """``"a=1,b=0.3"`` -> ``{"a": 1, "b": 0.3}``; ``"base"`` -> ``{}``."""
    if text == "base":
        return {}
    setting = {}
    for pair in text.split(","):
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"Setting {pair!r} is not name=value (or 'base').")
        try:
            setting[name] = json.loads(value)
        except json.JSONDecodeError:
            setting[name] = value  # a bare string such as loss=softmax
    return setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("model", help="a model name in the dataset's config")
    parser.add_argument("settings", nargs="+", help="name=value[,name=value] or 'base'")
    args = parser.parse_args()

    configured = make_model(args.model, load_config(args.dataset).get(args.model))
    params = configured.get_params(deep=False)
    if not (params.get("early_stopping") and params.get("validation_fraction") == 1.0):
        raise SystemExit(f"{args.model} must stop early on each user's last training event.")
    [(train, _, _)] = _prepare(args.dataset, "leave-last-out", None, 0)
    print(f"{args.dataset} {args.model}: {train.user_id.nunique()} users, {len(train)} events")
    for text in args.settings:
        model = clone(configured).set_params(**parse_setting(text))
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        best = model.best_iteration_  # the epoch whose weights the fit restored
        print(
            f"{text}: validation NDCG@10 {model.validation_scores_[best - 1]:.4f} at "
            f"epoch {best} of {model.n_iter_}, {seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
