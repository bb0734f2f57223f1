"""Building blocks shared by the embedding, NeuMF, feature-crossing and two-tower models."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Sequential):
    """Linear -> activation -> dropout, for each consecutive pair of ``sizes``.

    ``MLP([64, 32, 16])`` maps (..., 64) to (..., 16); the last layer has the
    activation too (heads add their own linear output).
    """

    def __init__(self, sizes: list[int], dropout: float = 0.0, activation=nn.ReLU):
        layers = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(d_in, d_out), activation()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


def embedding(n: int, d: int, std: float) -> nn.Embedding:
    """An ``n x d`` embedding table initialised from N(0, std²)."""
    table = nn.Embedding(n, d)
    nn.init.normal_(table.weight, std=std)
    return table


def lookup(table: nn.Embedding, index: torch.Tensor) -> torch.Tensor:
    """``table(index)`` through ``index_select``: the same rows, with a backward pass
    (``index_add``) several times cheaper than the embedding kernel's on CPU for narrow
    tables, and no slower for wide ones."""
    rows = table.weight.index_select(0, index.reshape(-1))  # (numel, D)
    return rows.view(*index.shape, table.embedding_dim)


def pair_up(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``users`` (B,) broadcast to the shape of ``items``: (B,) or (B, N)."""
    return users if items.dim() == 1 else users[:, None].expand_as(items)
