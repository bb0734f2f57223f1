"""skrec.save / skrec.load: round trips for every estimator, files that must not load."""

import hashlib
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline

import skrec
from skrec.datasets import make_interactions
from skrec.preprocessing import Binarize

SMALL = {
    "max_iter": 2,
    "n_factors": 8,
    "max_len": 10,
    "batch_size": 32,
    "random_state": 0,
}


def small(name, **extra):
    cls = getattr(skrec, name)
    params = {k: v for k, v in SMALL.items() if k in cls().get_params()}
    return cls(**params, **extra)


@pytest.fixture(scope="module")
def X():
    X = make_interactions(n_users=60, n_items=30, mean_events=8, random_state=3)
    X["user_id"] = "user-" + X.user_id.astype(str)  # string ids travel as JSON
    return X


@pytest.mark.parametrize("name", skrec.ESTIMATORS)
def test_round_trip_gives_the_same_recommendations(X, tmp_path, name):
    model = small(name).fit(X)
    path = skrec.save(model, tmp_path / f"{name}.skrec")
    again = skrec.load(path)
    assert type(again) is type(model) and again.get_params() == model.get_params()
    users = X.user_id.unique()[:15]
    items, scores = model.recommend(users, return_scores=True)
    items2, scores2 = again.recommend(users, return_scores=True)
    np.testing.assert_array_equal(items2, items)
    np.testing.assert_allclose(scores2, scores, rtol=1e-6)
    # context from history= (fold-in for ALS and MF, sequence encoders for the rest)
    history = X[X.user_id == users[0]].assign(user_id="someone new")
    np.testing.assert_array_equal(
        again.recommend(["someone new"], history=history),
        model.recommend(["someone new"], history=history),
    )
    np.testing.assert_allclose(again.predict(X.head(20)), model.predict(X.head(20)), rtol=1e-6)
    for attribute in ("n_iter_", "loss_curve_", "best_iteration_", "training_seconds_"):
        assert getattr(again, attribute, None) == getattr(model, attribute, None)
    # the loaded model is a normal estimator: it pickles and refits
    pickled = pickle.loads(pickle.dumps(again))
    np.testing.assert_array_equal(pickled.recommend(users), items)
    again.fit(X)


def test_numpy_scalar_parameters_round_trip_as_scalars(X, tmp_path):
    """GridSearchCV hands out numpy scalars (ParameterGrid over np.arange); they used to
    come back as 1-element arrays that broke loading, fold-in and refitting."""
    from sklearn.base import clone

    params = dict(n_factors=np.int64(4), learning_rate=np.float32(0.01), random_state=np.int64(0))
    model = skrec.MF(max_iter=2, **params).fit(X)
    loaded = skrec.load(skrec.save(model, tmp_path / "m.skrec"))
    for name, value in params.items():
        got = getattr(loaded, name)
        assert type(got) is type(value) and got == value, (name, got)
    history = X[X.user_id == X.user_id.iloc[0]].assign(user_id="new")
    np.testing.assert_array_equal(
        loaded.recommend(["new"], history=history), model.recommend(["new"], history=history)
    )
    clone(loaded).fit(X)


def test_the_device_reaches_the_fitted_parts(X, tmp_path):
    """load(device=) and set_params(device=) reach NeuMF's pre-trained parts too (they
    kept their saved device, e.g. a GPU the caller asked to stay off)."""
    model = small("NeuMF", pretrain=True, device="auto").fit(X)
    loaded = skrec.load(skrec.save(model, tmp_path / "n.skrec"), device="cpu")
    assert loaded.device == "cpu" and [p.device for p in loaded.pretrained_] == ["cpu", "cpu"]
    loaded.set_params(device="auto")
    assert [p.device for p in loaded.pretrained_] == ["auto", "auto"]


