"""Top-k retrieval over a whole catalog: batched, seen-item masked, allow-listed.

Every model's ``recommend`` and every evaluation go through :func:`topk`. Scores are
produced one chunk of users at a time, so peak memory depends on the chunk size and
the catalog, not on the number of users.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

#: Score-matrix elements per chunk (users x candidates); 2**22 float32 = 16 MiB.
DEFAULT_CHUNK_ELEMENTS = 2**22


def chunk_rows(n_columns: int, chunk_elements: int | None = None) -> int:
    """Users per chunk so one chunk holds about ``chunk_elements`` scores."""
    return max(1, (chunk_elements or DEFAULT_CHUNK_ELEMENTS) // max(1, n_columns))


def _ordered_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row, best first; equal scores ordered by lower column index.

    ``torch.topk`` leaves the order of ties unspecified. One extra candidate tells
    whether the k-th best value is shared with a column outside the top-k; only such
    rows are re-ranked with a full stable sort.
    """
    extra = min(k + 1, scores.shape[1])
    values, index = torch.topk(scores, extra, dim=1)  # (B, k + 1)
    if extra > k:
        boundary_ties = values[:, k] == values[:, k - 1]  # (B,)
        values, index = values[:, :k], index[:, :k]
        if boundary_ties.any():
            rows = boundary_ties.nonzero().squeeze(1)
            order = torch.sort(scores[rows], dim=1, descending=True, stable=True).indices[:, :k]
            index[rows] = order
            values[rows] = scores[rows].gather(1, order)
    # Inside the top-k: sort by index, then stably by value, so ties go by index.
    by_index = torch.argsort(index, dim=1)
    index, values = index.gather(1, by_index), values.gather(1, by_index)
    by_value = torch.sort(values, dim=1, descending=True, stable=True).indices
    return index.gather(1, by_value), values.gather(1, by_value)


def _mask(scores: torch.Tensor, exclude: sp.csr_matrix | None, start: int, stop: int) -> None:
    if exclude is None:
        return
    block = exclude[start:stop]
    if block.nnz == 0:
        return
    rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
    scores[
        torch.from_numpy(rows).to(scores.device),
        torch.from_numpy(block.indices.astype(np.int64)).to(scores.device),
    ] = -torch.inf


def topk(
    score_chunk: Callable[[int, int], torch.Tensor],
    n_rows: int,
    n_columns: int,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    chunk_elements: int | None = None,
    check_nan: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns for each of ``n_rows`` rows.

    Parameters
    ----------
    score_chunk : callable ``(start, stop) -> Tensor (stop - start, n_columns)``
        Scores of rows ``start:stop``; any device, float dtype. It must return a new
        tensor (not a view of the caller's data): it is masked in place.
    n_rows, n_columns : int
    k : int
        Number of columns to return per row (``k <= n_columns``).
    exclude : csr_matrix of shape (n_rows, n_columns), optional
        Non-zero entries are never returned (seen items).
    chunk_elements : int, optional
        Score elements held at once; bounds peak memory.
    check_nan : bool, default=True
        Rank NaN scores last. A caller that knows its scores are NaN-free (finite
        vectors) may skip this pass over every chunk.

    Returns
    -------
    index : int64 ndarray (n_rows, k)
        Column indices, best first; -1 where a row has fewer than ``k`` allowed columns.
    scores : float32 ndarray (n_rows, k)
        Their scores; ``-inf`` where ``index`` is -1.
    """
    index = np.empty((n_rows, k), dtype=np.int64)
    values = np.empty((n_rows, k), dtype=np.float32)
    step = chunk_rows(n_columns, chunk_elements)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        scores = score_chunk(start, stop).float()  # (B, C), ours to modify
        if check_nan and scores.isnan().any():
            scores.masked_fill_(scores.isnan(), -torch.inf)
        _mask(scores, exclude, start, stop)
        top_index, top_values = _ordered_topk(scores, k)
        index[start:stop] = top_index.cpu().numpy()
        values[start:stop] = top_values.cpu().numpy()
    index[np.isneginf(values)] = -1
    return index, values


def dense_scorer(scores) -> Callable[[int, int], torch.Tensor]:
    """Chunk scorer over a precomputed (n_rows, n_columns) array or tensor."""
    tensor = torch.as_tensor(scores)
    return lambda start, stop: tensor[start:stop].clone()


def vector_scorer(user_vectors, item_vectors, device="cpu") -> Callable[[int, int], torch.Tensor]:
    """Chunk scorer for inner-product models: ``U[start:stop] @ I.T`` on ``device``."""
    users = torch.as_tensor(user_vectors).to(device)
    items = torch.as_tensor(item_vectors).to(device=device, dtype=users.dtype)
    return lambda start, stop: users[start:stop] @ items.T


def restrict_columns(exclude: sp.csr_matrix | None, columns: np.ndarray, n_items: int):
    """Re-index an exclusion matrix from the full catalog to the ``columns`` subset."""
    if exclude is None:
        return None
    position = np.full(n_items, -1, dtype=np.int64)
    position[columns] = np.arange(len(columns))
    coo = exclude.tocoo()
    keep = position[coo.col] >= 0
    return sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (coo.row[keep], position[coo.col[keep]])),
        shape=(exclude.shape[0], len(columns)),
    )
