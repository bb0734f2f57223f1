"""Tune the SGD rate that fine-tunes a pre-trained NeuMF on P2's validation pair.

The paper's recipe: the GMF and MLP parts trained with Adam (here the ml-1m-ncf NeuMF
config), then the fused model, started from them, trained with plain SGD. The parts
do not depend on the fine-tuning rate, so they are fitted once and reused across the
grid (GridSearchCV would refit them for every candidate). Validation as in
benchmarks/tune.py: the training pairs in time order, each user's latest held out by
LeaveLastOut and ranked among 99 sampled negatives. The best rate is stored as
the "NeuMF-pretrain" entry of skrec/configs/ml-1m-ncf.json.

    SKREC_DATA=../shared/data python benchmarks/neumf_finetune.py 0.001,0.01,0.1,1,2,4,8
"""

from __future__ import annotations

import json
import sys
import time

from sklearn.model_selection import GridSearchCV

import skrec
from skrec.bench import CONFIG_DIR
from skrec.datasets import load_ml_1m_ncf
from skrec.model_selection import LeaveLastOut, ranking_scorer
from skrec.models import factorization


def main(rates: list[float]) -> None:
    path = CONFIG_DIR / "ml-1m-ncf.json"
    config = json.loads(path.read_text())
    parts = config["models"]["NeuMF"]
    train = load_ml_1m_ncf(order="time").train
    fitted = {}
    fit_part = factorization.NeuMF._fit_part

    def reused(self, part, data, y):  # one fit per part and training fold
        key = (part.interaction, len(data), data.n_users)
        if key not in fitted:
            fitted[key] = fit_part(self, part, data, y)
        return fitted[key]

    factorization.NeuMF._fit_part = reused
    grid = {name: [value] for name, value in parts.items()}
    grid.update(
        pretrain=[True],
        pretrain_params=[{"optimizer": "adam", "learning_rate": parts["learning_rate"]}],
        optimizer=["sgd"],
        learning_rate=rates,
    )
    start = time.perf_counter()
    search = GridSearchCV(
        skrec.NeuMF(),
        grid,
        cv=LeaveLastOut(),
        scoring=ranking_scorer("hr", k=10, protocol="sampled", n_negatives=99),
        refit=False,
    ).fit(train)
    print(f"{time.perf_counter() - start:.0f} s")
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
    ):
        print(f"    {score:.4f} learning_rate={params['learning_rate']}")
    config["models"]["NeuMF-pretrain"] = {"estimator": "NeuMF", "params": search.best_params_}
    config["tuning"]["NeuMF-pretrain"] = {
        "validation_score": round(float(search.best_score_), 4),
        "grid": grid,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


if __name__ == "__main__":
    main([float(rate) for rate in sys.argv[1].split(",")])
