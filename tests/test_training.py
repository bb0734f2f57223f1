"""The shared training loop: seeding, curves, early stopping, faults, devices, pickles."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skrec import MF, BERT4Rec, GRU4Rec, Item2Vec, NeuMF, SASRec
from skrec.datasets import make_interactions
from skrec.training import InterruptedFitWarning, _Checkpoint


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=100, n_items=40, mean_events=10, random_state=1)


def test_curves_and_iterations(X):
    model = MF(n_factors=8, max_iter=4, random_state=0).fit(X)
    assert len(model.loss_curve_) == model.n_iter_ == model.best_iteration_ == 4
    assert model.validation_scores_ is None
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_same_seed_same_model_and_global_rng_untouched(X):
    state = torch.random.get_rng_state()
    a = MF(n_factors=8, max_iter=3, random_state=5).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = MF(n_factors=8, max_iter=3, random_state=5).fit(X)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    users = X.user_id.unique()[:20]
    np.testing.assert_array_equal(a.recommend(users), b.recommend(users))
    c = MF(n_factors=8, max_iter=3, random_state=6).fit(X)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


class _Scripted(MF):
    """MF whose validation scores are scripted, recording the weights of every epoch."""

    script = (0.1, 0.4, 0.2, 0.3, 0.35, 0.5)

    def _validation_ndcg(self, context, targets, k=10):
        self.snapshots_.append(self.module_.item.weight.detach().clone())
        return self.script[len(self.snapshots_) - 1]

    def _fit(self, data, y):
        self.snapshots_ = []
        super()._fit(data, y)


def test_a_cpu_fit_never_reseeds_accelerator_generators(X, monkeypatch):
    """torch.manual_seed reseeds every CUDA (and MPS) generator, which a CPU fit neither
    uses nor restores: a fit must seed only what it puts back."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    first = MF(n_factors=4, max_iter=1, device="cpu", random_state=0).fit(X)
    again = MF(n_factors=4, max_iter=1, device="cpu", random_state=0).fit(X)
    assert calls == []
    torch.testing.assert_close(first.module_.user.weight, again.module_.user.weight)


def test_early_stopping_restores_the_best_epoch(X):
    model = _Scripted(n_factors=8, max_iter=6, early_stopping=True, n_iter_no_change=2)
    model.set_params(random_state=0).fit(X)
    assert model.n_iter_ == 4  # best at 2, then two epochs without improvement
    assert model.best_iteration_ == 2
    assert model.validation_scores_ == [0.1, 0.4, 0.2, 0.3]
    assert torch.equal(model.module_.item.weight, model.snapshots_[1])
    assert not torch.equal(model.module_.item.weight, model.snapshots_[-1])


def test_early_stopping_on_real_validation_holds_events_out(X):
    model = MF(n_factors=8, max_iter=3, early_stopping=True, random_state=0).fit(X)
    assert len(model.validation_scores_) == model.n_iter_
    assert all(0 <= s <= 1 for s in model.validation_scores_)
    assert model.best_iteration_ == 1 + int(np.argmax(model.validation_scores_))
    # the held-out events still count as seen
    users = X.user_id.unique()
    recs = model.recommend(users, k=5)
    seen = X.groupby("user_id").item_id.apply(set)
    assert not any(set(r) & seen[u] for u, r in zip(users, recs))


def test_diverging_loss_is_a_clear_error(X):
    ratings = np.full(len(X), 1e30)
    model = MF(loss="mse", max_iter=2, learning_rate=1e10, random_state=0)
    with pytest.raises(ValueError, match="diverged.*lower learning_rate"):
        model.fit(X, ratings)
    assert not hasattr(model, "module_")


def test_pickle_lands_on_cpu_and_gives_the_same_output(X):
    model = MF(n_factors=8, max_iter=2, random_state=0).fit(X)
    again = pickle.loads(pickle.dumps(model))
    assert all(p.device.type == "cpu" for p in again.module_.parameters())
    users = X.user_id.unique()[:10]
    np.testing.assert_array_equal(again.recommend(users), model.recommend(users))