def test_unfitted_models_and_nested_parts_round_trip(X, tmp_path):
    unfitted = skrec.SASRec(n_factors=16, dropout=0.3, loss="gbce", checkpoint_dir=tmp_path)
    assert skrec.load(skrec.save(unfitted, tmp_path / "a.skrec")).get_params() == (
        unfitted.get_params()
    )
    seeded = skrec.MF(random_state=np.random.RandomState(7), device=torch.device("cpu"))
    again = skrec.load(skrec.save(seeded, tmp_path / "r.skrec"))
    assert again.device == torch.device("cpu")
    assert again.random_state.randint(10**9) == np.random.RandomState(7).randint(10**9)
    neumf = small("NeuMF", pretrain=True).fit(X)  # holds two fitted parts
    again = skrec.load(skrec.save(neumf, tmp_path / "b.skrec"))
    assert [type(p).__name__ for p in again.pretrained_] == ["NeuMF", "NeuMF"]
    users = X.user_id.unique()[:10]
    np.testing.assert_array_equal(again.recommend(users), neumf.recommend(users))


def test_approximate_index_and_bfloat16_weights_round_trip(X, tmp_path):
    model = small("MF", index="flat").fit(X)
    again = skrec.load(skrec.save(model, tmp_path / "mf.skrec"))
    assert hasattr(again, "_ann_index_")
    users = X.user_id.unique()[:10]
    np.testing.assert_array_equal(again.recommend(users), model.recommend(users))
    model.module_.to(torch.bfloat16)
    again = skrec.load(skrec.save(model, tmp_path / "bf16.skrec"))
    assert again.module_.user.weight.dtype == torch.bfloat16
    assert torch.equal(again.module_.user.weight, model.module_.user.weight)


def test_a_model_saved_for_a_gpu_loads_on_the_cpu(X, tmp_path):
    model = small("SASRec", device="cpu").fit(X)
    model.device = "mps" if torch.cuda.is_available() else "cuda"  # as if saved there
    if model.device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has both accelerators")
    path = skrec.save(model, tmp_path / "gpu.skrec")
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        again = skrec.load(path)
    assert again.device_ == torch.device("cpu")
    assert skrec.load(path, device="cpu").device == "cpu"
    users = X.user_id.unique()[:10]
    np.testing.assert_array_equal(again.recommend(users), model.recommend(users))


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members, *, fix_checksums=True):
    members = dict(members)
    if fix_checksums:
        members.pop("checksums.json")
        sums = {n: hashlib.sha256(d).hexdigest() for n, d in members.items()}
        members["checksums.json"] = json.dumps(sums).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def saved(X, tmp_path_factory):
    return skrec.save(small("MF").fit(X), tmp_path_factory.mktemp("saved") / "mf.skrec")


def test_truncated_and_foreign_files_fail_clearly(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        (tmp_path / "cut.skrec").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="Cannot load .*cut.skrec"):
            skrec.load(tmp_path / "cut.skrec")
    (tmp_path / "pickle.skrec").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a readable archive"):
        skrec.load(tmp_path / "pickle.skrec")
    with pytest.raises(FileNotFoundError):
        skrec.load(tmp_path / "absent.skrec")


def test_modified_files_fail_their_checksum(saved, tmp_path):
    members = _members(saved)
    array = next(n for n in members if n.startswith("arrays/"))
    flipped = bytearray(members[array])
    flipped[-1] ^= 1
    _write(tmp_path / "t.skrec", {**members, array: bytes(flipped)}, fix_checksums=False)
    with pytest.raises(ValueError, match=f"checksum of {array}"):
        skrec.load(tmp_path / "t.skrec")
    manifest = members["model.json"].replace(b'"n_factors": 8', b'"n_factors": 9')
    _write(tmp_path / "m.skrec", {**members, "model.json": manifest}, fix_checksums=False)
    with pytest.raises(ValueError, match="checksum of model.json"):
        skrec.load(tmp_path / "m.skrec")


