"""GRU4Rec, SASRec, BERT4Rec: the sequence pipeline, the encoders and the models."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from skrec import BERT4Rec, GRU4Rec, Popular, SASRec
from skrec.data.interactions import Interactions
from skrec.data.sequences import mask_items, padded_sequences, shifted_targets, trim
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut, evaluate
from skrec.models import sequential
from skrec.nn import losses
from skrec.nn.sequential import GRU, Transformer

SEQUENTIAL = [SASRec, BERT4Rec, GRU4Rec]


@pytest.fixture(scope="module")
def ordered():
    """Strong successor structure: the next item is mostly the current one's successor."""
    X = make_interactions(
        n_users=300, n_items=80, mean_events=15, sequential_strength=0.8, random_state=1
    )
    train, test = next(LeaveLastOut().split(X))
    return X.iloc[train], X.iloc[test]


# ------------------------------------------------------------------ the pipeline
def _events(lists):
    user = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    item = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])
    return Interactions.build(user, item, n_users=len(lists), n_items=10)


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_sequences_keep_the_latest_events(side):
    lists = [[3, 1, 4, 1, 5], [9], [2, 6]]
    data = _events(lists)
    sequences, lengths = padded_sequences(data.indptr, data.item, 3, side=side)
    expected = []
    for items in lists:
        kept = [i + 1 for i in items[-3:]]
        pad = [0] * (3 - len(kept))
        expected.append(kept + pad if side == "right" else pad + kept)
    assert sequences.tolist() == expected
    assert lengths.tolist() == [3, 1, 2]


def test_shifted_targets_pair_each_event_with_the_next():
    sequences = torch.tensor([[4, 2, 5, 0], [7, 0, 0, 0], [0, 3, 8, 6]])  # right, right, left
    inputs, targets = shifted_targets(sequences)
    assert inputs.tolist() == [[4, 2, 0], [0, 0, 0], [0, 3, 8]]
    assert targets.tolist() == [[2, 5, 0], [0, 0, 0], [0, 8, 6]]


#: SASRec's encoder options (the SASRec authors' block); the defaults are BERT4Rec's.
SASREC_ENCODER = {
    "wiring": "sasrec",
    "positions": "from_start",
    "init_std": 0.02,
    "qkv_init": "xavier",
}
ENCODERS = pytest.mark.parametrize("options", [{}, SASREC_ENCODER], ids=["pre_norm", "sasrec"])


@ENCODERS
def test_the_last_training_query_sees_what_inference_sees(options):
    """The query that learns to predict a user's last event must sit where inference
    puts its query (with positions counted back from the last event, the pairs of
    stop 16 had it one off): its hidden state equals the one `last_hidden` computes
    from the events before that event."""
    torch.manual_seed(0)
    max_len = 6
    encoder = Transformer(n_items=10, d=8, max_len=max_len, dropout=0.0, **options).eval()
    data = _events([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3, 5, 8, 9], [7, 2]])  # short, long, two
    sequences, _ = padded_sequences(data.indptr, data.item, max_len + 1)
    inputs, targets = shifted_targets(sequences)
    with torch.no_grad():
        hidden = encoder(inputs)
        for row in range(len(inputs)):
            last = int((targets[row] != 0).nonzero().max())
            prefix = inputs[row : row + 1, : last + 1]
            expected = encoder.last_hidden(prefix, torch.tensor([last + 1]))
            torch.testing.assert_close(hidden[row, last], expected[0])


def test_mask_items_masks_real_positions_only_and_every_row():
    generator = torch.Generator().manual_seed(0)
    sequences = torch.tensor([[1, 2, 3, 4, 0, 0]] * 500 + [[5, 0, 0, 0, 0, 0]] * 500)
    inputs, targets = mask_items(sequences, 0.3, 99, generator)
    masked = inputs == 99
    assert (targets[masked] == sequences[masked]).all() and (targets[~masked] == 0).all()
    assert not masked[sequences == 0].any(), "padding is never masked"
    assert masked.any(1).all(), "each row trains on at least one position"
    share = masked[:500, :4].float().mean().item()
    assert 0.3 <= share <= 0.4  # 0.3, plus the rows where none was drawn