def test_set_params_device_after_fit(X):
    model = MF(n_factors=8, max_iter=1, device="cpu", random_state=0).fit(X)
    model.set_params(device="cpu")
    assert model.device_ == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no cuda device is available"):
            model.set_params(device="cuda")
        with pytest.raises(ValueError, match="no cuda device"):
            MF(device="cuda").fit(X)
    with pytest.raises(ValueError, match="not a torch device"):
        MF(device="gpu-please").fit(X)


def test_the_pickled_cpu_copy_is_whole_and_apart(X):
    """__getstate__ copies a GPU module tensor by tensor to the CPU (no second GPU copy):
    the copy must hold the same values in its own storage, keep tied weights tied and
    keep requires_grad (checked on a CPU module; the gpu tests pickle from CUDA)."""
    from skrec.training import _cpu_copy

    module = SASRec(max_iter=1, **SEQ_PARAMS).fit(X).module_
    copied = _cpu_copy(module)
    original, again = module.state_dict(), copied.state_dict()
    assert original.keys() == again.keys()
    for name, value in original.items():
        torch.testing.assert_close(again[name], value, rtol=0, atol=0)
        assert again[name].data_ptr() != value.data_ptr(), name
    assert len(list(copied.parameters())) == len(list(module.parameters()))  # ties kept
    assert [p.requires_grad for p in copied.parameters()] == [
        p.requires_grad for p in module.parameters()
    ]


def test_a_refused_device_change_leaves_the_model_as_it_was(X):
    model = MF(n_factors=8, max_iter=1, device="cpu", random_state=0).fit(X)
    users = X.user_id.unique()[:5]
    before = model.recommend(users)
    with pytest.raises(ValueError, match="not a torch device"):
        model.set_params(device="tpu-please", max_iter=3)
    assert model.device == "cpu" and model.max_iter == 1
    again = pickle.loads(pickle.dumps(model))  # used to fail on the refused device
    np.testing.assert_array_equal(again.recommend(users), before)
    clone(model).fit(X)


def test_a_missing_cuda_index_loads_on_the_cpu(X, monkeypatch):
    """Saved for cuda:1, loaded where there is one GPU: a warning and the CPU (simulated:
    the probes say one CUDA device; no tensor is moved to it)."""
    model = MF(n_factors=8, max_iter=1, device="cpu", random_state=0).fit(X)
    model.device = "cuda:1"
    blob = pickle.dumps(model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        again = pickle.loads(blob)
    assert again.device_ == torch.device("cpu")
    with pytest.raises(ValueError, match="1 CUDA device"):  # a fit still refuses it
        clone(again).fit(X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    "model",
    [
        MF(n_factors=8, max_iter=2),
        MF(n_factors=8, max_iter=2, loss="bpr", sampler="hard"),  # scores ranked on the CPU
        NeuMF(n_factors=8, layers=(16, 8), max_iter=2),
        Item2Vec(n_factors=8, max_iter=2),
        SASRec(n_factors=8, max_len=10, max_iter=2),
        SASRec(n_factors=8, max_len=10, max_iter=2, loss="bce"),
        BERT4Rec(n_factors=8, max_len=10, max_iter=2),
        GRU4Rec(n_factors=8, max_len=10, max_iter=2),
    ],
    ids=lambda m: (
        f"{type(m).__name__}-{m.get_params().get('loss', '')}"
        + ("-hard" if m.get_params().get("sampler") == "hard" else "")
    ),
)
def test_cuda_fit_pickles_to_cpu_and_moves(X, model):
    model = clone(model).set_params(device="cuda", random_state=0).fit(X)
    assert all(p.device.type == "cuda" for p in model.module_.parameters())
    users = X.user_id.unique()[:10]
    on_gpu = model.recommend(users)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.recommend(users), on_gpu)
    again.set_params(device="cpu")
    assert all(p.device.type == "cpu" for p in again.module_.parameters())
    np.testing.assert_array_equal(again.recommend(users), on_gpu)


