"""Negative samplers: distributions, rejection of positives, hard negatives."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skrec.data.sampling import NegativeSampler, minibatches


def _positives():
    rows = np.repeat(np.arange(3), 5)
    cols = np.array([0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 0, 9, 8, 7, 6])
    return sp.csr_matrix((np.ones(15), (rows, cols)), shape=(3, 10))


def test_minibatches_cover_every_index_once():
    batches = list(minibatches(10, 4, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))


@pytest.mark.parametrize("kind", ["uniform", "popularity"])
def test_rejection_keeps_positives_out(kind):
    positives = _positives()
    sampler = NegativeSampler(kind, 10, counts=np.arange(1, 11), positives=positives)
    users = torch.tensor([0, 1, 2] * 50)
    items = torch.tensor([0, 2, 9] * 50)
    negatives, valid = sampler.sample(users, items, 6, torch.Generator().manual_seed(0))
    assert negatives.shape == valid.shape == (150, 6)
    dense = positives.toarray()
    hits = dense[users[:, None].numpy(), negatives.numpy()] > 0
    assert not (hits & valid.numpy()).any()
    assert valid.float().mean() > 0.99  # redrawn, not just dropped


def test_popularity_follows_counts_to_the_power():
    counts = np.array([1.0, 4.0, 9.0, 16.0])
    sampler = NegativeSampler("popularity", 4, counts=counts, power=0.5)
    items, _ = sampler.sample(
        torch.zeros(20000, dtype=torch.long),
        torch.full((20000,), -1),
        4,
        torch.Generator().manual_seed(0),
    )
    share = np.bincount(items.ravel().numpy(), minlength=4) / items.numel()
    np.testing.assert_allclose(share, np.sqrt(counts) / np.sqrt(counts).sum(), atol=0.01)
    np.testing.assert_allclose(
        sampler.log_q(torch.arange(4)).numpy(), np.log(np.sqrt(counts) / 10.0), rtol=1e-5
    )


def test_a_negative_power_never_draws_unseen_items_and_overflow_is_refused():
    """0 ** -0.5 is inf: every probability became NaN and all draws fell on the last
    item. An item with no count is never drawn, whatever the power."""
    counts = np.array([0.0, 4.0, 9.0, 16.0])
    sampler = NegativeSampler("popularity", 4, counts=counts, power=-0.5)
    items = sampler._draw((20000,), torch.Generator().manual_seed(0)).numpy()
    expected = np.r_[0.0, 1 / np.sqrt(counts[1:])]
    np.testing.assert_allclose(
        np.bincount(items, minlength=4) / 20000, expected / expected.sum(), atol=0.01
    )
    with pytest.raises(ValueError, match="not finite and positive"):
        NegativeSampler("popularity", 2, counts=np.array([1e300, 1e300]), power=2.0)


def test_in_batch_masks_other_rows_positives():
    sampler = NegativeSampler("in_batch", 10, positives=_positives())
    users, items = torch.tensor([0, 1]), torch.tensor([1, 3])
    _, valid = sampler.sample(users, items, 1, torch.Generator())
    assert not valid[0, 1]  # item 3 is also one of user 0's positives
    assert valid[1, 0]  # item 1 is not user 1's


def test_in_batch_shares_the_batch_and_masks_hits():
    sampler = NegativeSampler("in_batch", 10, positives=_positives())
    users, items = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 5, 8, 8])
    negatives, valid = sampler.sample(users, items, 1, torch.Generator())
    assert negatives.tolist() == [1, 5, 8, 8]  # shared by every row
    assert valid.shape == (4, 4)
    assert not valid.diagonal().any()
    assert not valid[2, 3] and not valid[3, 2]  # the same item
    # item 5 is a positive of user 1 only; item 1 of user 0 only; item 8 of user 2 only
    assert valid[0, 1] and valid[0, 2] and valid[1, 0] and valid[1, 2] and valid[2, 1]


def test_hard_negatives_are_the_best_scored_non_positives():
    sampler = NegativeSampler("hard", 10, positives=_positives())
    users = torch.tensor([0, 1, 2] * 20)
    items = torch.tensor([0, 2, 9] * 20)

    def score(u, candidates):
        return candidates.double()  # higher item index = higher score

    negatives, valid = sampler.sample(users, items, 2, torch.Generator().manual_seed(0), score)
    assert valid.all()
    dense = _positives().toarray()
    assert not (dense[users[:, None].numpy(), negatives.numpy()] > 0).any()
    uniform, _ = NegativeSampler("uniform", 10, positives=_positives()).sample(
        users, items, 2, torch.Generator().manual_seed(0)
    )
    assert negatives.double().mean() > uniform.double().mean() + 1
    with pytest.raises(ValueError, match="score function"):
        sampler.sample(users, items, 2, torch.Generator())


def test_same_generator_same_negatives():
    sampler = NegativeSampler("uniform", 10, positives=_positives())
    users, items = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 9])
    a = sampler.sample(users, items, 5, torch.Generator().manual_seed(3))[0]
    b = sampler.sample(users, items, 5, torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)


def test_unknown_sampler():
    with pytest.raises(ValueError, match="sampler must be one of"):
        NegativeSampler("zipf", 10)
