"""Matrix factorization: iALS through the ``implicit`` package."""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ..base import BaseRecommender, UserContext
from ..utils.device import resolve_device
from ..utils.validation import Interval

logger = logging.getLogger(__name__)


class ALS(BaseRecommender):
    """Implicit-feedback ALS (iALS), trained by the ``implicit`` package.

    Minimises ``sum c_ui (p_ui - u'v)² + regularization (|U|² + |V|²)`` with
    ``p_ui = 1`` for observed pairs, confidence ``c_ui = 1 + alpha * w_ui`` (``w`` the
    summed event weights), over all pairs. skrec passes implicit the user-item matrix
    in the orientation it expects and keeps the factors; ``recommend`` goes through
    skrec's shared retrieval.

    Parameters
    ----------
    n_factors : int, default=64
    regularization : float, default=0.01
    alpha : float, default=1.0
        Confidence scale of observed events.
    max_iter : int, default=15
        ALS sweeps.
    use_cg : bool, default=True
        Conjugate-gradient solver (faster); False uses exact Cholesky solves.
    device : str, default="auto"
        ``"cuda"`` trains with implicit's GPU backend when it is built with CUDA;
        anything else trains on the CPU.
    n_jobs : int, optional
        CPU threads (default: all).
    random_state : int, RandomState or None
    verbose : bool, default=False

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
    item_factors_ : ndarray of shape (n_items, n_factors)

    Notes
    -----
    Users given through ``history=`` get factors recomputed from those events with the
    item factors fixed (one exact least-squares solve), without refitting.

    References
    ----------
    Y. Hu, Y. Koren and C. Volinsky. Collaborative Filtering for Implicit Feedback
    Datasets. ICDM 2008.

    Examples
    --------
    >>> from skrec import ALS
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> ALS(n_factors=8, random_state=0).fit(X).item_factors_.shape
    (30, 8)
    """

    _parameter_constraints = {
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "use_cg": ["boolean"],
        "device": [str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        max_iter: int = 15,
        use_cg: bool = True,
        device: str = "auto",
        n_jobs: int | None = None,
        random_state=None,
        verbose: bool = False,
    ):
        self.n_factors = n_factors
        self.regularization = regularization
        self.alpha = alpha
        self.max_iter = max_iter
        self.use_cg = use_cg
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _make_implicit(self):
        from implicit.als import AlternatingLeastSquares

        seed = check_random_state(self.random_state).randint(2**31 - 1)
        use_gpu = resolve_device(self.device).type == "cuda"
        if use_gpu:
            import implicit.gpu

            use_gpu = implicit.gpu.HAS_CUDA
            if not use_gpu:
                logger.warning("implicit was built without CUDA; ALS trains on the CPU.")
        return AlternatingLeastSquares(
            factors=self.n_factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.max_iter,
            use_cg=self.use_cg,
            use_gpu=use_gpu,
            num_threads=self.n_jobs or 0,
            random_state=int(seed),
        )

    def _fit(self, data, y):
        # implicit parallelises itself (and warns at construction about threaded BLAS)
        with threadpool_limits(1, "blas"):
            model = self._make_implicit()
            model.fit(self._seen, show_progress=bool(self.verbose))
        if hasattr(model, "to_cpu"):
            model = model.to_cpu()
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self._solver = model

    def _user_item_vectors(self, context: UserContext):
        users = self.user_factors_[np.maximum(context.user_idx, 0)]
        fold_in = np.flatnonzero(context.from_history | (context.user_idx < 0))
        if len(fold_in):
            users = users.copy()
            rows = context.events.csr()[fold_in]
            with threadpool_limits(1, "blas"):
                users[fold_in] = self._solver.recalculate_user(np.arange(len(fold_in)), rows)
        return users, self.item_factors_

    def _item_vectors(self):
        return self.item_factors_