def test_a_model_saved_for_a_missing_accelerator_loads_on_cpu(X):
    model = MF(n_factors=8, max_iter=1, device="cpu", random_state=0).fit(X)
    model.device = "cuda" if not torch.cuda.is_available() else "mps"  # as if saved there
    if model.device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has both accelerators")
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        again = pickle.loads(pickle.dumps(model))
    assert again.device_ == torch.device("cpu")
    np.testing.assert_array_equal(again.recommend([X.user_id[0]]), model.recommend([X.user_id[0]]))


# ------------------------------------------------------------------ checkpoints
def _interrupt_after(model, n_epochs, error=KeyboardInterrupt):
    """Make ``model`` raise ``error`` after the first batch of epoch ``n_epochs + 1``."""
    calls = {"n": 0}
    batches = model._batches

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        for number, batch in enumerate(batches(*args, **kwargs)):
            if calls["n"] > n_epochs and number == 1:
                raise error
            yield batch

    model._batches = interrupting
    return model


SEQ_PARAMS = dict(max_len=10, n_factors=8, random_state=0, device="cpu", batch_size=16)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_crashed_fit_resumes_from_its_checkpoint(X, tmp_path, early_stopping):
    params = dict(SEQ_PARAMS, max_iter=5, early_stopping=early_stopping, n_iter_no_change=10)
    whole = SASRec(**params).fit(X)
    crashed = _interrupt_after(SASRec(checkpoint_dir=tmp_path, **params), 3, RuntimeError)
    with pytest.raises(RuntimeError):
        crashed.fit(X)
    assert not hasattr(crashed, "module_"), "a failed fit leaves the previous state"
    assert len(list(tmp_path.glob("SASRec-*.pt"))) == 1
    resumed = SASRec(checkpoint_dir=tmp_path, **params).fit(X)
    assert resumed.loss_curve_ == whole.loss_curve_
    assert resumed.validation_scores_ == whole.validation_scores_
    assert resumed.best_iteration_ == whole.best_iteration_
    for name, value in whole.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[name], value, rtol=0, atol=0)


def test_ctrl_c_keeps_the_last_complete_epoch_with_a_warning(X):
    three = SASRec(max_iter=3, **SEQ_PARAMS).fit(X)
    model = _interrupt_after(SASRec(max_iter=10, **SEQ_PARAMS), 3)
    with pytest.warns(InterruptedFitWarning, match="interrupted in epoch 4.*epoch 3"):
        model.fit(X)
    assert model.n_iter_ == 3 and model.loss_curve_ == three.loss_curve_
    assert not model.module_.training
    for name, value in three.module_.state_dict().items():
        torch.testing.assert_close(model.module_.state_dict()[name], value, rtol=0, atol=0)
    users = X.user_id.unique()[:20]
    np.testing.assert_array_equal(model.recommend(users), three.recommend(users))


def test_ctrl_c_with_validation_keeps_the_best_epoch_so_far(X):
    params = dict(SEQ_PARAMS, early_stopping=True, n_iter_no_change=50)
    four = SASRec(max_iter=4, **params).fit(X)
    model = _interrupt_after(SASRec(max_iter=10, **params), 4)
    with pytest.warns(InterruptedFitWarning, match="best validated"):
        model.fit(X)
    assert model.validation_scores_ == four.validation_scores_
    assert model.best_iteration_ == four.best_iteration_ and model.n_iter_ == 4
    for name, value in four.module_.state_dict().items():
        torch.testing.assert_close(model.module_.state_dict()[name], value, rtol=0, atol=0)


