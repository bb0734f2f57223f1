"""Sequence encoders: one transformer (causal for SASRec, bidirectional for BERT4Rec) and
a GRU. Both read right-padded item sequences (index + 1, 0 pads) and return one hidden
state per position; the item embeddings double as the output layer (tied, as in both
transformer papers), so scores are ``hidden @ item_weight.T``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import lookup


class SequenceEncoder(nn.Module):
    """Shared item table: row 0 pads, rows ``1..n_items`` are the items, row
    ``n_items + 1`` is the mask token of masked-item training."""

    def __init__(self, n_items: int, d: int):
        super().__init__()
        self.n_items = n_items
        self.items = nn.Embedding(n_items + 2, d, padding_idx=0)
        nn.init.normal_(self.items.weight[1:], std=d**-0.5)
        self.output_bias: nn.Parameter | None = None
        #: One logit added to every item's score in sampled losses that are not
        #: shift-invariant (see ``SequentialModel._build_module``); rankings ignore it.
        self.score_offset: nn.Parameter | None = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The offset exists only for some losses and did not exist in files written
        # before it; rankings never read it, so take whatever the saved state has.
        key = prefix + "score_offset"
        if key in state_dict and self.score_offset is None:
            self.score_offset = nn.Parameter(torch.zeros((), dtype=state_dict[key].dtype))
        elif key not in state_dict and self.score_offset is not None:
            self.score_offset = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def mask_token(self) -> int:
        return self.n_items + 1

    def item_weight(self) -> torch.Tensor:
        """Output vectors of the items, (n_items, d)."""
        return self.items.weight[1 : self.n_items + 1]

    def last_hidden(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Hidden state at each row's last real position, (B, d)."""
        hidden = self(sequences)
        return hidden[torch.arange(len(sequences), device=hidden.device), lengths - 1]