def test_trim_drops_shared_padding_columns():
    a, b = trim(torch.tensor([[1, 2, 0, 0], [3, 0, 0, 0]]), torch.arange(8).view(2, 4))
    assert a.shape == (2, 2) and b.tolist() == [[0, 1], [4, 5]]


# ------------------------------------------------------------------- the encoders
@ENCODERS
def test_causal_transformer_ignores_later_events_and_padding(options):
    torch.manual_seed(0)
    model = Transformer(20, 16, 2, 2, 32, max_len=8, **options).eval()
    a = torch.tensor([[1, 2, 3, 4, 5, 0, 0, 0]])
    b = torch.tensor([[1, 2, 3, 9, 7, 0, 0, 0]])  # same length, other later events
    with torch.no_grad():
        ha, hb, short = model(a), model(b), model(a[:, :5])
    torch.testing.assert_close(ha[:, :3], hb[:, :3], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ha[:, 3], hb[:, 3])
    torch.testing.assert_close(ha[:, :5], short, atol=1e-5, rtol=1e-5)


def test_sasrec_block_is_the_sasrec_authors_formula():
    """One block of SASRec's encoder, written out: queries from LN1(x), keys and values
    from x, y = LN2(LN1(x) + attention), output y + FFN(y); positions from the first
    event; the final layer norm after it."""
    torch.manual_seed(0)
    d, n_heads = 8, 2
    model = Transformer(12, d, 1, n_heads, 16, dropout=0.0, max_len=6, **SASREC_ENCODER).eval()
    block = model.blocks[0]
    for parameter in model.parameters():  # away from the zero biases and unit norms
        torch.nn.init.normal_(parameter, std=0.3)
    sequences = torch.tensor([[3, 1, 4, 0], [5, 9, 2, 6]])
    real = (sequences != 0).float()[..., None]
    x = (model.items(sequences) * d**0.5 + model.positions.weight[:4]) * real
    wq, wk, wv = block.qkv.weight.split(d)
    bq, bk, bv = block.qkv.bias.split(d)
    h = block.norm1(x)
    q, k, v = h @ wq.T + bq, x @ wk.T + bk, x @ wv.T + bv
    causal = torch.ones(4, 4).tril().bool()
    heads = []
    for part in range(n_heads):
        cols = slice(part * d // n_heads, (part + 1) * d // n_heads)
        logits = q[..., cols] @ k[..., cols].transpose(1, 2) / (d // n_heads) ** 0.5
        heads.append(logits.masked_fill(~causal, -torch.inf).softmax(-1) @ v[..., cols])
    y = block.norm2(h + block.out(torch.cat(heads, -1)))
    expected = model.norm(y + block.ff2(torch.relu(block.ff1(y))))
    with torch.no_grad():
        torch.testing.assert_close(model(sequences)[1], expected[1].detach())
        torch.testing.assert_close(model(sequences)[0, :3], expected[0, :3].detach())


def test_init_std_draws_the_embeddings_and_weights():
    torch.manual_seed(0)
    model = Transformer(3000, 64, 2, 1, 64, max_len=200, **SASREC_ENCODER)
    block = model.blocks[0]
    for weight in (model.item_weight(), model.positions.weight, block.out.weight, block.ff1.weight):
        assert abs(weight.std().item() - 0.02) < 0.002
    # q/k/v as torch's nn.MultiheadAttention draws them: Xavier-uniform over (3d, d)
    bound = (6 / (64 + 3 * 64)) ** 0.5
    assert block.qkv.weight.abs().max() <= bound
    assert abs(block.qkv.weight.std().item() - bound / 3**0.5) < 0.005
    assert not model.blocks[1].ff2.bias.any() and not block.qkv.bias.any()
    default = Transformer(3000, 64, 2, 1, 64, max_len=200)
    assert abs(default.item_weight().std().item() - 64**-0.5) < 0.01


def test_a_pickle_from_before_the_encoder_options_keeps_its_network():
    torch.manual_seed(0)
    model = Transformer(20, 16, 2, 2, 32, max_len=6).eval()
    sequences = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    expected = model(sequences).detach()
    del model.from_start  # what a Transformer pickled before stop 17 lacks
    for block in model.blocks:
        del block.sasrec
    restored = pickle.loads(pickle.dumps(model))
    assert restored.from_start is False and not any(b.sasrec for b in restored.blocks)
    with torch.no_grad():
        torch.testing.assert_close(restored(sequences), expected)


def test_unknown_wiring_is_refused():
    with pytest.raises(ValueError, match="wiring"):
        Transformer(10, 8, wiring="post_norm")
    with pytest.raises(ValueError, match="qkv_init"):
        Transformer(10, 8, qkv_init="kaiming")


def test_bidirectional_transformer_reads_both_sides():
    torch.manual_seed(0)
    model = Transformer(20, 16, 1, 2, 32, max_len=6, causal=False)
    model.eval()
    a, b = torch.tensor([[1, 21, 3, 0]]), torch.tensor([[1, 21, 4, 0]])
    with torch.no_grad():
        assert not torch.allclose(model(a)[:, 1], model(b)[:, 1]), "the mask sees its right"
        padded = model(torch.tensor([[1, 21, 3, 0, 0, 0]]))
    torch.testing.assert_close(model(a)[:, :3].detach(), padded[:, :3], atol=1e-5, rtol=1e-5)


def test_gru_states_do_not_depend_on_right_padding():
    torch.manual_seed(0)
    model = GRU(20, d=8).eval()
    with torch.no_grad():
        long = model(torch.tensor([[4, 5, 6, 0, 0, 0]]))
        short = model(torch.tensor([[4, 5, 6]]))
    torch.testing.assert_close(long[:, :3], short)


# --------------------------------------------------------------------- the loss
def test_full_softmax_loss_equals_dense_cross_entropy(monkeypatch, ordered):
    train, _ = ordered
    model = SASRec(n_factors=8, max_len=12, max_iter=1, random_state=0, device="cpu").fit(train)
    monkeypatch.setattr(sequential, "_LOGIT_CHUNK_ELEMENTS", 1)  # the smallest chunks
    prepared = model._prepare(model._train)
    batch = next(model._batches(prepared, model.module_, torch.Generator().manual_seed(0)))
    model.module_.eval()
    chunked = model._loss(model.module_, batch)
    hidden = model.module_(batch["inputs"])
    where = batch["targets"] > 0
    logits = hidden[where] @ model.module_.item_weight().T
    dense = F.cross_entropy(logits, batch["targets"][where] - 1)
    torch.testing.assert_close(chunked, dense)


@pytest.mark.parametrize("loss, n_negatives", [("bce", 1), ("gbce", 8), ("sampled_softmax", 8)])
def test_sampled_losses_negatives_avoid_the_users_items(loss, n_negatives, ordered):
    train, _ = ordered
    model = SASRec(
        n_factors=8, max_len=12, loss=loss, n_negatives=n_negatives, max_iter=1, random_state=0
    ).fit(train)
    prepared = model._prepare(model._train)
    batch = next(model._batches(prepared, model.module_, torch.Generator().manual_seed(0)))
    rows = torch.randperm(len(prepared.users), generator=torch.Generator().manual_seed(0))
    users = prepared.users[rows[: len(batch["inputs"])]].numpy()  # the batch's users
    B = len(users)
    assert batch["negative"].shape == (batch["targets"].shape if n_negatives == 1 else (B, 8))
    negatives = batch["negative"].reshape(B, -1).numpy()
    valid = batch["valid"].reshape(B, -1).numpy()
    seen = model._train.csr().toarray().astype(bool)
    hits = seen[users[:, None], negatives]
    assert not (hits & valid).any(), "a valid negative is never one of the user's items"
    assert valid.mean() > 0.9
    assert torch.isfinite(model._loss(model.module_, batch))


@pytest.mark.parametrize("cls", SEQUENTIAL, ids=lambda c: c.__name__)
def test_shared_negatives_are_shared_when_their_count_equals_the_batch_width(cls):
    """n_negatives per sequence, shared by its positions, even when there are as many
    of them as the batch has positions ((B, N) and (B, L) then have the same shape)."""
    width = 8  # every user has max_len + 1 events: each batch is exactly max_len wide
    X = pd.DataFrame(
        [(u, (3 * u + j) % 20, j) for u in range(6) for j in range(width + 1)],
        columns=["user_id", "item_id", "timestamp"],
    )
    model = cls(n_factors=8, n_layers=1, max_len=width, loss="gbce", n_negatives=width)
    model.set_params(max_iter=1, batch_size=6, random_state=0).fit(X)
    module = model.module_.eval()
    prepared = model._prepare(model._train)
    batch = next(model._batches(prepared, module, torch.Generator().manual_seed(0)))
    targets, negative = batch["targets"], batch["negative"]
    assert negative.shape == targets.shape == (6, width)  # the case that was misread
    where = targets > 0
    hidden = module(batch["inputs"])
    weight, offset = module.item_weight(), module.score_offset
    bias = torch.zeros(module.n_items) if module.output_bias is None else module.output_bias
    target = targets[where] - 1
    pos = (hidden[where] * weight[target]).sum(1) + bias[target] + offset
    neg = torch.bmm(hidden, weight[negative].transpose(1, 2)) + bias[negative][:, None, :]
    neg = neg[where] + offset
    valid = batch["valid"][:, None, :].expand(-1, width, -1)[where]
    expected = losses.gbce(pos, neg, module.n_items, model.gbce_t, valid)
    torch.testing.assert_close(model._loss(module, batch), expected)


@pytest.mark.parametrize("cls", [SASRec, BERT4Rec], ids=lambda c: c.__name__)
def test_shared_negatives_draw_every_item_alike(cls, ordered):
    """Item 0 is drawn as often as any other item the user lacks (BERT4Rec's first
    target is mostly padding, once taken for item 0 and rejected)."""
    train, _ = ordered
    model = cls(n_factors=8, max_len=12, loss="sampled_softmax", n_negatives=8, max_iter=1)
    model.set_params(random_state=0).fit(train)
    prepared = model._prepare(model._train)
    seen = model._train.csr().toarray().astype(bool)
    counts, chances = np.zeros(seen.shape[1]), np.zeros(seen.shape[1])
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        rows = torch.randperm(len(prepared.users), generator=generator.clone_state())
        for start, batch in zip(
            range(0, len(rows), model.batch_size), model._batches(prepared, None, generator)
        ):
            users = prepared.users[rows[start : start + model.batch_size]].numpy()
            negatives = batch["negative"].numpy()
            np.add.at(counts, negatives[batch["valid"].numpy()], 1)
            chances += (~seen[users]).sum(0) * negatives.shape[1] / (~seen[users]).sum(1).mean()
    rates = counts / chances  # about 1 for every item, up to sampling noise
    assert 0.8 < rates[0] < 1.25, rates[0]
    assert 0.9 < np.median(rates) < 1.1


# -------------------------------------------------------------------- the models
@pytest.mark.parametrize("cls", SEQUENTIAL, ids=lambda c: c.__name__)
def test_beats_popular_on_ordered_data(cls, ordered):
    train, test = ordered
    popular = evaluate(Popular().fit(train), test)["ndcg@10"]
    model = cls(n_factors=32, max_len=20, max_iter=30, learning_rate=5e-3, random_state=0)
    ndcg = evaluate(model.fit(train), test)["ndcg@10"]
    assert ndcg > 2 * popular, (ndcg, popular)


@pytest.mark.parametrize(
    "loss, n_negatives",
    [("bce", 1), ("bce", 16), ("gbce", 16), ("sampled_softmax", 16), ("bpr", 1)],
)
def test_sasrec_sampled_losses_learn(loss, n_negatives, ordered):
    train, test = ordered
    popular = evaluate(Popular().fit(train), test)["ndcg@10"]
    model = SASRec(
        n_factors=32,
        max_len=20,
        loss=loss,
        n_negatives=n_negatives,
        max_iter=30,
        learning_rate=5e-3,
        random_state=0,
    )
    assert evaluate(model.fit(train), test)["ndcg@10"] > 1.5 * popular


class _NoOffset(SASRec):
    def _build_module(self, data):
        module = super()._build_module(data)
        module.score_offset = None
        return module


def test_score_offset_removes_gbces_slow_start(ordered):
    """gBCE with 16 negatives is stationary with every score at log(β / 16). Started
    there, SASRec learns the successor structure within 10 epochs; started at 0, the
    encoder must first shift every score there and is still at the popularity level."""
    train, test = ordered
    popular = evaluate(Popular().fit(train), test)["ndcg@10"]
    params = dict(n_factors=32, max_len=20, loss="gbce", gbce_t=0.75, n_negatives=16)
    params.update(max_iter=10, learning_rate=5e-3, random_state=0)
    model = SASRec(**params).fit(train)
    beta = losses.gbce_beta(16, model._train.n_items, 0.75)
    start = SASRec(**params)._build_module(model._train).score_offset
    assert float(start.detach()) == pytest.approx(math.log(beta / 16))
    assert evaluate(model, test)["ndcg@10"] > 4 * popular
    assert evaluate(_NoOffset(**params).fit(train), test)["ndcg@10"] < 2 * popular


@pytest.mark.parametrize(
    "loss, n_negatives", [("softmax", 1), ("bce", 1), ("sampled_softmax", 16), ("bpr", 4)]
)
def test_no_score_offset_where_the_loss_does_not_need_one(loss, n_negatives, ordered):
    """One-negative BCE (the original SASRec) is balanced at 0, and the softmaxes and
    BPR do not change when every score moves together: their modules are unchanged."""
    train, _ = ordered
    model = SASRec(n_factors=8, max_len=12, loss=loss, n_negatives=n_negatives, max_iter=1)
    assert model.fit(train).module_.score_offset is None


def test_weights_with_or_without_the_score_offset_load_either_way(ordered):
    """Files written before the offset existed (or after ``set_params(loss=...)``)
    load: the module takes the saved state's offset or none, and ranks the same."""
    train, _ = ordered
    params = dict(n_factors=8, max_len=12, n_negatives=4, max_iter=2, random_state=0)
    model = SASRec(loss="gbce", **params).fit(train)
    users = train.user_id.unique()[:20]
    expected = model.recommend(users, k=5)
    state = model.module_.state_dict()
    without = {key: value for key, value in state.items() if key != "score_offset"}
    module = model._build_module(model._train)
    assert module.score_offset is not None
    module.load_state_dict(without)
    assert module.score_offset is None
    model.module_ = module.eval()
    np.testing.assert_array_equal(model.recommend(users, k=5), expected)
    module = SASRec(loss="softmax", **params)._build_module(model._train)
    module.load_state_dict(state)
    torch.testing.assert_close(module.score_offset, state["score_offset"])


def test_gbce_with_t_zero_is_bce(ordered):
    train, _ = ordered
    params = dict(n_factors=8, max_len=12, n_negatives=4, max_iter=1, random_state=0)
    model = SASRec(loss="gbce", gbce_t=0.0, **params).fit(train)
    prepared = model._prepare(model._train)
    batch = next(model._batches(prepared, model.module_, torch.Generator().manual_seed(0)))
    model.module_.eval()
    gbce = model._loss(model.module_, batch)
    model.set_params(loss="bce")
    torch.testing.assert_close(gbce, model._loss(model.module_, batch))


def test_shuffling_the_order_within_users_hurts_sasrec(ordered):
    train, test = ordered
    rng = np.random.default_rng(0)
    shuffled = train.copy()
    # new timestamps: a random order within each user
    shuffled["timestamp"] = rng.permutation(len(shuffled))
    params = dict(n_factors=32, max_len=20, max_iter=30, learning_rate=5e-3, random_state=0)
    in_order = evaluate(SASRec(**params).fit(train), test)["ndcg@10"]
    out_of_order = evaluate(SASRec(**params).fit(shuffled), test)["ndcg@10"]
    assert in_order > 1.5 * out_of_order, (in_order, out_of_order)


@pytest.mark.parametrize("cls", SEQUENTIAL, ids=lambda c: c.__name__)
def test_history_serves_a_session_like_the_training_events(cls, ordered):
    train, _ = ordered
    model = cls(n_factors=8, max_len=12, max_iter=2, random_state=0).fit(train)
    user = train.user_id.iloc[0]
    events = train[train.user_id == user]
    known = model.recommend([user], k=5, return_scores=True)
    session = events.assign(user_id="anonymous session")
    fresh = model.recommend(["anonymous session"], k=5, history=session, return_scores=True)
    assert (known[0] == fresh[0]).all()
    np.testing.assert_allclose(known[1], fresh[1], rtol=1e-5)
    # order is the timestamp's, not the rows': shuffled rows give the same answer
    shuffled = session.sample(frac=1.0, random_state=0)
    again = model.recommend(["anonymous session"], k=5, history=shuffled)
    assert (again == fresh[0]).all()


def test_the_next_item_depends_on_the_latest_events(ordered):
    train, _ = ordered
    model = SASRec(n_factors=32, max_len=20, max_iter=30, learning_rate=5e-3, random_state=0)
    model.fit(train)
    items = train.item_id.unique()
    a = pd.DataFrame({"user_id": "s", "item_id": items[:6], "timestamp": range(6)})
    b = a.assign(item_id=items[[5, 4, 3, 2, 1, 0]])  # same set, reversed
    first = model.recommend(["s"], k=10, history=a)
    second = model.recommend(["s"], k=10, history=b)
    assert set(first[0]) != set(second[0])


def test_sequential_models_need_timestamps(ordered):
    train, _ = ordered
    with pytest.raises(ValueError, match="timestamp"):
        SASRec(max_iter=1).fit(train[["user_id", "item_id"]])
    model = SASRec(n_factors=8, max_len=12, max_iter=1, random_state=0).fit(train)
    session = train[train.user_id == train.user_id.iloc[0]].assign(user_id="s")
    with pytest.raises(ValueError, match="history has no 'timestamp' column"):  # not guessed
        model.recommend(["s"], history=session[["user_id", "item_id"]])


def test_users_with_one_event_only_are_refused():
    X = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 2, 3], "timestamp": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"at least two events; every user in X has one\. "):
        GRU4Rec(max_iter=1).fit(X)
    two = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 3, 4], "timestamp": range(4)})
    with pytest.raises(ValueError, match="once early stopping has held out"):  # X has two
        SASRec(max_iter=1, early_stopping=True, validation_fraction=1.0).fit(two)


