"""Each loss against its formula, written out with numpy loops."""

import math

import numpy as np
import pytest
import torch

from skrec.nn import losses


@pytest.fixture
def scores():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(6, generator=g, dtype=torch.float64)
    neg = torch.randn(6, 4, generator=g, dtype=torch.float64)
    valid = torch.rand(6, 4, generator=g) > 0.3
    return pos, neg, valid


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_bpr(scores):
    pos, neg, valid = scores
    terms = [
        -math.log(_sigmoid(pos[b] - neg[b, j])) for b in range(6) for j in range(4) if valid[b, j]
    ]
    assert float(losses.bpr(pos, neg, valid)) == pytest.approx(np.mean(terms))
    assert float(losses.bpr(pos, neg)) == pytest.approx(
        np.mean([-math.log(_sigmoid(pos[b] - neg[b, j])) for b in range(6) for j in range(4)])
    )


def test_bce_and_gbce(scores):
    pos, neg, valid = scores
    per_row = [
        -math.log(_sigmoid(pos[b]))
        - sum(math.log(1 - _sigmoid(neg[b, j])) for j in range(4) if valid[b, j])
        for b in range(6)
    ]
    assert float(losses.bce(pos, neg, valid)) == pytest.approx(np.mean(per_row))
    # t = 0 is plain BCE; otherwise the positive term is scaled by beta.
    assert float(losses.gbce(pos, neg, n_items=100, t=0.0, valid=valid)) == pytest.approx(
        np.mean(per_row)
    )
    alpha = 4 / 99
    beta = alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha)
    expected = [
        -beta * math.log(_sigmoid(pos[b]))
        - sum(math.log(1 - _sigmoid(neg[b, j])) for j in range(4) if valid[b, j])
        for b in range(6)
    ]
    assert float(losses.gbce(pos, neg, n_items=100, t=0.75, valid=valid)) == pytest.approx(
        np.mean(expected)
    )


@pytest.mark.parametrize("name, t", [("bce", 0.0), ("gbce", 0.0), ("gbce", 0.75)])
@pytest.mark.parametrize("n_negatives", [1, 4, 256])
def test_balance_logit_is_the_equal_score_stationary_point(name, t, n_negatives):
    """With every score at the balance logit, moving them all together does not
    change the loss to first order: the gradient along the common shift is 0."""
    n_items = 1000
    logit = losses.balance_logit(name, n_negatives, n_items, gbce_t=t)
    if name == "bce" or t == 0.0:
        assert logit == pytest.approx(-math.log(n_negatives))
    shift = torch.zeros((), dtype=torch.float64, requires_grad=True)
    pos = torch.full((3,), logit, dtype=torch.float64) + shift
    neg = torch.full((3, n_negatives), logit, dtype=torch.float64) + shift
    loss = losses.ranking_loss(name, pos, neg, n_items=n_items, gbce_t=t)
    (gradient,) = torch.autograd.grad(loss, shift)
    assert abs(float(gradient)) < 1e-9
    for other in ("bpr", "sampled_softmax", "warp"):
        assert losses.balance_logit(other, n_negatives, n_items) == 0.0


def test_sampled_softmax_with_and_without_logq(scores):
    pos, neg, valid = scores
    log_q_pos = torch.log(torch.full((6,), 0.2, dtype=torch.float64))
    log_q_neg = torch.log(torch.linspace(0.01, 0.5, 24, dtype=torch.float64).reshape(6, 4))

    def expected(correct):
        out = []
        for b in range(6):
            p = pos[b] - (log_q_pos[b] if correct else 0)
            n = [neg[b, j] - (log_q_neg[b, j] if correct else 0) for j in range(4) if valid[b, j]]
            out.append(-(p - math.log(math.exp(p) + sum(math.exp(x) for x in n))))
        return np.mean(out)

    assert float(losses.sampled_softmax(pos, neg, valid)) == pytest.approx(expected(False))
    assert float(losses.sampled_softmax(pos, neg, valid, log_q_pos, log_q_neg)) == pytest.approx(
        expected(True)
    )


def test_sampled_softmax_over_every_other_item_is_the_full_softmax():
    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    target = torch.tensor([0, 3, 6, 2, 2])
    others = torch.stack([torch.cat([row[:t], row[t + 1 :]]) for row, t in zip(logits, target)])
    pos = logits.gather(1, target[:, None]).squeeze(1)
    assert float(losses.sampled_softmax(pos, others)) == pytest.approx(
        float(losses.softmax(logits, target))
    )
    manual = np.mean(
        [-(logits[b, target[b]] - torch.logsumexp(logits[b], 0)).item() for b in range(5)]
    )
    assert float(losses.softmax(logits, target)) == pytest.approx(manual)