class _Block(nn.Module):
    """One transformer block, wired one of two ways (``wiring``):

    - ``"pre_norm"``: ``x + attention(LN x)``, then ``x + feed-forward(LN x)``, with
      dropout on the attention's output too;
    - ``"sasrec"``, the SASRec authors' block: the queries are ``LN1 x`` and the keys and
      values ``x``; ``y = LN1 x + attention``, then ``LN2 y + feed-forward(LN2 y)``. The
      residual stream is normalised in every block, and the attention's output has no
      dropout (its weights have).
    """

    #: What a block pickled before the wiring option (stop 17) lacks: it was pre-norm.
    sasrec = False

    def __init__(self, d, n_heads, dim_feedforward, dropout, activation, wiring="pre_norm"):
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, dim_feedforward), nn.Linear(dim_feedforward, d)
        self.activation = activation
        self.dropout = dropout
        self.sasrec = wiring == "sasrec"

    def forward(self, x, attn_mask, causal, rows=None):
        """``x`` (B, L, D) -> (B, L, D); with ``rows`` (B,) only the query at each row's
        position ``rows`` is computed (keys are all positions allowed by ``attn_mask``),
        giving (B, 1, D): inference needs the last position only."""
        B, L, D = x.shape
        h = self.norm1(x)
        keys = x if self.sasrec else h  # what keys and values are computed from
        residual = h if self.sasrec else x
        weight, bias = self.qkv.weight, self.qkv.bias
        if rows is not None:
            picked = torch.arange(B, device=x.device)
            h, residual = h[picked, rows][:, None], residual[picked, rows][:, None]
            causal = False  # the keys after `rows` are padding, masked by attn_mask
        if rows is None and not self.sasrec:  # one product for q, k and v
            qkv = self.qkv(h).view(B, L, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q = F.linear(h, weight[:D], bias[:D]).view(B, -1, self.n_heads, D // self.n_heads)
            q = q.transpose(1, 2)
            kv = F.linear(keys, weight[D:], bias[D:]).view(B, L, 2, self.n_heads, -1)
            k, v = kv.permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=p, is_causal=causal
        )  # (B, heads, L or 1, D / heads)
        out = self.out(attended.transpose(1, 2).reshape(B, -1, D))
        if self.sasrec:
            x = self.norm2(residual + out)
            h = x
        else:
            x = residual + F.dropout(out, p, self.training)
            h = self.norm2(x)
        h = F.dropout(self.activation(self.ff1(h)), p, self.training)
        return x + F.dropout(self.ff2(h), p, self.training)


class Transformer(SequenceEncoder):
    """Item + learned position embeddings through ``n_layers`` transformer blocks.

    ``causal=True`` (SASRec): position j attends to positions ≤ j, so right padding
    needs no mask. ``causal=False`` (BERT4Rec): every real position attends to every
    real position. ``positions="from_end"`` counts positions back from each sequence's
    last event (the last event always has position ``max_len - 1``), as with left
    padding; ``"from_start"`` counts them from its first. ``wiring`` is the blocks'
    (see :class:`_Block`). ``init_std`` draws the item and position embeddings and the
    blocks' linear weights from N(0, init_std²), with zero biases; None keeps
    N(0, 1/d) for the embeddings and torch's default for the linear layers.
    ``qkv_init="xavier"`` then redraws the query/key/value projection Xavier-uniform
    over its (3d, d) weight, as torch's ``nn.MultiheadAttention`` draws its input
    projection (std 0.088 at d=64, against 0.02): the SASRec authors' code builds its
    attention from that module and draws only the other weights at ``init_std``.
    """

    #: What a Transformer pickled before the positions option (stop 17) lacks: its
    #: positions counted from the end.
    from_start = False

    def __init__(
        self,
        n_items: int,
        d: int = 64,
        n_layers: int = 2,
        n_heads: int = 1,
        dim_feedforward: int = 64,
        dropout: float = 0.1,
        max_len: int = 50,
        causal: bool = True,
        activation: str = "relu",
        head: bool = False,
        wiring: str = "pre_norm",
        positions: str = "from_end",
        init_std: float | None = None,
        qkv_init: str | None = None,
    ):
        super().__init__(n_items, d)
        if d % n_heads:
            raise ValueError(f"n_factors={d} must be divisible by n_heads={n_heads}.")
        self.max_len, self.causal, self.scale = max_len, causal, math.sqrt(d)
        self.positions = nn.Embedding(max_len, d)
        nn.init.normal_(self.positions.weight, std=d**-0.5)
        act = {"relu": F.relu, "gelu": F.gelu}[activation]
        if wiring not in ("pre_norm", "sasrec") or positions not in ("from_end", "from_start"):
            raise ValueError(f"Unknown wiring {wiring!r} or positions {positions!r}.")
        if qkv_init not in (None, "xavier"):
            raise ValueError(f"Unknown qkv_init {qkv_init!r}; use None or 'xavier'.")
        self.from_start = positions == "from_start"
        self.blocks = nn.ModuleList(
            _Block(d, n_heads, dim_feedforward, dropout, act, wiring) for _ in range(n_layers)
        )
        if init_std is not None:
            for layer in self.blocks.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=init_std)
                    nn.init.zeros_(layer.bias)
            nn.init.normal_(self.items.weight[1:], std=init_std)
            nn.init.normal_(self.positions.weight, std=init_std)
        if qkv_init == "xavier":
            for block in self.blocks:
                nn.init.xavier_uniform_(block.qkv.weight)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        if head:  # BERT's masked-LM head: dense + GELU + layer norm, and an item bias
            self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
            self.output_bias = nn.Parameter(torch.zeros(n_items))
        else:
            self.head = nn.Identity()

    def forward(self, sequences: torch.Tensor, last: torch.Tensor | None = None):
        """Hidden states (B, L, D); with ``last`` (B,) only those positions', (B, D)."""
        real = sequences != 0
        lengths = real.sum(1, keepdim=True)
        L = sequences.shape[1]
        position = torch.arange(L, device=sequences.device)
        if self.from_start:
            position = position.clamp(max=self.max_len - 1)[None]
        else:
            position = (position + self.max_len - lengths).clamp(0, self.max_len - 1)
        x = lookup(self.items, sequences) * self.scale + lookup(self.positions, position)
        x = self.dropout(x) * real[..., None]
        keys = real[:, None, None, :]  # (B, 1, 1, L)
        attn_mask = None if self.causal else keys
        for i, block in enumerate(self.blocks):
            if last is not None and i == len(self.blocks) - 1:
                return self.head(self.norm(block(x, keys, self.causal, rows=last))[:, 0])
            x = block(x, attn_mask, self.causal)
        return self.head(self.norm(x))

    def last_hidden(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self(sequences, last=lengths - 1)


class GRU(SequenceEncoder):
    """Item embeddings through a GRU (GRU4Rec, Hidasi et al.); with right padding each
    real position's state depends on the events up to it only."""

    def __init__(self, n_items: int, d: int = 64, n_layers: int = 1, dropout: float = 0.1):
        d, n_layers = int(d), int(n_layers)  # nn.GRU refuses numpy ints
        super().__init__(n_items, d)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(
            d, d, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0
        )

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.gru(self.dropout(lookup(self.items, sequences)))
        return self.dropout(hidden)