def test_ctrl_c_while_copying_a_new_best_keeps_the_old_best_whole(X, monkeypatch):
    """The copy of a large model takes time: a Ctrl-C during it must keep the previous
    best with its own epoch, not label it with the new one."""
    import skrec.training as training

    params = dict(n_factors=4, early_stopping=True, validation_fraction=1.0, random_state=0)
    one = MF(max_iter=1, n_iter_no_change=50, **params).fit(X)
    calls, snapshot = {"n": 0}, training._snapshot

    def interrupted_copy(module):
        calls["n"] += 1
        if calls["n"] == 2:  # the copy of epoch 2's weights
            raise KeyboardInterrupt
        return snapshot(module)

    monkeypatch.setattr(training, "_snapshot", interrupted_copy)
    model = MF(max_iter=3, n_iter_no_change=50, **params)
    with pytest.warns(InterruptedFitWarning, match="weights of epoch 1"):
        model.fit(X)
    assert model.n_iter_ == model.best_iteration_ == 1
    assert model.validation_scores_ == one.validation_scores_
    np.testing.assert_array_equal(model.user_factors_, one.user_factors_)


def test_the_interrupted_fit_warning_points_at_the_callers_fit(X):
    model = _interrupt_after(Item2Vec(n_factors=4, max_iter=3, random_state=0), 1)
    with pytest.warns(InterruptedFitWarning) as caught:
        model.fit(X)
    assert caught[0].filename == __file__  # not skrec/base.py


def test_ctrl_c_in_the_first_epoch_leaves_the_previous_model(X):
    model = SASRec(max_iter=2, **SEQ_PARAMS).fit(X)
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    curve, users = list(model.loss_curve_), X.user_id.unique()[:20]
    expected = model.recommend(users)
    _interrupt_after(model, 0)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(n_factors=16).fit(X)
    assert model.loss_curve_ == curve and model.module_.items.embedding_dim == 8
    for name, value in before.items():
        torch.testing.assert_close(model.module_.state_dict()[name], value, rtol=0, atol=0)
    np.testing.assert_array_equal(model.recommend(users), expected)


def test_checkpoints_are_per_parameters_and_unreadable_ones_are_reported(X, tmp_path):
    MF(n_factors=4, max_iter=2, random_state=0, checkpoint_dir=tmp_path).fit(X)
    MF(n_factors=8, max_iter=2, random_state=0, checkpoint_dir=tmp_path).fit(X)
    files = sorted(tmp_path.glob("MF-*.pt"))
    assert len(files) == 2
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    files[1].write_bytes(b"not a checkpoint")
    for n_factors in (4, 8):
        with pytest.raises(ValueError, match="cannot be read.*Delete it"):
            MF(n_factors=n_factors, max_iter=2, random_state=0, checkpoint_dir=tmp_path).fit(X)


def test_a_checkpoint_of_another_network_is_not_resumed(X, tmp_path, monkeypatch):
    """A network changed without a parameter to say so (SASRec's encoder in stop 17)
    names itself in the fingerprint: the same parameters then start afresh instead of
    loading the other network's weights."""
    params = dict(SEQ_PARAMS, max_iter=2)
    SASRec(checkpoint_dir=tmp_path, **params).fit(X)
    monkeypatch.setattr(SASRec, "_architecture", "another-network")
    model = SASRec(checkpoint_dir=tmp_path, **params).fit(X)
    assert len(list(tmp_path.glob("SASRec-*.pt"))) == 2 and model.n_iter_ == 2
    monkeypatch.setattr(SASRec, "_architecture", None)  # a model that names none
    SASRec(checkpoint_dir=tmp_path, **params).fit(X)
    assert len(list(tmp_path.glob("SASRec-*.pt"))) == 3


def test_a_checkpoint_is_per_ratings(X, tmp_path):
    """``y`` is part of the fit: a finished fit on other ratings is not handed back."""
    params = dict(loss="mse", n_factors=4, max_iter=2, random_state=0, checkpoint_dir=tmp_path)
    rng = np.random.default_rng(0)
    first, second = rng.integers(1, 6, len(X)), rng.integers(1, 6, len(X))
    MF(**params).fit(X, first)
    model = MF(**params).fit(X, second)
    assert len(list(tmp_path.glob("MF-*.pt"))) == 2
    direct = MF(**dict(params, checkpoint_dir=None)).fit(X, second)
    assert model.loss_curve_ == direct.loss_curve_


