"""Item-item linear models: EASE (closed form) and SLIM (sparse, non-negative)."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from joblib import effective_n_jobs
from scipy.linalg.blas import get_blas_funcs
from threadpoolctl import ThreadpoolController
from tqdm.auto import tqdm

from ..base import BaseRecommender, UserContext
from ..data.interactions import binary
from ..utils.validation import Interval


def _available_memory_bytes() -> float:
    """Memory a new allocation can get: Linux's MemAvailable (free pages plus the page
    cache and buffers the kernel can reclaim), else the free pages, else unlimited."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024  # the file counts kB
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return float("inf")


def _binary_gram(seen: sp.csr_matrix) -> np.ndarray:
    """Item co-occurrence counts ``X'X`` of the binarised user-item matrix, float64.

    Built a sixteenth of the columns at a time into the dense result: the sparse product
    of the whole matrix would hold up to 1.5 times the dense one (values and indices).
    """
    rows = binary(seen)
    by_item = rows.tocsc()
    n = seen.shape[1]
    block = max(64, -(-n // 16))
    gram = np.empty((n, n))
    for start in range(0, n, block):
        gram[:, start : start + block] = (rows.T @ by_item[:, start : start + block]).toarray()
    return gram


#: The docstring entry of the item-item models' ``recency_half_life``.
RECENCY_DOC = """recency_half_life : float or None, default=None
        Scores with the user's row weighted by ``0.5 ** (age / recency_half_life)``,
        ``age`` the number of events since the item's latest event (0 for the latest,
        time order; an item counts once).
        None: the plain row, as in the paper. Training is unchanged, so changing it
        after ``fit`` takes effect at once. For next-item tasks a few events help a
        lot (see docs/benchmarks.md)."""


def _document_recency(cls):
    cls.__doc__ = cls.__doc__.replace("{recency}", RECENCY_DOC)
    return cls


class _ItemItem(BaseRecommender):
    """Scores = the user's binary interaction row, as in fit (recency-weighted when
    ``recency_half_life`` is set) times the learned item-item ``coef_`` (dense for
    EASE, sparse for SLIM). Event weights and repeats count as in fit: not at all."""

    def _score_users(self, context: UserContext):
        events = context.events
        if self.recency_half_life is None:
            return _dense_float32(binary(events.csr()) @ self.coef_)
        # each item once, weighted by the recency of its latest event
        recency = events.recency_weights(self.recency_half_life)
        key = events.user * events.n_items + events.item
        _, last = np.unique(key[::-1], return_index=True)
        latest = len(key) - 1 - last
        rows = sp.csr_matrix(
            (recency[latest], (events.user[latest], events.item[latest])),
            shape=(events.n_users, events.n_items),
        )
        return _dense_float32(rows @ self.coef_)

    def _item_similarities(self, item_idx):
        return _dense_float32(self.coef_[item_idx])


def _dense_float32(matrix) -> torch.Tensor:
    matrix = matrix.toarray() if sp.issparse(matrix) else matrix
    return torch.from_numpy(np.asarray(matrix, dtype=np.float32))


@_document_recency
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
    {recency}

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

    _parameter_constraints = {
        "l2_reg": [Interval(Real, 0, None, closed="neither")],
        "recency_half_life": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, l2_reg: float = 500.0, recency_half_life: float | None = None):
        self.l2_reg = l2_reg
        self.recency_half_life = recency_half_life

    def _fit(self, data, y):
        n = data.n_items
        # The peak is 1.5 n² float64 matrices: the Gram matrix, inverted in its own memory,
        # then its float32 copy beside it (plus a block of the Gram's sparse product and
        # LAPACK's workspace: 2 leaves room for them).
        needed = 2 * n * n * 8
        available = _available_memory_bytes()
        if needed > available:
            raise MemoryError(
                f"EASE needs about {needed / 2**30:.1f} GiB for {n} items (dense n_items² "
                f"matrices) but only {available / 2**30:.1f} GiB is available. Use SLIM or ALS "
                "for catalogs this large, or filter rare items with KCoreFilter."
            )
        gram = _binary_gram(self._seen)
        gram[np.diag_indices(n)] += self.l2_reg
        # B = I - P diag(1 / diag P), P the inverse: computed in place on the Gram matrix.
        # (gram is symmetric: handed over as its Fortran-ordered transpose, LAPACK inverts
        # it in its own memory; the transpose back is the same symmetric inverse.)
        precision = scipy.linalg.inv(gram.T, overwrite_a=True, check_finite=False).T
        precision /= -np.diag(precision).copy()
        precision[np.diag_indices(n)] = 0.0
        self.coef_ = precision.astype(np.float32)


@_document_recency
class SLIM(_ItemItem):
    """Sparse Linear Methods: sparse, non-negative item-item weights with zero diagonal.

    For every item j, ``w_j = argmin 1/(2 n_users) ||x_j - X w||² + alpha * l1_ratio
    * |w|_1 + alpha * (1 - l1_ratio) / 2 * ||w||²`` with ``w_jj = 0`` (and ``w >= 0``
    when ``positive``): scikit-learn's ElasticNet objective, one problem per item. The
    problems depend on the data only through the item Gram matrix ``X'X``, so all of
    them are solved at once by cyclic coordinate descent on it, the bookkeeping of each
    block of items deferred to one sparse product (same iterates, far fewer passes
    over memory).

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
    {recency}
    max_iter : int, default=20
        Coordinate-descent sweeps.
    tol : float, default=1e-4
        Stop when no weight moved more than ``tol`` times the largest weight.
    n_jobs : int, optional
        BLAS threads for each block's update of ``G @ W``, the bulk of a signed
        sweep's work; None, 0 or -1: all cores, as ALS (other negative values count
        back from all cores, as in joblib). The per-coordinate products run
        on one thread: they are too small to share.
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
        "recency_half_life": [Interval(Real, 0, None, closed="neither"), None],
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
        recency_half_life: float | None = None,
        max_iter: int = 20,
        tol: float = 1e-4,
        n_jobs: int | None = None,
        verbose: bool = False,
    ):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.positive = positive
        self.n_neighbors = n_neighbors
        self.recency_half_life = recency_half_life
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _fit(self, data, y):
        gram = _binary_gram(self._seen).astype(np.float32)
        n = data.n_items
        l1 = self.alpha * self.l1_ratio * data.n_users
        l2 = self.alpha * (1.0 - self.l1_ratio) * data.n_users
        allowed = None
        if self.n_neighbors is not None and self.n_neighbors < n - 1:
            ranked = torch.from_numpy(gram.copy())
            ranked.fill_diagonal_(-1)
            # (n_neighbors, n): the features each target may use
            top = torch.topk(ranked, self.n_neighbors, dim=0).indices
            allowed = torch.zeros(n, n, dtype=torch.bool).scatter_(0, top, True).numpy()
        threads = int(effective_n_jobs(self.n_jobs or -1))
        W, self.n_iter_ = _slim_coordinate_descent(
            gram, l1, l2, self.positive, allowed, self.max_iter, self.tol, self.verbose, threads
        )
        self.coef_ = sp.csr_matrix(W)


#: Above this share of non-zero changes in a block, SLIM's once-per-block update of
#: ``G @ W`` is a dense product (BLAS) rather than a sparse one.
DENSE_UPDATE_SHARE = 0.05


def _slim_coordinate_descent(
    G, l1, l2, positive, allowed, max_iter, tol, verbose, threads=1, block=512, chunk=32
):
    """Coordinate descent for all targets at once on the Gram matrix ``G`` (n, n).

    Column j of ``W`` solves ``min 1/2 w'Gw - g_j'w + l1 |w|_1 + l2/2 |w|²`` with
    ``w_j = 0``; each sweep updates feature k = 0, ..., n-1 in turn for every target
    (cyclic Gauss-Seidel), which needs ``HT = (G @ W).T`` up to date at feature k.

    Updates are deferred, not approximated: features are taken in blocks of ``block``,
    and within a block in chunks of ``chunk``. A feature sees the changes of the
    earlier features of its chunk through ``G[k, chunk] @ D`` (``D``: the block's
    changes so far), those of earlier chunks through a dense product into the block's
    rows of ``HT``, and those of earlier blocks through ``HT`` itself, which is updated
    once per block by one product — sparse while ``D`` is (positive ``W`` is a few
    percent non-zero), dense above ``DENSE_UPDATE_SHARE`` (signed ``W`` is denser). The
    iterates are those of plain one-coordinate-at-a-time descent, up to float rounding.
    The dense update accumulates into ``HT`` in place on ``threads`` BLAS threads;
    everything else runs on one.

    Returns ``W`` (``G``'s dtype; ``W[k, j]``: weight of feature k for target j) and
    the number of sweeps run.
    """
    n = G.shape[0]
    W = np.zeros((n, n), dtype=G.dtype)  # W[k, j]: weight of feature k for target j
    HT = np.zeros((n, n), dtype=G.dtype)  # HT[j, k] = (G @ W)[k, j]
    diag = np.diagonal(G).copy()  # (n,)
    scale = 1.0 / (diag + l2)  # (n,)
    correction = np.empty(n, dtype=G.dtype)
    clipped = np.empty(n, dtype=G.dtype)
    n_iter = 0
    gemm = get_blas_funcs("gemm", (G,))
    blas = ThreadpoolController()
    with blas.limit(limits=1, user_api="blas"):
        for sweep in tqdm(range(1, max_iter + 1), disable=not verbose, desc="SLIM", unit="sweep"):
            n_iter = sweep
            biggest_change = 0.0
            for start in range(0, n, block):
                stop = min(start + block, n)
                before = W[start:stop].copy()  # (b, n)
                D = np.zeros_like(before)  # (b, n): this block's changes so far
                H = np.ascontiguousarray(HT[:, start:stop].T)  # (b, n): H[i] = (G @ W)[start + i]
                for first in range(start, stop, chunk):
                    last = min(first + chunk, stop)
                    # (c, n): each chunk feature's correlation with each target, own weight
                    # left out (and l1 taken off when positive)
                    rho = G[first:last] - H[first - start : last - start]
                    rho += diag[first:last, None] * W[first:last]
                    if positive:
                        rho -= l1
                    for k in range(first, last):
                        r = rho[k - first]  # (n,)
                        if k > first:
                            np.dot(G[k, first:k], D[first - start : k - start], out=correction)
                            r -= correction
                        if positive:
                            np.maximum(r, 0.0, out=r)
                        else:  # soft threshold: r - clip(r, -l1, l1)
                            np.clip(r, -l1, l1, out=clipped)
                            r -= clipped
                        r *= scale[k]
                        r[k] = 0.0
                        if allowed is not None:
                            r *= allowed[k]
                        np.subtract(r, before[k - start], out=D[k - start])
                        W[k] = r
                    if last < stop:  # the rest of the block sees this chunk's changes
                        changed = D[first - start : last - start]  # (c, n)
                        H[last - start :] += G[last:stop, first:last] @ changed
                biggest_change = max(biggest_change, float(np.abs(D).max()))
                if np.count_nonzero(D) < DENSE_UPDATE_SHARE * D.size:
                    changes = sp.csr_matrix(D).T.tocsr()  # (n, b), rows by target
                    HT += changes @ G[start:stop]  # (n, n)
                else:  # signed weights change in more places: one BLAS product is faster
                    with blas.limit(limits=threads, user_api="blas"):
                        # HT.T (Fortran order) += G[block].T @ D, with no temporary
                        gemm(1.0, G[start:stop].T, D.T, 1.0, HT.T, trans_b=1, overwrite_c=1)
            largest = float(np.abs(W).max())
            if largest == 0 or biggest_change <= tol * largest:
                break
    return W, n_iter