def test_bert4rec_scores_from_the_appended_mask(ordered):
    train, _ = ordered
    model = BERT4Rec(n_factors=8, max_len=6, max_iter=1, random_state=0).fit(train)
    events = model._train.take_users(np.array([0]))
    sequences, lengths = model._inference_sequences(events)
    n = min(int(np.diff(events.indptr)[0]), 5)
    assert lengths.tolist() == [n + 1]
    assert sequences[0, n].item() == model._train.n_items + 1
    assert (sequences[0, :n] == torch.from_numpy(events.item[-n:] + 1)).all()


def test_early_stopping_on_every_users_last_event(ordered):
    train, _ = ordered
    model = GRU4Rec(
        n_factors=16,
        max_len=20,
        max_iter=8,
        learning_rate=5e-3,
        early_stopping=True,
        validation_fraction=1.0,
        n_iter_no_change=2,
        random_state=0,
    ).fit(train)
    assert len(model.validation_scores_) == model.n_iter_
    best = int(np.argmax(model.validation_scores_)) + 1
    assert model.best_iteration_ == best


@pytest.mark.parametrize("causal", [True, False])
@ENCODERS
def test_last_hidden_computes_only_the_last_query_but_agrees(causal, options):
    torch.manual_seed(0)
    model = Transformer(30, 16, 3, 2, 32, max_len=8, causal=causal, **options).eval()
    sequences = torch.tensor([[1, 2, 3, 4, 0, 0], [5, 6, 0, 0, 0, 0], [7, 8, 9, 10, 11, 12]])
    lengths = torch.tensor([4, 2, 6])
    with torch.no_grad():
        full = model(sequences)[torch.arange(3), lengths - 1]
        torch.testing.assert_close(model.last_hidden(sequences, lengths), full)


def test_bert4rec_head_and_bias_reach_the_retrieval_vectors(ordered):
    train, _ = ordered
    model = BERT4Rec(n_factors=8, max_len=12, max_iter=1, random_state=0).fit(train)
    with torch.no_grad():
        model.module_.output_bias.copy_(torch.linspace(-1, 1, model._train.n_items))
    context = model._training_context(np.arange(5))
    U, I = model._user_item_vectors(context)
    sequences, lengths = model._inference_sequences(context.events)
    with torch.no_grad():
        hidden = model.module_.last_hidden(sequences, lengths)
        expected = hidden @ model.module_.item_weight().T + model.module_.output_bias
    torch.testing.assert_close(U @ I.T, expected)


def test_heads_must_divide_the_factors(ordered):
    train, _ = ordered
    with pytest.raises(ValueError, match="'n_heads' parameter of BERT4Rec must divide n_factors=8"):
        BERT4Rec(n_factors=8, n_heads=3, max_iter=1).fit(train)
