"""MF and NeuMF: behaviour on structured data, every loss and sampler, fold-in, pre-training."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from skrec import MF, NeuMF, Popular, Random
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut, evaluate
from skrec.nn import losses
from skrec.training import TorchRecommender


@pytest.fixture(scope="module")
def split():
    # latent tastes only: what a factorisation model can learn
    data = make_interactions(n_users=400, n_items=120, sequential_strength=0.0, random_state=1)
    train, test = next(LeaveLastOut().split(data))
    return data.iloc[train], data.iloc[test]


@pytest.fixture(scope="module")
def popular(split):
    train, test = split
    return evaluate(Popular().fit(train), test)["ndcg@10"]


def test_mf_bpr_beats_popular(split, popular):
    train, test = split
    model = MF(n_factors=16, max_iter=20, random_state=0).fit(train)
    assert evaluate(model, test)["ndcg@10"] > 1.8 * popular


@pytest.mark.parametrize("loss", ["bpr", "bce"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("regularization, weight_decay", [(0.0, 0.0), (0.05, 0.01)])
@pytest.mark.parametrize("n_negatives", [1, 3])
@pytest.mark.parametrize("user_side_only", [False, True])
def test_closed_form_sgd_step_is_the_autograd_sgd_step(
    split, loss, bias, regularization, weight_decay, n_negatives, user_side_only
):
    train, _ = split
    model = MF(
        n_factors=8,
        loss=loss,
        bias=bias,
        regularization=regularization,
        weight_decay=weight_decay,
        optimizer="sgd",
        learning_rate=0.5,
        max_iter=1,
        random_state=0,
    ).fit(train)
    with torch.no_grad():  # non-zero biases, so that every term is exercised
        for parameter in model.module_.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    generator = torch.Generator().manual_seed(3)
    n_users, n_items = model.module_.user.num_embeddings, model.module_.item.num_embeddings
    size = 64  # repeated rows: duplicates must add up, as in a dense gradient
    closed, autograd = (copy.deepcopy(model.module_) for _ in range(2))
    for _ in range(3):
        batch = {
            "query": torch.randint(0, n_users // 8, (size,), generator=generator),
            "item": torch.randint(0, n_items, (size,), generator=generator),
            "negative": torch.randint(0, n_items, (size, n_negatives), generator=generator),
            "valid": torch.rand(size, n_negatives, generator=generator) > 0.2,
        }

        def trained(module):
            if not user_side_only:
                return list(module.parameters())
            return [module.user.weight] + ([module.user_bias.weight] if bias else [])

        sgd = torch.optim.SGD(trained(autograd), lr=0.5, weight_decay=weight_decay)
        expected = TorchRecommender._train_step(model, autograd, batch, trained(autograd), sgd)
        got = model._train_step(closed, batch, trained(closed), None)
        assert float(got) == pytest.approx(float(expected), rel=1e-5)
        for (name, a), b in zip(autograd.named_parameters(), closed.parameters()):
            np.testing.assert_allclose(b.detach(), a.detach(), atol=1e-5, err_msg=name)
    frozen = [p for p in closed.parameters() if not any(p is t for t in trained(closed))]
    assert bool(frozen) == user_side_only
    for before, after in zip(model.module_.parameters(), closed.parameters()):
        if any(after is p for p in frozen):
            assert torch.equal(before, after)  # the item side of a fold-in stays as it was
    assert not torch.equal(model.module_.user.weight, closed.user.weight)


@pytest.mark.parametrize(
    "loss, sampler, weight_decay",
    [
        ("bpr", "uniform", 0.0),
        ("bce", "uniform", 0.0),
        ("bpr", "hard", 1e-3),
        ("bce", "popularity", 1e-3),
    ],
)
def test_sgd_fit_is_the_same_with_the_closed_form_step(split, loss, sampler, weight_decay):
    train, test = split
    params = dict(
        n_factors=8,
        loss=loss,
        sampler=sampler,
        n_negatives=2,
        optimizer="sgd",
        learning_rate=20.0,
        regularization=1e-3,
        weight_decay=weight_decay,
    )
    fast = MF(max_iter=4, random_state=0, **params).fit(train)
    # A clipping norm that never binds sends each step through autograd instead.
    slow = MF(max_iter=4, random_state=0, clip_grad_norm=1e9, **params).fit(train)
    np.testing.assert_allclose(fast.user_factors_, slow.user_factors_, atol=1e-4)
    np.testing.assert_allclose(fast.item_factors_, slow.item_factors_, atol=1e-4)
    np.testing.assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-5)
    assert not np.allclose(fast.loss_curve_[0], fast.loss_curve_[-1])  # it trained


@pytest.mark.parametrize("interaction", ["gmf", "mlp", "neumf"])
def test_neumf_beats_popular(split, popular, interaction):
    train, test = split
    model = NeuMF(
        interaction=interaction,
        n_factors=16,
        layers=(64, 32, 16),
        max_iter=20,
        batch_size=512,
        learning_rate=0.01,
        random_state=0,
    ).fit(train)
    assert evaluate(model, test)["ndcg@10"] > 1.2 * popular, interaction


@pytest.fixture(scope="module")
def random_level(split):
    train, test = split
    return evaluate(Random(random_state=0).fit(train), test)["ndcg@10"]


@pytest.mark.parametrize(
    "loss, sampler",
    [
        (loss, sampler)
        for loss in [*losses.PAIRWISE, "softmax"]
        for sampler in ["uniform", "popularity", "in_batch", "hard"]
        if loss != "warp" or sampler == "uniform"  # the others are refused (test below)
    ],
)
def test_every_loss_with_every_sampler_learns(split, random_level, loss, sampler):
    # Every combination learns the tastes. (Not all beat Popular: BCE with in-batch
    # negatives and no correction pushes popular items down, a known bias.)
    train, test = split
    model = MF(
        n_factors=16,
        loss=loss,
        sampler=sampler,
        n_negatives=4,
        logq_correction=loss == "sampled_softmax" and sampler not in ("uniform", "hard"),
        max_iter=15,
        batch_size=256,
        learning_rate=0.01,
        random_state=0,
    ).fit(train)
    assert np.isfinite(model.loss_curve_).all()
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert evaluate(model, test)["ndcg@10"] > 1.5 * random_level, (loss, sampler)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(loss="warp", sampler="hard"), "loss='warp' estimates.*sampler='hard'"),
        (dict(loss="warp", sampler="popularity"), "sampler='popularity' draws otherwise"),
        (dict(loss="sampled_softmax", sampler="hard", logq_correction=True), "the 'hard'"),
    ],
)
def test_warp_needs_uniform_draws_and_hard_has_no_logq(split, params, match):
    train, _ = split
    model = MF(n_factors=4, max_iter=1, random_state=0).fit(train)
    curve = list(model.loss_curve_)
    with pytest.raises(ValueError, match=match):
        model.set_params(**params).fit(train)
    assert model.loss_curve_ == curve  # the fitted model is kept


def test_vectors_fold_biases_into_the_inner_product(split):
    train, _ = split
    model = MF(n_factors=4, max_iter=2, random_state=0).fit(train)
    users = torch.arange(5)
    U, I = model.module_.vectors()
    with torch.no_grad():
        np.testing.assert_allclose(
            (U[users] @ I.T).numpy(), model.module_.score_all(users).numpy(), rtol=1e-5
        )


def test_explicit_ratings_beat_the_global_mean():
    rng = np.random.RandomState(0)
    P, Q = rng.normal(size=(300, 3)), rng.normal(size=(80, 3))
    users, items = rng.randint(300, size=6000), rng.randint(80, size=6000)
    ratings = 3 + (P[users] * Q[items]).sum(1) + 0.3 * rng.normal(size=6000)
    X = pd.DataFrame({"user_id": users, "item_id": items})
    train, test = np.arange(5000), np.arange(5000, 6000)
    model = MF(
        n_factors=3, loss="mse", init_std=0.01, regularization=0.03, max_iter=40, batch_size=128
    )
    model.set_params(random_state=0)
    model.fit(X.iloc[train], ratings[train])
    predicted = model.predict(X.iloc[test])
    known = ~np.isnan(predicted)
    rmse = np.sqrt(np.mean((predicted[known] - ratings[test][known]) ** 2))
    baseline = np.sqrt(np.mean((ratings[train].mean() - ratings[test][known]) ** 2))
    assert rmse < 0.5 * baseline, (rmse, baseline)
    with pytest.raises(ValueError, match="loss='mse' trains on explicit ratings"):
        MF(loss="mse").fit(X)
    # a new user is learned from the ratings of history=: without them, a clear error
    # (it used to fold in every rating as 1.0)
    history = X.iloc[:5].assign(user_id="new")
    with pytest.raises(ValueError, match="history has no 'weight' column"):
        model.recommend(["new"], history=history)
    rated = model.recommend(["new"], history=history.assign(weight=ratings[:5]))
    assert rated.shape == (1, 10)


@pytest.mark.parametrize("Model", [MF, NeuMF])
def test_history_user_is_folded_in_near_the_known_one(split, Model):
    train, _ = split
    model = Model(max_iter=20, learning_rate=0.01, random_state=0).fit(train)
    user = train.user_id.iloc[0]
    events = train[train.user_id == user].assign(user_id="clone")
    known = model.recommend([user], k=10)[0]
    folded = model.recommend(["clone"], k=10, history=events)[0]
    ranked_by_popularity = Popular().fit(train).recommend(["clone"], k=10, history=events)[0]
    overlap = len(set(known) & set(folded))
    assert overlap >= 5 and overlap > len(set(known) & set(ranked_by_popularity)) - 2, overlap
    # other users are untouched by the fold-in
    np.testing.assert_array_equal(model.recommend([user, "clone"], k=10, history=events)[0], known)


@pytest.mark.parametrize("sampler", ["popularity", "in_batch"])
def test_fold_in_negatives_come_from_the_catalog_not_the_history(split, sampler):
    """A history holds only the new user's items: the fold-in's popularity negatives
    (counted on the history) and in-batch ones (the history's own items) were all
    positives, so the user's row was never trained."""
    train, _ = split
    loss = "sampled_softmax" if sampler == "in_batch" else "bpr"
    model = MF(loss=loss, sampler=sampler, max_iter=20, learning_rate=0.01, random_state=0)
    model.fit(train)
    user = train.user_id.iloc[0]
    history = train[train.user_id == user].assign(user_id="clone")
    prepared = model._fold_in_pairs(model._context(["clone"], history).events)
    batch = next(model._batches(prepared, None, torch.Generator().manual_seed(0)))
    assert batch["valid"].float().mean() > 0.9  # it was 0.0
    # the folded-in user scores the catalog like the known one (an untrained row: ~0)
    items = model.item_ids_
    known = model.predict(pd.DataFrame({"user_id": user, "item_id": items}))
    ids, scores = model.recommend(
        ["clone"], k=len(items), history=history, exclude_seen=False, return_scores=True
    )
    folded = pd.Series(scores[0], index=ids[0]).reindex(items).to_numpy()
    assert np.corrcoef(known, folded)[0, 1] > 0.6


def test_neumf_fold_in_never_puts_the_fitted_layers_in_training_mode(split, monkeypatch):
    """The fold-in trains new users with dropout; the fitted model must go on scoring
    without it, during the fold-in (other threads) and after an interrupted one."""
    train, _ = split
    model = NeuMF(dropout=0.5, max_iter=2, random_state=0).fit(train)
    pairs = train.iloc[:50]
    before = model.predict(pairs)
    events = train[train.user_id == train.user_id.iloc[0]].assign(user_id="new")
    modes, step = [], model._train_step
    dropouts = [m for m in model.module_.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts

    def watching_step(module, *args):
        modes.append(any(m.training for m in dropouts))
        np.testing.assert_array_equal(model.predict(pairs), before)  # a concurrent caller
        return step(module, *args)

    monkeypatch.setattr(model, "_train_step", watching_step)
    model.recommend(["new"], history=events)
    assert modes and not any(modes)

    def interrupted_step(module, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "_train_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        model.recommend(["new"], history=events)
    assert not any(m.training for m in model.module_.modules())
    np.testing.assert_array_equal(model.predict(pairs), before)


def test_neumf_pretraining_starts_from_the_average_of_gmf_and_mlp(split):
    train, _ = split
    shared = dict(n_factors=8, layers=(16, 8), max_iter=2, batch_size=512, random_state=0)
    model = clone(NeuMF(**shared, pretrain=True)).fit(train)  # clone-safe: a plain flag
    gmf, mlp = model.pretrained_
    assert (gmf.interaction, mlp.interaction) == ("gmf", "mlp")
    assert gmf.n_iter_ == mlp.n_iter_ == model.n_iter_ == 2
    # the same parts, fitted on their own, are what the fused model starts from
    alone = NeuMF(interaction="gmf", **shared).fit(train)
    np.testing.assert_array_equal(
        alone.module_.item_gmf.weight.detach(), gmf.module_.item_gmf.weight.detach()
    )
    start = model._build_module(model._train)
    users, items = torch.arange(10), torch.arange(10)
    with torch.no_grad():
        expected = (gmf.module_(users, items) + mlp.module_(users, items)) / 2
        np.testing.assert_allclose(start(users, items).numpy(), expected.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="pretrain=True builds a NeuMF"):
        NeuMF(**{**shared, "interaction": "gmf"}, pretrain=True).fit(train)


def test_neumf_pretrain_params_set_the_parts_only(split):
    train, _ = split
    shared = dict(n_factors=8, layers=(16, 8), max_iter=3, batch_size=512, random_state=0)
    model = NeuMF(
        **shared,
        pretrain=True,
        pretrain_params={"max_iter": 1, "learning_rate": 0.01},
        optimizer="sgd",
        learning_rate=0.005,
    )
    model.fit(train)
    gmf, mlp = model.pretrained_
    assert gmf.n_iter_ == mlp.n_iter_ == 1 and model.n_iter_ == 3
    assert gmf.learning_rate == mlp.learning_rate == 0.01 and model.learning_rate == 0.005
    assert gmf.optimizer == "sgd"  # not overridden: the model's own setting
    # the parts equal stand-alone fits with those settings
    alone = NeuMF(
        interaction="mlp", **{**shared, "max_iter": 1}, learning_rate=0.01, optimizer="sgd"
    ).fit(train)
    np.testing.assert_array_equal(
        alone.module_.item_mlp.weight.detach(), mlp.module_.item_mlp.weight.detach()
    )
    assert model.pretrain_params == {"max_iter": 1, "learning_rate": 0.01}  # left as given
    for pretrain, bad, message in (
        (True, {"pretrain": False}, "cannot set apart from the fused model"),
        (True, {"n_layers": 2}, "cannot set apart from the fused model"),
        (True, {"n_factors": 4}, "cannot set apart from the fused model"),  # shapes must match
        (True, {"layers": (8, 4)}, "cannot set apart from the fused model"),
        (False, {"learning_rte": 0.01}, "cannot set apart from the fused model"),  # a typo
        (True, {"learning_rate": -1.0}, "In pretrain_params: The 'learning_rate'"),
    ):
        with pytest.raises(ValueError, match=message):
            NeuMF(**shared, pretrain=pretrain, pretrain_params=bad).fit(train)


def test_neumf_layers_are_checked(split):
    train, _ = split
    with pytest.raises(ValueError, match="even first size"):
        NeuMF(layers=(15, 8), max_iter=1).fit(train)