def test_warp(scores):
    pos, neg, valid = scores
    n_items = 50
    total = 0.0
    for b in range(6):
        trials = 0  # invalid slots are not trials
        for trial in range(4):
            trials += bool(valid[b, trial])
            if valid[b, trial] and 1 - pos[b] + neg[b, trial] > 0:
                rank = (n_items - 1) // trials
                harmonic = sum(1.0 / r for r in range(1, rank + 1))
                total += harmonic * float(1 - pos[b] + neg[b, trial])
                break
    assert float(losses.warp(pos, neg, n_items, valid)) == pytest.approx(total / 6)


def test_infonce_masks_accidental_hits():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    ids = torch.tensor([5, 7, 5, 9])
    logits = (q @ k.T / 0.5).numpy()
    expected = []
    for b in range(4):
        keep = [j for j in range(4) if j == b or ids[j] != ids[b]]
        expected.append(-(logits[b, b] - np.log(np.exp(logits[b, keep]).sum())))
    assert float(losses.infonce(q, k, 0.5, key_ids=ids)) == pytest.approx(
        np.mean(expected), rel=1e-5
    )


def test_mse_and_dispatch(scores):
    pos, neg, valid = scores
    assert float(losses.mse(pos, pos + 2)) == pytest.approx(4.0)
    for name in losses.PAIRWISE:
        value = losses.ranking_loss(name, pos, neg, valid=valid, n_items=100)
        assert torch.isfinite(value)
    with pytest.raises(ValueError, match="not a pairwise ranking loss"):
        losses.ranking_loss("mse", pos, neg)


@pytest.mark.parametrize("with_bias", [False, True])
def test_full_softmax_matches_the_dense_loss_and_gradients(with_bias):
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(23, 5, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(23, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 22, 5, 5, 7, 1, 22, 3, 10])
    b = bias if with_bias else None
    dense = losses.softmax(hidden @ weight.T + (0 if b is None else b), target)
    chunked = losses.full_softmax(hidden, weight, target, b, chunk_size=4)  # 6 chunks
    assert float(chunked.detach()) == pytest.approx(float(dense.detach()), rel=1e-12)
    inputs = [hidden, weight] + ([bias] if with_bias else [])
    expected = torch.autograd.grad(dense, inputs)
    got = torch.autograd.grad(chunked, inputs)
    for e, o in zip(expected, got):
        torch.testing.assert_close(o, e, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda h, w: losses.full_softmax(h, w, target, None, chunk_size=7), (hidden, weight)
    )


def test_full_softmax_in_bfloat16_stays_close_to_float32():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(64, 16, generator=g, requires_grad=True)
    weight = (0.3 * torch.randn(500, 16, generator=g)).requires_grad_()
    target = torch.randint(500, (64,), generator=g)
    exact = losses.full_softmax(hidden, weight, target, chunk_size=128)
    fast = losses.full_softmax(hidden, weight, target, chunk_size=128, dtype=torch.bfloat16)
    assert fast.dtype == torch.float32
    assert fast.item() == pytest.approx(exact.item(), rel=2e-2)
    for e, o in zip(
        torch.autograd.grad(exact, [hidden, weight]), torch.autograd.grad(fast, [hidden, weight])
    ):
        cosine = torch.nn.functional.cosine_similarity(e.ravel(), o.ravel(), dim=0)
        assert cosine > 0.99


def test_full_softmax_in_bfloat16_is_the_cross_entropy_of_its_rounded_logits():
    """The target's logit comes from the same bfloat16 product as the log-sum-exp: a
    confident row's loss is >= 0 (it was -0.05 with the target logit in float32)."""
    hidden = torch.zeros(1, 8)
    hidden[0, 0] = 30.0
    weight = torch.zeros(5, 8)
    weight[0, 0] = 1.01  # logit 30.3: rounds to 30.25 in bfloat16
    target = torch.tensor([0])
    loss = losses.full_softmax(hidden, weight, target, dtype=torch.bfloat16)
    rounded = (hidden @ weight.T).to(torch.bfloat16).float()
    assert loss.item() >= 0
    assert loss.item() == pytest.approx(losses.softmax(rounded, target).item(), abs=1e-6)
