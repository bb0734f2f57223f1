"""Published-number checks on real data, with the tuned configs (quick enough for CI)."""

import pytest

from skrec import EASE
from skrec.bench import load_config, make_model, run_bench

from ..conftest import data_folder

pytestmark = pytest.mark.slow


def test_p2_als_reaches_its_anchor_and_ease_reproduces_its_own():
    # ALS with its tuned configuration; EASE at the anchor's own lambda=1000, which
    # defines the 0.7182 anchor (the tuned lambda, chosen on the latest training pair,
    # is 2000 and lands at 0.7151, under it: docs/benchmarks.md).
    home = data_folder("ml-1m-ncf").parent
    data_folder("ml-1m-seq")
    models = {"ALS": make_model("ALS", load_config("ml-1m-ncf")["ALS"]), "EASE": EASE(1000.0)}
    records = run_bench("ml-1m-ncf", models, protocol="ncf", data_home=home, verbose=False)
    hr = {r["model"]: r["metrics"]["hr@10"] for r in records}
    assert hr["ALS"] >= 0.711, hr
    assert hr["EASE"] == pytest.approx(0.7182, abs=5e-4), hr


def test_p1_ml_100k_als_reaches_the_anchor_and_ease_slim_beat_popular():
    home = data_folder("ml-100k").parent
    records = run_bench(
        "ml-100k", ["Popular", "EASE", "ALS", "SLIM"], data_home=home, verbose=False
    )
    ndcg = {r["model"]: r["metrics"]["ndcg@10"] for r in records}
    assert ndcg["ALS"] >= 0.0724, ndcg
    assert min(ndcg["EASE"], ndcg["SLIM"]) > 1.5 * ndcg["Popular"], ndcg
