"""Each user's events as fixed-length id sequences, built vectorised.

Item index ``i`` is stored as ``i + 1`` so that 0 can pad; a model's mask token (BERT4Rec)
is ``n_items + 1``. Events come from :class:`~skrec.data.interactions.Interactions`,
already in time order per user (ties keep input order).
"""

from __future__ import annotations

import numpy as np
import torch

PAD = 0
SIDES = ("left", "right")


def padded_sequences(
    indptr: np.ndarray, item: np.ndarray, max_len: int, *, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``max_len`` events of each user as a padded (n_users, max_len) array.

    Parameters
    ----------
    indptr, item : user ``u``'s items, in time order, are ``item[indptr[u]:indptr[u+1]]``.
    max_len : int
    side : {"right", "left"}
        Where the padding goes: ``right`` keeps each sequence at column 0 (causal models
        then need no padding mask), ``left`` aligns every last event at the last column.

    Returns
    -------
    sequences : int64 tensor (n_users, max_len) of item index + 1, 0 where padded.
    lengths : int64 tensor (n_users,), the number of real events in each row.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}; got {side!r}.")
    counts = np.diff(indptr)
    lengths = np.minimum(counts, max_len)
    n_users = len(lengths)
    rows = np.repeat(np.arange(n_users), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    source = np.repeat(indptr[1:] - lengths, lengths) + within  # the last `lengths` events
    columns = within if side == "right" else within + max_len - lengths[rows]
    out = np.zeros((n_users, max_len), dtype=np.int64)
    out[rows, columns] = item[source] + 1
    return torch.from_numpy(out), torch.from_numpy(lengths.astype(np.int64))


def shifted_targets(sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-item training pairs from (n, max_len + 1) padded sequences.

    Returns ``(inputs, targets)``, both (n, max_len): ``targets[:, j]`` is the item that
    follows ``inputs[:, j]``. Both are 0 where either side is padding, so a row's last
    event is a target only, never an input: its last real input is the one whose next
    item is the last event, as the last event is the one inference queries from. (A
    right-padded row that kept its last event as an input without a target would
    count its positions from that event, one off from inference.)
    """
    inputs, targets = sequences[:, :-1], sequences[:, 1:]
    targets = targets * (inputs != PAD)
    return inputs * (targets != PAD), targets


def mask_items(
    sequences: torch.Tensor, mask_prob: float, mask_token: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked-item training pairs (BERT4Rec's cloze task) from padded sequences.

    Each real position is replaced by ``mask_token`` with probability ``mask_prob``; a
    sequence where none was drawn gets its last event masked, so every row trains.
    Returns ``(inputs, targets)``: ``targets`` holds the original item where masked, 0
    elsewhere.
    """
    real = sequences != PAD
    masked = (torch.rand(sequences.shape, generator=generator) < mask_prob) & real
    lengths = real.sum(1)
    none = ~masked.any(1) & (lengths > 0)
    if none.any():
        # with right padding the last event is at lengths - 1; with left at the end
        last = torch.where(real[:, -1], sequences.shape[1] - 1, lengths - 1)
        rows = none.nonzero(as_tuple=True)[0]
        masked[rows, last[rows]] = True
    inputs = torch.where(masked, torch.full_like(sequences, mask_token), sequences)
    return inputs, torch.where(masked, sequences, torch.zeros_like(sequences))


def trim(sequences: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drop the padding columns every row of a right-padded batch shares."""
    width = max(int((sequences != PAD).sum(1).max()) if len(sequences) else 0, 1)
    return tuple(t[:, :width] for t in (sequences, *others))