def test_hostile_content_never_runs_or_loads(saved, tmp_path):
    """Files crafted with valid checksums: pickled arrays, foreign classes, wrong shapes."""
    members = _members(saved)
    manifest = json.loads(members["model.json"])
    array = next(n for n in members if n.startswith("arrays/"))
    buffer = io.BytesIO()
    np.save(buffer, np.array([print], dtype=object), allow_pickle=True)  # a pickle inside
    _write(tmp_path / "p.skrec", {**members, array: buffer.getvalue()})
    with pytest.raises(ValueError, match="not a plain array"):
        skrec.load(tmp_path / "p.skrec")

    for cls in ("os.system", "Pipeline", "BaseRecommender"):
        bad = {**manifest, "model": {**manifest["model"], "class": cls}}
        _write(tmp_path / "c.skrec", {**members, "model.json": json.dumps(bad).encode()})
        with pytest.raises(ValueError, match="not a skrec estimator"):
            skrec.load(tmp_path / "c.skrec")

    params = {**manifest["model"]["params"], "n_factors": 3}  # weights no longer fit
    bad = {**manifest, "model": {**manifest["model"], "params": params}}
    _write(tmp_path / "s.skrec", {**members, "model.json": json.dumps(bad).encode()})
    with pytest.raises(ValueError, match="weights do not fit"):
        skrec.load(tmp_path / "s.skrec")

    bad = {**manifest, "format_version": 99}
    _write(tmp_path / "v.skrec", {**members, "model.json": json.dumps(bad).encode()})
    with pytest.raises(ValueError, match="format 99.*Upgrade skrec"):
        skrec.load(tmp_path / "v.skrec")

    # malformed entries are ValueErrors too (they were KeyError, AttributeError, TypeError)
    model = manifest["model"]
    train = json.loads(json.dumps(model["state"]["_train"]))
    train["fields"]["items"]["n_users"] = "x"
    for label, entry, match in [  # label: named in the failure message
        ("no model", None, "model entry is not a mapping"),
        ("a list", [1, 2], "model entry is not a mapping"),
        ("bad n_factors", {**model, "params": {**model["params"], "n_factors": "four"}}, "fit"),
        (
            "bad state",
            {**model, "state": {**model["state"], "_train": train}},
            "cannot build the network",
        ),
    ]:
        bad = {k: v for k, v in manifest.items() if k != "model"}
        if entry is not None:
            bad["model"] = entry
        _write(tmp_path / "m.skrec", {**members, "model.json": json.dumps(bad).encode()})
        with pytest.raises(ValueError, match=match):
            skrec.load(tmp_path / "m.skrec")
            pytest.fail(f"{label}: loaded")


def test_save_refuses_what_it_cannot_store_safely(X, tmp_path):
    with pytest.raises(TypeError, match="pickle or joblib"):
        skrec.save(make_pipeline(Binarize(), skrec.Popular()), tmp_path / "p.skrec")
    model = skrec.Popular().fit(X)
    model.extra_ = lambda: None
    with pytest.raises(TypeError, match="cannot store Popular.extra_"):
        skrec.save(model, tmp_path / "f.skrec")
    assert not list(tmp_path.iterdir()), "a failed save leaves no file behind"


def test_save_replaces_atomically(X, tmp_path):
    path = tmp_path / "m.skrec"
    skrec.save(skrec.Popular().fit(X), path)
    skrec.save(small("EASE").fit(X), path)
    assert isinstance(skrec.load(path), skrec.EASE)
    assert [p.name for p in tmp_path.iterdir()] == ["m.skrec"]


def test_a_file_of_another_network_is_refused(X, tmp_path, monkeypatch):
    """SASRec's network changed in stop 17 under the same weight names: a file written
    before (no network named) must not load the old weights into the new network."""
    model = small("SASRec").fit(X)
    current = skrec.load(skrec.save(model, tmp_path / "now.skrec"))
    np.testing.assert_array_equal(current.recommend(X.user_id[:5]), model.recommend(X.user_id[:5]))
    monkeypatch.setattr(skrec.SASRec, "_architecture", None)  # as an older skrec wrote it
    old = skrec.save(model, tmp_path / "old.skrec")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="network 'of an earlier skrec'.*Refit"):
        skrec.load(old)
