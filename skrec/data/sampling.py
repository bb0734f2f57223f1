"""Mini-batches and negative samplers, vectorised (no per-sample Python loops)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import torch

SAMPLERS = ("uniform", "popularity", "in_batch", "hard")

#: Redraw rounds for negatives that hit a positive; what is left is marked invalid.
_REJECTION_ROUNDS = 8
#: Candidates scored per hard negative.
_HARD_POOL = 4
#: Positives are looked up in a dense (n_users, n_items) bitmap up to this many cells,
#: by binary search in the sorted pair keys beyond.
_DENSE_LOOKUP_CELLS = 2**26


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Indices ``0..n-1`` in a fresh random order, ``batch_size`` at a time."""
    if n == 0:
        return
    order = torch.randperm(n, generator=generator)
    yield from torch.split(order, int(batch_size))  # torch refuses numpy ints


class NegativeSampler:
    """Negative items for batches of (user, positive item) pairs.

    Parameters
    ----------
    kind : {"uniform", "popularity", "in_batch", "hard"}
        ``uniform`` over the catalog; ``popularity`` proportional to ``counts ** power``;
        ``in_batch`` the batch's other positives, shared by every row; ``hard`` the
        best-scored of ``4 N`` uniform candidates under the current model.
    n_items : int
    counts : array of shape (n_items,), optional
        Item frequencies (``popularity``, and the log-Q correction of ``in_batch``).
    power : float, default=0.75
    positives : csr_matrix of shape (n_users, n_items), optional
        Each user's positive items. Negatives that hit one are redrawn (a few rounds,
        vectorised); any left are marked invalid and the losses skip them.
    """

    def __init__(
        self,
        kind: str,
        n_items: int,
        *,
        counts: np.ndarray | None = None,
        power: float = 0.75,
        positives: sp.csr_matrix | None = None,
    ):
        if kind not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}; got {kind!r}.")
        self.kind = kind
        self.n_items = int(n_items)
        counts = np.ones(n_items) if counts is None else np.asarray(counts, dtype=np.float64)
        weights = counts
        if kind == "popularity":  # an unseen item is never drawn, whatever the power
            weights = np.zeros_like(counts)
            with np.errstate(over="ignore"):  # an overflow is refused just below
                np.power(counts, power, out=weights, where=counts > 0)
        if not np.isfinite(weights).all() or not weights.sum() > 0:
            raise ValueError(
                f"The {kind} sampler's weights (item counts ** {power}) are not finite and "
                "positive; use a moderate power (e.g. 0.75)."
            )
        probability = weights / weights.sum()
        self._cdf = torch.from_numpy(np.cumsum(probability))
        self._log_q = torch.from_numpy(np.log(np.maximum(probability, 1e-12))).float()
        self._keys = self._dense = None
        if positives is not None:
            coo = positives.tocoo()
            keys = coo.row.astype(np.int64) * n_items + coo.col.astype(np.int64)
            if positives.shape[0] * n_items <= _DENSE_LOOKUP_CELLS:
                self._dense = torch.zeros(positives.shape[0] * n_items, dtype=torch.bool)
                self._dense[torch.from_numpy(keys)] = True
            else:
                self._keys = torch.from_numpy(np.sort(keys))

    def log_q(self, items: torch.Tensor) -> torch.Tensor:
        """Log sampling probability of ``items`` (for the log-Q correction)."""
        if self.kind in ("uniform", "hard"):
            return torch.full(items.shape, -float(np.log(self.n_items)))
        return self._log_q[items]

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) pair is a known positive; broadcasts."""
        keys = users * self.n_items + items
        if self._dense is not None:
            return self._dense[keys]
        if self._keys is None or len(self._keys) == 0:
            return torch.zeros(keys.shape, dtype=torch.bool)
        where = torch.searchsorted(self._keys, keys).clamp_max(len(self._keys) - 1)
        return self._keys[where] == keys

    def _draw(self, shape, generator) -> torch.Tensor:
        if self.kind == "popularity":
            u = torch.rand(shape, generator=generator, dtype=torch.float64)
            return torch.searchsorted(self._cdf, u).clamp_max(self.n_items - 1)
        return torch.randint(self.n_items, shape, generator=generator)

    def _draw_rejecting(self, users, positives, n, generator):
        items = self._draw((len(users), n), generator)  # (B, n)
        bad = self.is_positive(users[:, None], items) | (items == positives[:, None])
        rows, cols = bad.nonzero(as_tuple=True)  # only these are redrawn and re-checked
        for _ in range(_REJECTION_ROUNDS):
            if len(rows) == 0:
                break
            redrawn = self._draw((len(rows),), generator)
            items[rows, cols] = redrawn
            still = self.is_positive(users[rows], redrawn) | (redrawn == positives[rows])
            bad[rows, cols] = still
            rows, cols = rows[still], cols[still]
        return items, ~bad

    def sample(
        self,
        users: torch.Tensor,
        positives: torch.Tensor,
        n: int,
        generator: torch.Generator,
        score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Negatives for each row and which of them are valid.

        Returns ``(items, valid)``: ``items`` (B, n), or (B,) for ``in_batch``, where
        row b's negatives are all of ``items`` (shared); ``valid`` is (B, n) or (B, B).
        ``score(users, items (B, M)) -> (B, M)`` scores candidates for ``hard``.
        """
        if self.kind == "in_batch":
            valid = positives[None, :] != positives[:, None]  # (B, B)
            return positives, valid & ~self.is_positive(users[:, None], positives[None, :])
        if self.kind != "hard":
            return self._draw_rejecting(users, positives, n, generator)
        if score is None:
            raise ValueError("the 'hard' sampler needs the model's score function.")
        pool, valid = self._draw_rejecting(users, positives, _HARD_POOL * n, generator)
        with torch.no_grad():  # ranked on the CPU, where the pool is
            scores = score(users, pool).cpu().masked_fill(~valid, -torch.inf)
        best = torch.topk(scores, n, dim=1).indices.cpu()  # (B, n)
        return pool.gather(1, best), valid.gather(1, best)
