"""Published-number checks on real data, with the tuned configs (quick enough for CI)."""

import pytest

from skrec.bench import run_bench

from ..conftest import data_folder

pytestmark = pytest.mark.slow


def test_p2_ease_and_als_reach_the_anchors():
    home = data_folder("ml-1m-ncf").parent
    records = run_bench("ml-1m-ncf", ["EASE", "ALS"], protocol="ncf", data_home=home, verbose=False)
    hr = {r["model"]: r["metrics"]["hr@10"] for r in records}
    assert hr["EASE"] >= 0.718 and hr["ALS"] >= 0.711, hr


def test_p1_ml_100k_als_reaches_the_anchor_and_ease_slim_beat_popular():
    home = data_folder("ml-100k").parent
    records = run_bench(
        "ml-100k", ["Popular", "EASE", "ALS", "SLIM"], data_home=home, verbose=False
    )
    ndcg = {r["model"]: r["metrics"]["ndcg@10"] for r in records}
    assert ndcg["ALS"] >= 0.0724, ndcg
    assert min(ndcg["EASE"], ndcg["SLIM"]) > 1.5 * ndcg["Popular"], ndcg