@pytest.mark.parametrize("random_state", [None, np.random.RandomState(0)])
def test_checkpoints_need_an_integer_random_state(X, tmp_path, random_state):
    """Without a fixed seed a resumed fit would validate on another split (None) or never
    find its checkpoint (a RandomState's repr changes): refused, before any training."""
    model = MF(n_factors=4, max_iter=2, random_state=0).fit(X)
    curve = list(model.loss_curve_)
    model.set_params(random_state=random_state, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_dir needs an integer random_state"):
        model.fit(X)
    assert model.loss_curve_ == curve and not list(tmp_path.iterdir())


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_while_saving_a_checkpoint_keeps_that_epoch(
    X, tmp_path, monkeypatch, early_stopping
):
    """The epoch being saved is complete: its weights, curves and count stay together."""
    params = dict(SEQ_PARAMS, early_stopping=early_stopping, n_iter_no_change=50)
    three = SASRec(max_iter=3, **params).fit(X)
    save = _Checkpoint.save

    def interrupted_save(self, module, optimizer, generator, epoch, *args):
        if epoch == 3:
            raise KeyboardInterrupt
        return save(self, module, optimizer, generator, epoch, *args)

    monkeypatch.setattr(_Checkpoint, "save", interrupted_save)
    model = SASRec(max_iter=10, checkpoint_dir=tmp_path, **params)
    with pytest.warns(InterruptedFitWarning, match="interrupted in epoch 3"):
        model.fit(X)
    assert model.n_iter_ == 3 and model.loss_curve_ == three.loss_curve_
    assert model.validation_scores_ == three.validation_scores_
    assert model.best_iteration_ == three.best_iteration_ <= model.n_iter_
    if not early_stopping:
        for name, value in three.module_.state_dict().items():
            torch.testing.assert_close(model.module_.state_dict()[name], value, rtol=0, atol=0)


def test_a_checkpoint_past_max_iter_is_refused_not_handed_back(X, tmp_path):
    """A 2-epoch fit cannot be taken from a 4-epoch checkpoint: a clear error, not the
    longer model (it used to come back with n_iter_=4 > max_iter)."""
    params = dict(n_factors=4, random_state=0, checkpoint_dir=tmp_path)
    MF(max_iter=4, **params).fit(X)
    with pytest.raises(ValueError, match="holds 4 epochs, more than max_iter=2"):
        MF(max_iter=2, **params).fit(X)
    assert MF(max_iter=4, **params).fit(X).n_iter_ == 4  # the checkpoint is kept


def test_the_same_events_without_timestamps_are_another_fit(X, tmp_path):
    """Timestamps decide the validation split (the last event, not a random one)."""
    params = dict(n_factors=4, early_stopping=True, random_state=0, checkpoint_dir=tmp_path)
    timed = X.sort_values(["user_id", "timestamp"], kind="stable")
    MF(max_iter=2, **params).fit(timed)
    untimed = timed.drop(columns="timestamp")
    model = MF(max_iter=3, **params).fit(untimed)
    direct = MF(max_iter=3, **dict(params, checkpoint_dir=None)).fit(untimed)
    assert model.validation_scores_ == direct.validation_scores_
    assert len(list(tmp_path.glob("MF-*.pt"))) == 2


def test_a_finished_checkpointed_fit_extends_with_more_epochs(X, tmp_path):
    params = SEQ_PARAMS
    direct = SASRec(max_iter=5, **params).fit(X)
    SASRec(max_iter=3, checkpoint_dir=tmp_path, **params).fit(X)
    extended = SASRec(max_iter=5, checkpoint_dir=tmp_path, **params).fit(X)
    assert extended.n_iter_ == 5 and extended.loss_curve_ == direct.loss_curve_
    for name, value in direct.module_.state_dict().items():
        torch.testing.assert_close(extended.module_.state_dict()[name], value, rtol=0, atol=0)
