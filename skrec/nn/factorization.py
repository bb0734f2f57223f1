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
