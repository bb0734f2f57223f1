"""Two-sided embedding modules: the biased dot product (MF, skip-gram) and NeuMF."""

from __future__ import annotations

import torch
from torch import nn

from .layers import MLP, embedding, lookup, pair_up


class DotProduct(nn.Module):
    """``score(u, i) = p_u · q_i + b_u + b_i + b`` (biases optional).

    ``forward(users (B,), items (B,) or (B, N))`` scores pairs; ``score_all(users,
    items=None)`` scores every row against one shared item list (all items by default).
    Rows are gathered with :func:`lookup` (cheap backward for the width-1 bias tables).
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int, bias=True, std=0.1):
        super().__init__()
        self.user = embedding(n_users, n_factors, std)
        self.item = embedding(n_items, n_factors, std)
        self.bias = bias
        if bias:
            self.user_bias = embedding(n_users, 1, 0.0)
            self.item_bias = embedding(n_items, 1, 0.0)
            self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        p = lookup(self.user, users)  # (B, D)
        q = lookup(self.item, items)  # (B, D) or (B, N, D)
        scores = (q * (p if items.dim() == 1 else p[:, None])).sum(-1)  # (B,) or (B, N)
        if self.bias:
            b = lookup(self.user_bias, users).squeeze(-1)  # (B,)
            b = b if items.dim() == 1 else b[:, None]
            scores = scores + b + lookup(self.item_bias, items).squeeze(-1) + self.offset
        return scores

    def score_all(self, users: torch.Tensor, items: torch.Tensor | None = None):
        q = self.item.weight if items is None else lookup(self.item, items)  # (N, D)
        scores = lookup(self.user, users) @ q.T  # (B, N)
        if self.bias:
            item_bias = self.item_bias.weight if items is None else lookup(self.item_bias, items)
            scores = scores + lookup(self.user_bias, users) + item_bias.T + self.offset
        return scores

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The user and item factors, biases left out."""
        return self.user.weight, self.item.weight

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(U, I)`` with ``U @ I.T`` equal to ``score_all``: biases folded in."""
        U, I = self.user.weight, self.item.weight
        if not self.bias:
            return U, I
        ones_u, ones_i = U.new_ones(len(U), 1), I.new_ones(len(I), 1)
        U = torch.cat([U, self.user_bias.weight + self.offset, ones_u], 1)  # (n_users, D + 2)
        I = torch.cat([I, ones_i, self.item_bias.weight], 1)  # (n_items, D + 2)
        return U, I


class NeuMF(nn.Module):
    """Neural matrix factorisation (He et al. 2017): a GMF branch ``p_u ⊙ q_i``, an MLP
    branch over ``[p'_u, q'_i]``, or both, fused by one linear output layer.

    ``interaction`` is ``"gmf"``, ``"mlp"`` or ``"neumf"``; ``layers`` are the MLP
    sizes, the first being the concatenated embedding width (two halves).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_factors: int,
        layers: tuple[int, ...],
        interaction: str = "neumf",
        dropout: float = 0.0,
        std: float = 0.01,
    ):
        super().__init__()
        self.interaction = interaction
        self.n_items = n_items
        width = 0
        if interaction in ("gmf", "neumf"):
            self.user_gmf = embedding(n_users, n_factors, std)
            self.item_gmf = embedding(n_items, n_factors, std)
            width += n_factors
        if interaction in ("mlp", "neumf"):
            self.user_mlp = embedding(n_users, layers[0] // 2, std)
            self.item_mlp = embedding(n_items, layers[0] // 2, std)
            self.mlp = MLP(list(layers), dropout)
            width += layers[-1]
        self.output = nn.Linear(width, 1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users = pair_up(users, items)  # same shape as items: (B,) or (B, N)
        parts = []
        if self.interaction in ("gmf", "neumf"):
            parts.append(lookup(self.user_gmf, users) * lookup(self.item_gmf, items))  # (..., F)
        if self.interaction in ("mlp", "neumf"):
            user, item = lookup(self.user_mlp, users), lookup(self.item_mlp, items)
            pair = torch.cat([user, item], -1)  # (..., L0)
            parts.append(self.mlp(pair))  # (..., L_last)
        return self.output(torch.cat(parts, -1)).squeeze(-1)  # (B,) or (B, N)

    def score_all(self, users: torch.Tensor, items: torch.Tensor | None = None):
        if items is None:
            items = torch.arange(self.n_items, device=self.output.weight.device)
        return self(users, items[None, :].expand(len(users), -1))  # (B, N)


#: Losses :func:`sgd_step` takes in closed form.
CLOSED_FORM_LOSSES = ("bpr", "bce")


@torch.no_grad()
def sgd_step(
    module: DotProduct,
    batch: dict,
    loss: str,
    learning_rate: float,
    regularization: float = 0.0,
    weight_decay: float = 0.0,
    trainable=None,
) -> torch.Tensor:
    """One plain-SGD step of :class:`DotProduct` on the ``bpr`` or ``bce`` loss, with
    the gradient written out; returns the batch's loss.

    The losses are those ``skrec.nn.losses`` and MF's penalty give autograd, with
    ``s`` the scores of the positives (B,) and of their negatives (B, N):

    - ``bpr``: the mean of ``-log σ(s_b - s_bn)`` over the valid pairs;
    - ``bce``: the mean over rows of ``-log σ(s_b) - Σ_n log(1 - σ(s_bn))`` (valid
      negatives),

    plus ``regularization / B`` times the squared norms of the rows looked up (users,
    positives and negatives, biases included). Writing ``g`` for the loss's gradient in
    the scores, the step moves ``p_u`` by ``-lr (g_b q_i + Σ_n g_bn q_j)``, ``q_i`` by
    ``-lr g_b p_u``, ``q_j`` by ``-lr g_bn p_u`` (the biases alike, the offset by the sum
    of all), and each looked-up row by ``-lr · 2 regularization / B`` times itself. Only
    the batch's rows are read and written, by ``index_add_``: no dense gradient tables,
    no autograd graph, no optimizer pass over the tables. BPR depends on the scores'
    differences only, so it is computed from ``q_i - q_j`` (one product fewer; the user
    bias and the offset get no gradient). ``weight_decay`` shrinks every row of the
    trained tables, as SGD's does. ``trainable`` holds the parameters to update
    (default: all), e.g. only the user side for a fold-in.

    ``batch`` holds ``query`` (B,), ``item`` (B,), ``negative`` (B, N) and ``valid``
    (B, N) or None.
    """
    if loss not in CLOSED_FORM_LOSSES:
        raise ValueError(f"sgd_step takes {CLOSED_FORM_LOSSES}; got {loss!r}.")
    users, items, negatives = batch["query"], batch["item"], batch["negative"]
    valid = batch.get("valid")
    n_rows, n_neg = negatives.shape
    flat_neg = negatives.reshape(-1)
    trained = {id(p) for p in (module.parameters() if trainable is None else trainable)}
    p = module.user.weight.index_select(0, users)  # (B, D)
    q_pos = module.item.weight.index_select(0, items)  # (B, D)
    q_neg = module.item.weight.index_select(0, flat_neg).view(n_rows, n_neg, -1)  # (B, N, D)
    if module.bias:
        user_bias = module.user_bias.weight.index_select(0, users)  # (B, 1)
        bias_pos = module.item_bias.weight.index_select(0, items)  # (B, 1)
        bias_neg = module.item_bias.weight.index_select(0, flat_neg)  # (B N, 1)
    invalid = None if valid is None else ~valid
    # step_pos (B, 1), step_neg (B, N): lr times minus the loss's gradient in the scores
    # of the positives, and its gradient in the negatives' scores (pushed down).
    if loss == "bpr":
        diff = q_pos[:, None] - q_neg  # (B, N, D)
        x = (diff * p[:, None]).sum(-1)  # (B, N)
        if module.bias:
            x += bias_pos - bias_neg.view(n_rows, n_neg)
        per_pair = torch.nn.functional.softplus(-x)  # -log σ(x)
        step_neg = torch.sigmoid(x.neg_())  # σ(-x)
        if invalid is not None:
            per_pair.masked_fill_(invalid, 0.0)
            step_neg.masked_fill_(invalid, 0.0)
            count = valid.sum().clamp_min(1)
        else:
            count = torch.tensor(float(x.numel()), device=x.device)
        value = per_pair.sum() / count
        step_neg.div_(count).mul_(learning_rate)
        step_pos = step_neg.sum(1, keepdim=True)  # (B, 1), a new tensor even for N = 1
        if n_neg == 1:  # diff is not needed any more: scale it in place
            user_delta = diff.view(n_rows, -1).mul_(step_neg)
        else:
            user_delta = (step_neg[..., None] * diff).sum(1)
        user_bias_delta = None  # the user bias and the offset cancel in a difference
    else:
        pos = (p * q_pos).sum(1, keepdim=True)  # (B, 1)
        neg = (p[:, None] * q_neg).sum(-1)  # (B, N)
        if module.bias:
            shift = user_bias + module.offset  # (B, 1)
            pos += shift + bias_pos
            neg += shift + bias_neg.view(n_rows, n_neg)
        neg_loss = torch.nn.functional.softplus(neg)
        step_neg = torch.sigmoid(neg)
        if invalid is not None:
            neg_loss.masked_fill_(invalid, 0.0)
            step_neg.masked_fill_(invalid, 0.0)
        value = (torch.nn.functional.softplus(-pos).sum() + neg_loss.sum()) / n_rows
        step_pos = torch.sigmoid(pos.neg_()).mul_(learning_rate / n_rows)  # σ(-s_b)
        step_neg.mul_(learning_rate / n_rows)
        user_delta = q_pos * step_pos - (step_neg[..., None] * q_neg).sum(1)
        user_bias_delta = step_pos - step_neg.sum(1, keepdim=True)  # (B, 1)
    shrink = 2.0 * regularization * learning_rate / n_rows  # the penalty's step, per row
    if regularization > 0:
        rows = [p, q_pos, q_neg]
        if module.bias:
            rows += [user_bias, bias_pos, bias_neg]
        squares = torch.stack([torch.dot(r.reshape(-1), r.reshape(-1)) for r in rows]).sum()
        value = value + regularization * squares / n_rows

    # Every update is computed from the rows gathered above (the pre-step parameters)
    # before any is written, as a dense gradient step would. (index_add_ is several
    # times slower with an alpha, so signs go into the rows.)
    def shrunk(delta, rows):  # delta minus the penalty's step on the gathered rows
        return delta.sub_(rows, alpha=shrink) if shrink else delta

    updates = []  # (table, row indices, rows added)
    if id(module.user.weight) in trained:
        updates.append((module.user.weight, users, shrunk(user_delta, p)))
    if id(module.item.weight) in trained:
        down = p[:, None] * step_neg.neg()[..., None]  # (B, N, D)
        updates.append((module.item.weight, items, shrunk(p * step_pos, q_pos)))
        updates.append((module.item.weight, flat_neg, shrunk(down, q_neg).view(-1, p.shape[1])))
    if module.bias and id(module.item_bias.weight) in trained:
        up = shrunk(step_pos, bias_pos)  # step_pos is not needed after this
        updates.append((module.item_bias.weight, items, up))
        updates.append(
            (module.item_bias.weight, flat_neg, shrunk(-step_neg.reshape(-1, 1), bias_neg))
        )
    offset_delta = None
    if module.bias and user_bias_delta is not None and id(module.offset) in trained:
        offset_delta = user_bias_delta.sum()  # the offset is not penalised
    if module.bias and id(module.user_bias.weight) in trained:
        if user_bias_delta is not None:
            updates.append((module.user_bias.weight, users, shrunk(user_bias_delta, user_bias)))
        elif shrink:
            updates.append((module.user_bias.weight, users, user_bias.mul_(-shrink)))
    if weight_decay > 0:
        for parameter in module.parameters():
            if id(parameter) in trained:
                parameter.mul_(1.0 - learning_rate * weight_decay)
    for table, index, rows in updates:
        table.index_add_(0, index, rows)
    if offset_delta is not None:
        module.offset.add_(offset_delta)
    return value
