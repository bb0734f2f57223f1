"""The real `skrec` command, run as a user would."""

import json
import os
import shutil
import subprocess

import pytest

from .conftest import data_folder

SKREC = shutil.which("skrec")
pytestmark = pytest.mark.skipif(SKREC is None, reason="the skrec command is not installed")


def run(*args, env=None):
    return subprocess.run(
        [SKREC, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_bench_default_runs_offline_and_writes_results(tmp_path):
    done = run("bench", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Popular" in done.stdout and "ndcg@10" in done.stdout
    records = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in records] == ["Popular", "Random"]
    for record in records:
        assert set(record) >= {
            "model",
            "dataset",
            "protocol",
            "params",
            "metrics",
            "fit_seconds",
            "recommend_seconds",
            "peak_memory_mb",
        }
        assert set(record["metrics"]) == {"hr@10", "ndcg@10"}
        assert record["dataset"] == "synthetic" and record["protocol"] == "leave-last-out"
    by_name = {r["model"]: r["metrics"]["ndcg@10"] for r in records}
    assert by_name["Popular"] > by_name["Random"]
    assert (tmp_path / "results.csv").read_text().startswith("model,dataset,protocol")
    assert (tmp_path / "results.png").stat().st_size > 1000


def bench_records(folder, tmp_path, *args):
    """Run `skrec bench` on a shared dataset folder; return its records by model name."""
    home = data_folder(folder).parent
    done = run("bench", *args, "--out", str(tmp_path), "--quiet", env={"SKREC_DATA": str(home)})
    assert done.returncode == 0, done.stderr
    records = json.loads((tmp_path / "results.json").read_text())
    return {record["model"]: record for record in records}


def bench_on_shared_data(folder, tmp_path, *args):
    """Run `skrec bench` on a shared dataset folder; return its first result record."""
    return next(iter(bench_records(folder, tmp_path, *args).values()))


def test_bench_ml_100k_reproduces_popular(tmp_path):
    record = bench_on_shared_data(
        "ml-100k", tmp_path, "--dataset", "ml-100k", "--models", "Popular"
    )
    assert record["metrics"]["ndcg@10"] == pytest.approx(0.0449, abs=0.002)


def test_bench_ncf_protocol(tmp_path):
    data_folder("ml-1m-seq")  # the protocol puts the training pairs in its time order
    record = bench_on_shared_data(
        "ml-1m-ncf", tmp_path, "--dataset", "ml-1m-ncf", "--protocol", "ncf", "--models", "Popular"
    )
    assert record["metrics"]["hr@10"] == pytest.approx(0.4538, abs=0.001)


def test_bench_csv_and_pipeline_config(tmp_path):
    from skrec.datasets import make_interactions

    make_interactions(n_users=80, n_items=40, random_state=0).to_csv(
        tmp_path / "x.csv", index=False
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "models": {
                    "PopKCore": {
                        "steps": [["KCoreFilter", {"min_user_events": 3}], ["Popular", {}]]
                    }
                }
            }
        )
    )
    done = run(
        "bench",
        "--dataset",
        str(tmp_path / "x.csv"),
        "--models",
        "PopKCore",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert "PopKCore" in done.stdout


def test_bench_paired_difference_against_a_baseline(tmp_path):
    done = run("bench", "--out", str(tmp_path), "--quiet", "--baseline", "Popular")
    assert done.returncode == 0, done.stderr
    assert "ndcg@10 - Popular" in done.stdout
    records = {r["model"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    own = records["Popular"]["paired"]
    assert own["difference"]["ndcg@10"] == 0.0 and own["ci95"]["ndcg@10"] == 0.0
    random = records["Random"]
    expected = random["metrics"]["ndcg@10"] - records["Popular"]["metrics"]["ndcg@10"]
    assert random["paired"]["difference"]["ndcg@10"] == pytest.approx(expected)
    assert random["paired"]["ci95"]["ndcg@10"] > 0
    assert "ndcg@10_minus_Popular" in (tmp_path / "results.csv").read_text()
    bad = run("bench", "--out", str(tmp_path), "--quiet", "--baseline", "EASE")
    assert bad.returncode == 2 and "baseline='EASE' must be one of" in bad.stderr


def test_bench_errors_are_clear(tmp_path):
    done = run("bench", "--models", "NoSuchModel", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "Unknown model 'NoSuchModel'" in done.stderr
    done = run("bench", "--dataset", "synthetic", "--protocol", "ncf", "--quiet")
    assert done.returncode == 2 and "ml-1m-ncf only" in done.stderr
    done = run("bench", "--models", ",", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "no models to run" in done.stderr
    # names that are not estimators, configs that would be silently ignored
    done = run("bench", "--models", "BaseRecommender", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "Unknown model 'BaseRecommender'" in done.stderr
    missing = tmp_path / "missing.json"
    done = run("bench", "--config", str(missing), "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "is not a file" in done.stderr
    flat = tmp_path / "flat.json"
    flat.write_text('{"EASE": {"l2_reg": 1e9}}')
    done = run("bench", "--config", str(flat), "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and '"models" mapping' in done.stderr
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    done = run("bench", "--out", str(a_file), "--quiet")
    assert done.returncode == 2 and "is a file" in done.stderr
    done = run("bench", "--dataset", "ml-1m-ncf", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "--protocol ncf" in done.stderr


def test_intervals_use_students_t_and_results_are_strict_json(tmp_path):
    """Five folds (the ratings protocol) need t(4) = 2.776, not 1.96; a figure that could
    not be measured is written as null, not as the NaN that JSON does not have."""
    import numpy as np

    from skrec.bench import _summary, run_bench, write_results

    folds = np.array([0.90, 0.92, 0.91, 0.93, 0.89])
    mean, half = _summary(folds)
    assert mean == pytest.approx(0.91)
    assert half == pytest.approx(2.7764 * folds.std(ddof=1) / np.sqrt(5), rel=1e-4)
    records = run_bench("synthetic", ["Popular"], verbose=False)
    records[0]["peak_memory_mb"] = float("nan")
    write_results(records, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved[0]["peak_memory_mb"] is None and saved[0]["n_users"] == records[0]["n_users"]


def test_bench_session_protocol_and_checkpoint_resume(tmp_path):
    config = tmp_path / "config.json"
    gru = {"n_factors": 16, "max_len": 10, "max_iter": 3, "random_state": 0}
    config.write_text(json.dumps({"models": {"Popular": {}, "GRU4Rec": gru}}))
    args = ["--dataset", "diginetica", "--protocol", "session", "--k", "20"]
    args += ["--models", "Popular,GRU4Rec", "--config", str(config)]
    args += ["--checkpoint-dir", str(tmp_path / "ckpt")]
    first = bench_records("diginetica-sample", tmp_path / "a", *args)
    popular, gru4rec = first["Popular"], first["GRU4Rec"]
    assert popular["n_users"] == 102  # next-item cases of SR-GNN's preprocessing
    assert popular["metrics"]["hr@20"] == pytest.approx(5 / 102)
    assert set(gru4rec["metrics"]) == {"hr@20", "mrr@20", "ndcg@20"}
    assert gru4rec["epochs"] == 3 and gru4rec["training_seconds"] > 0
    # the same command again: the fit resumes from the finished checkpoint
    again = bench_records("diginetica-sample", tmp_path / "b", *args)["GRU4Rec"]
    assert again["metrics"] == gru4rec["metrics"]
    assert again["training_seconds"] == gru4rec["training_seconds"]
