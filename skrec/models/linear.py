"""Item-item linear models: EASE (closed form) and SLIM (sparse, non-negative)."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from ..base import BaseRecommender, UserContext
from ..utils.validation import Interval


def _available_memory_bytes() -> float:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return float("inf")


def _binary_gram(seen: sp.csr_matrix) -> np.ndarray:
    """Item co-occurrence counts ``X'X`` of the binarised user-item matrix, float64."""
    binary = seen.copy()
    binary.data[:] = 1.0
    return (binary.T @ binary).toarray().astype(np.float64)


class _ItemItem(BaseRecommender):
    """Scores = the user's interaction row times the learned item-item ``coef_``
    (dense for EASE, sparse for SLIM)."""

    def _score_users(self, context: UserContext):
        return _dense_float32(context.events.csr() @ self.coef_)

    def _item_similarities(self, item_idx):
        return _dense_float32(self.coef_[item_idx])


def _dense_float32(matrix) -> torch.Tensor:
    matrix = matrix.toarray() if sp.issparse(matrix) else matrix
    return torch.from_numpy(np.asarray(matrix, dtype=np.float32))


class EASE(_ItemItem):
    """Embarrassingly Shallow Autoencoder: a closed-form item-item model.

    ``B = argmin ||X - XB||² + l2_reg ||B||²`` subject to ``diag(B) = 0``, solved
    exactly from the inverse of the item Gram matrix. A user's scores are their
    interaction row times ``B``.

    Parameters
    ----------
    l2_reg : float, default=500.0
        L2 regularisation (lambda in the paper); a few hundred suits MovieLens-size
        data, larger catalogs want more.

    Attributes
    ----------
    coef_ : ndarray of shape (n_items, n_items)
        The item-item weights ``B`` (float32), zero diagonal.

    Notes
    -----
    Memory is O(n_items²): fit estimates it first and refuses, with the estimate, when
    it would not fit in available memory (use ``SLIM`` or ``ALS`` for such catalogs).

    References
    ----------
    H. Steck. Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019.

    Examples
    --------
    >>> from skrec import EASE
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> EASE(l2_reg=10.0).fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _parameter_constraints = {"l2_reg": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, l2_reg: float = 500.0):
        self.l2_reg = l2_reg

    def _fit(self, data, y):
        n = data.n_items
        needed = 3 * n * n * 8  # Gram, its inverse, and the float32 result with workspace
        available = _available_memory_bytes()
        if needed > available:
            raise MemoryError(
                f"EASE needs about {needed / 2**30:.1f} GiB for {n} items (dense n_items² "
                f"matrices) but only {available / 2**30:.1f} GiB is available. Use SLIM or ALS "
                "for catalogs this large, or filter rare items with KCoreFilter."
            )
        gram = _binary_gram(self._seen)
        gram[np.diag_indices(n)] += self.l2_reg
        precision = np.linalg.inv(gram)
        coef = precision / (-np.diag(precision))
        coef[np.diag_indices(n)] = 0.0
        self.coef_ = coef.astype(np.float32)


class SLIM(_ItemItem):
    """Sparse Linear Methods: sparse, non-negative item-item weights with zero diagonal.

    For every item j, ``w_j = argmin 1/(2 n_users) ||x_j - X w||² + alpha * l1_ratio
    * |w|_1 + alpha * (1 - l1_ratio) / 2 * ||w||²`` with ``w_jj = 0`` (and ``w >= 0``
    when ``positive``): scikit-learn's ElasticNet objective, one problem per item. The
    problems depend on the data only through the item Gram matrix ``X'X``, so all of
    them are solved at once by coordinate descent on it, touching only coefficients
    that change.

    Parameters
    ----------
    alpha : float, default=1e-4
        Overall regularisation strength (ElasticNet's ``alpha``).
    l1_ratio : float in [0, 1], default=0.1
        Share of L1 in the penalty; larger gives sparser ``W``.
    positive : bool, default=True
        Non-negative weights, as in the paper.
    n_neighbors : int, optional
        Only the ``n_neighbors`` items most co-occurring with j may have non-zero
        weight for j (the paper's fsSLIM feature selection); all items by default.
    max_iter : int, default=20
        Coordinate-descent sweeps.
    tol : float, default=1e-4
        Stop when no weight moved more than ``tol`` times the largest weight.
    n_jobs : int, optional
        Torch threads for the sweeps (default: torch's setting; one thread below 1,000
        items, where the per-coordinate work is too small to share).
    verbose : bool, default=False
        Progress bar over sweeps.

    Attributes
    ----------
    coef_ : scipy.sparse.csr_matrix of shape (n_items, n_items)
        ``W``; row i holds item i's contribution to every item's score.
    n_iter_ : int

    References
    ----------
    X. Ning and G. Karypis. SLIM: Sparse Linear Methods for Top-N Recommender Systems.
    ICDM 2011.

    Examples
    --------
    >>> from skrec import SLIM
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> SLIM(alpha=1e-3).fit(X).coef_.shape
    (30, 30)
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "positive": ["boolean"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        alpha: float = 1e-4,
        l1_ratio: float = 0.1,
        positive: bool = True,
        n_neighbors: int | None = None,
        max_iter: int = 20,
        tol: float = 1e-4,
        n_jobs: int | None = None,
        verbose: bool = False,
    ):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.positive = positive
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _fit(self, data, y):
        gram = torch.from_numpy(_binary_gram(self._seen)).float()
        n = data.n_items
        l1 = self.alpha * self.l1_ratio * data.n_users
        l2 = self.alpha * (1.0 - self.l1_ratio) * data.n_users
        allowed = None
        if self.n_neighbors is not None and self.n_neighbors < n - 1:
            ranked = gram.clone()
            ranked.fill_diagonal_(-1)
            # (n_neighbors, n): the features each target may use
            top = torch.topk(ranked, self.n_neighbors, dim=0).indices
            allowed = torch.zeros(n, n, dtype=torch.bool)
            allowed.scatter_(0, top, True)
        threads = torch.get_num_threads()
        if self.n_jobs:
            torch.set_num_threads(self.n_jobs if self.n_jobs > 0 else os.cpu_count() or 1)
        elif n < 1000:
            torch.set_num_threads(1)  # per-coordinate ops this small only pay thread overhead
        try:
            W, self.n_iter_ = _slim_coordinate_descent(
                gram, l1, l2, self.positive, allowed, self.max_iter, self.tol, self.verbose
            )
        finally:
            torch.set_num_threads(threads)
        self.coef_ = sp.csr_matrix(W.numpy().astype(np.float32))


def _slim_coordinate_descent(G, l1, l2, positive, allowed, max_iter, tol, verbose):
    """Coordinate descent for all targets at once on the Gram matrix ``G`` (n, n).

    Column j of ``W`` solves ``min 1/2 w'Gw - g_j'w + l1 |w|_1 + l2/2 |w|²`` with
    ``w_j = 0``. ``HT = (G @ W).T`` is kept up to date with rank-1 updates restricted
    to the targets whose coefficient changed (rows of ``HT``, contiguous in memory).
    """
    n = G.shape[0]
    W = torch.zeros(n, n, dtype=G.dtype)  # W[k, j]: weight of feature k for target j
    HT = torch.zeros(n, n, dtype=G.dtype)  # HT[j, k] = (G @ W)[k, j]
    diag = torch.diagonal(G).clone()
    n_iter = 0
    for sweep in tqdm(range(1, max_iter + 1), disable=not verbose, desc="SLIM", unit="sweep"):
        n_iter = sweep
        biggest_change = 0.0
        for k in range(n):
            old = W[k]  # (n,)
            rho = G[k] - HT[:, k] + diag[k] * old  # correlation of feature k with each target
            if positive:
                new = torch.clamp_min(rho - l1, 0.0)
            else:
                new = torch.sign(rho) * torch.clamp_min(rho.abs() - l1, 0.0)
            new /= diag[k] + l2
            new[k] = 0.0
            if allowed is not None:
                new *= allowed[k]
            delta = new - old
            changed = delta.nonzero().squeeze(1)
            if len(changed) == 0:
                continue
            step = delta[changed]
            HT.index_add_(0, changed, step[:, None] * G[k][None, :])
            W[k, changed] = new[changed]
            biggest_change = max(biggest_change, float(step.abs().max()))
        scale = float(W.abs().max())
        if scale == 0 or biggest_change <= tol * scale:
            break
    return W, n_iter
