"""Matrix factorisation: iALS (through ``implicit``), MF and NeuMF (torch)."""

from __future__ import annotations

import copy
import logging
from numbers import Integral, Real

import numpy as np
import torch
from joblib import effective_n_jobs
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits
from torch import nn

from ..base import INDEX_KINDS, BaseRecommender, UserContext
from ..nn.factorization import DotProduct
from ..nn.factorization import NeuMF as NeuMFModule
from ..nn.layers import lookup
from ..training import document_training_parameters
from ..utils.device import resolve_device
from ..utils.validation import Interval, InvalidParameterError, StrOptions
from ._events import EVENT_CONSTRAINTS, EventModel

logger = logging.getLogger(__name__)


class ALS(BaseRecommender):
    """Implicit-feedback ALS (iALS), trained by the ``implicit`` package.

    Minimises ``sum c_ui (p_ui - u'v)² + regularization (|U|² + |V|²)`` over all pairs,
    with ``p_ui = 1`` and confidence ``c_ui = alpha * w_ui`` for observed pairs (``w``
    the summed event weights) and ``p_ui = 0``, ``c_ui = 1`` for the others. That is
    implicit's convention; Hu et al. write ``1 + alpha r``, so with unit weights this
    ``alpha`` is theirs plus one. skrec passes implicit the user-item matrix
    in the orientation it expects and keeps the factors; ``recommend`` goes through
    skrec's shared retrieval.

    Parameters
    ----------
    n_factors : int, default=64
    regularization : float, default=0.01
    alpha : float, default=1.0
        Confidence of observed events per unit of weight (> 0; at 1 with unit weights an
        observed pair counts as much as an unobserved one, and only its target differs).
    max_iter : int, default=15
        ALS sweeps.
    use_cg : bool, default=True
        Conjugate-gradient solver (faster); False uses exact Cholesky solves.
    index : {"exact", "flat", "ivf", "hnsw"}, default="exact"
        Top-k retrieval: exact, or a faiss index over the item factors.
    device : str, default="auto"
        ``"cuda"`` trains with implicit's GPU backend when it is built with CUDA;
        anything else trains on the CPU.
    n_jobs : int, optional
        CPU threads (default: all; negative values count back from all cores, as in
        joblib: -1 is all, -2 all but one).
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
        "alpha": [Interval(Real, 0, None, closed="neither")],  # 0: every target ignored
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "use_cg": ["boolean"],
        "index": [StrOptions(set(INDEX_KINDS))],
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
        index: str = "exact",
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
        self.index = index
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _make_implicit(self, cpu: bool = False):
        from implicit.als import AlternatingLeastSquares

        seed = check_random_state(self.random_state).randint(2**31 - 1)
        use_gpu = not cpu and resolve_device(self.device).type == "cuda"
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
            num_threads=_threads(self.n_jobs),
            random_state=int(seed),
        )

    def _fit(self, data, y):
        # implicit parallelises itself (and warns at construction about threaded BLAS)
        from implicit.recommender_base import ModelFitError

        with threadpool_limits(1, "blas"):
            model = self._make_implicit()
            try:
                model.fit(self._seen, show_progress=bool(self.verbose))
            except ModelFitError as error:
                raise ValueError(
                    f"ALS diverged ({error}): the confidence weights alpha * weight are too "
                    f"large or too uneven (largest weight {self._seen.data.max():.3g}, "
                    f"alpha={self.alpha}). Scale or clip the weight column, lower alpha, or "
                    f"raise regularization (now {self.regularization})."
                ) from error
        if hasattr(model, "to_cpu"):
            model = model.to_cpu()
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self._solver = model

    #: Not stored by skrec.save: implicit's solver is rebuilt from the factors.
    _rebuilt_on_load = ("_solver",)

    def _after_load(self):
        # The CPU solver whatever the device: it only folds users in, against the numpy
        # factors (as after fit, where a GPU solver is moved to the CPU).
        solver = self._make_implicit(cpu=True)
        solver.user_factors, solver.item_factors = self.user_factors_, self.item_factors_
        self._solver = solver

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


def _threads(n_jobs) -> int:
    """implicit's thread count for ``n_jobs``: None or 0 = all cores (implicit's 0),
    otherwise joblib's meaning (-1 = all, -2 = all but one); implicit aborts the process
    on a negative count."""
    return int(effective_n_jobs(n_jobs)) if n_jobs else 0


_NEUMF_LAYERS = (64, 32, 16, 8)
#: (user, item) pairs NeuMF scores at once: its tower holds a hidden layer per pair.
_PAIRS_PER_CHUNK = 2**16


@document_training_parameters
class MF(EventModel):
    """Matrix factorisation trained by gradient descent: ``p_u · q_i + b_u + b_i + b``.

    Implicit feedback with a ranking loss (``bpr``, ``bce``, ``softmax``,
    ``sampled_softmax``, ``gbce``, ``warp``) and any negative sampler, or explicit
    ratings with ``loss="mse"`` and the ratings as ``y``.

    Parameters
    ----------
    n_factors : int, default=64
    loss : str, default="bpr"
    sampler : {"uniform", "popularity", "in_batch", "hard"}, default="uniform"
        Negatives for the pairwise losses; ``popularity`` draws ∝ count^0.75.
    n_negatives : int, default=1
        Negatives per positive (``in_batch`` uses the whole batch).
    logq_correction : bool, default=False
        ``sampled_softmax`` only: subtract each item's log sampling probability.
    regularization : float, default=0.0
        L2 penalty on the embedding rows (and biases) of each batch, per example — the
        classic MF regulariser, which scales with how often a row is trained.
    bias : bool, default=True
        User, item and global biases.
    init_std : float, default=0.1
        Standard deviation of the initial embeddings.
    index : {"exact", "flat", "ivf", "hnsw"}, default="exact"
        Top-k retrieval: exact, or a faiss index over the item vectors.
    {training}

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
    item_factors_ : ndarray of shape (n_items, n_factors)
    module_ : skrec.nn.factorization.DotProduct
    loss_curve_, validation_scores_, n_iter_, best_iteration_
        See :class:`skrec.training.TorchRecommender`.

    Notes
    -----
    Users given through ``history=`` get user rows trained on those events with the item
    side frozen (``max_iter`` epochs of the same loss); for ``loss="mse"`` the history's
    ``weight`` column holds their ratings.

    With ``loss="bpr"`` or ``"bce"`` and ``optimizer="sgd"`` (any sampler but
    ``in_batch``, no ``clip_grad_norm``) each step is taken in closed form by
    :func:`skrec.nn.factorization.sgd_step`: the update autograd would make, without
    dense gradient tables, about twice as fast on a CPU. ``learning_rate`` applies to the
    batch's mean loss: with ``bce`` each positive (and its negatives) moves its rows by
    ``learning_rate / batch_size`` times its own gradient, with ``bpr`` each valid
    (positive, negative) pair by ``learning_rate`` over the batch's number of valid pairs.

    References
    ----------
    S. Rendle, C. Freudenthaler, Z. Gantner and L. Schmidt-Thieme. BPR: Bayesian
    Personalized Ranking from Implicit Feedback. UAI 2009.
    Y. Koren, R. Bell and C. Volinsky. Matrix Factorization Techniques for Recommender
    Systems. Computer 2009.
    S. Rendle, W. Krichene, L. Zhang and J. Anderson. Neural Collaborative Filtering vs.
    Matrix Factorization Revisited. RecSys 2020.

    Examples
    --------
    >>> from skrec import MF
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> MF(n_factors=8, max_iter=2, random_state=0).fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _parameter_constraints = {
        **EVENT_CONSTRAINTS,
        "loss": [StrOptions(set(EventModel._losses))],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "bias": ["boolean"],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "index": [StrOptions(set(INDEX_KINDS))],
    }

    def __init__(
        self,
        n_factors: int = 64,
        loss: str = "bpr",
        sampler: str = "uniform",
        n_negatives: int = 1,
        logq_correction: bool = False,
        regularization: float = 0.0,
        bias: bool = True,
        init_std: float = 0.1,
        index: str = "exact",
        max_iter: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        clip_grad_norm: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        checkpoint_dir=None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
    ):
        self.n_factors = n_factors
        self.loss = loss
        self.sampler = sampler
        self.n_negatives = n_negatives
        self.logq_correction = logq_correction
        self.regularization = regularization
        self.bias = bias
        self.init_std = init_std
        self.index = index
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _build_module(self, data):
        return DotProduct(data.n_users, data.n_items, self.n_factors, self.bias, self.init_std)

    def _loss(self, module, batch):
        loss = super()._loss(module, batch)
        if self.regularization > 0:
            tables = [(module.user, "query"), (module.item, "item"), (module.item, "negative")]
            if self.bias:
                tables += [(module.user_bias, "query"), (module.item_bias, "item")]
                tables += [(module.item_bias, "negative")]
            rows = [lookup(table, batch[key]) for table, key in tables if key in batch]
            penalty = sum(r.pow(2).sum() for r in rows) / len(batch["query"])
            loss = loss + self.regularization * penalty
        return loss

    def _regularization(self) -> float:
        return self.regularization

    def _fit(self, data, y):
        super()._fit(data, y)
        users, items = self.module_.factors()
        self.user_factors_ = users.detach().cpu().numpy()
        self.item_factors_ = items.detach().cpu().numpy()

    def _module_for_new_users(self, n_users):
        fitted = self.module_
        module = DotProduct(
            n_users, fitted.item.num_embeddings, self.n_factors, self.bias, self.init_std
        )
        module.item = fitted.item
        parameters = [module.user.weight]
        if self.bias:
            module.item_bias, module.offset = fitted.item_bias, fitted.offset
            parameters.append(module.user_bias.weight)
        return module, parameters

    def _user_item_vectors(self, context):
        with torch.no_grad():
            U, I = (v.detach() for v in self.module_.vectors())
            users = U[torch.from_numpy(np.maximum(context.user_idx, 0)).to(U.device)]
            fold = np.flatnonzero(context.from_history | (context.user_idx < 0))
            if len(fold):
                new_U = self._fold_in(context.events.take_users(fold)).vectors()[0].detach()
                users = users.clone()
                users[torch.from_numpy(fold).to(U.device)] = new_U
        return users, I

    def _item_vectors(self):
        return self.item_factors_


@document_training_parameters
class NeuMF(EventModel):
    """Neural collaborative filtering: GMF, MLP or their fusion NeuMF (He et al. 2017).

    Parameters
    ----------
    interaction : {"gmf", "mlp", "neumf"}, default="neumf"
    n_factors : int, default=8
        GMF embedding size ("predictive factors").
    layers : tuple of int, default=(64, 32, 16, 8)
        MLP sizes; the first is the concatenated user+item embedding width.
    dropout : float, default=0.0
    loss : str, default="bce"
        Pointwise log loss with ``n_negatives`` sampled negatives, as in the paper; the
        other ranking losses also work.
    sampler : {"uniform", "popularity", "in_batch", "hard"}, default="uniform"
    n_negatives : int, default=4
    logq_correction : bool, default=False
    pretrain : bool, default=False
        ``interaction="neumf"`` only: first fit a GMF and an MLP model with the same
        settings on the same data, then start NeuMF from their weights (embeddings and
        tower copied, output layer ``[h_gmf, h_mlp] / 2``), as in §3.4.1 of the paper.
        The fitted parts are kept in ``pretrained_``.
    pretrain_params : dict, optional
        Settings of the GMF and MLP parts that differ from this model's, e.g.
        ``{"optimizer": "adam", "learning_rate": 1e-3}`` while the fused model itself
        fine-tunes with ``optimizer="sgd"`` and a small ``learning_rate`` — the paper's
        recipe (Adam for the parts, plain SGD from the pre-trained start). Keys are this
        model's other parameters; None: the parts use this model's settings.
    {training}

    Attributes
    ----------
    module_ : skrec.nn.factorization.NeuMF
    pretrained_ : tuple of (NeuMF, NeuMF)
        With ``pretrain=True``: the fitted GMF and MLP parts.
    loss_curve_, validation_scores_, n_iter_, best_iteration_
        See :class:`skrec.training.TorchRecommender`.

    References
    ----------
    X. He, L. Liao, H. Zhang, L. Nie, X. Hu and T.-S. Chua. Neural Collaborative
    Filtering. WWW 2017.

    Examples
    --------
    >>> from skrec import NeuMF
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> NeuMF(max_iter=2, random_state=0).fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _parameter_constraints = {
        **EVENT_CONSTRAINTS,
        "interaction": [StrOptions({"gmf", "mlp", "neumf"})],
        "layers": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "loss": [StrOptions(set(EventModel._losses))],
        "pretrain": ["boolean"],
        "pretrain_params": [dict, None],
    }

    def __init__(
        self,
        interaction: str = "neumf",
        n_factors: int = 8,
        layers: tuple = _NEUMF_LAYERS,
        dropout: float = 0.0,
        loss: str = "bce",
        sampler: str = "uniform",
        n_negatives: int = 4,
        logq_correction: bool = False,
        pretrain: bool = False,
        pretrain_params: dict | None = None,
        max_iter: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        clip_grad_norm: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        checkpoint_dir=None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
    ):
        self.interaction = interaction
        self.n_factors = n_factors
        self.layers = layers
        self.dropout = dropout
        self.loss = loss
        self.sampler = sampler
        self.n_negatives = n_negatives
        self.logq_correction = logq_correction
        self.pretrain = pretrain
        self.pretrain_params = pretrain_params
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _make_module(self, n_users, n_items):
        if isinstance(self.layers, (str, bytes)) or not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in self.layers
        ):
            raise ValueError(
                f"layers={self.layers!r}: the MLP sizes must be positive integers, e.g. "
                "(64, 32, 16, 8)."
            )
        layers = tuple(int(s) for s in self.layers)
        if self.interaction != "gmf" and (len(layers) < 2 or layers[0] % 2):
            raise ValueError(
                f"layers={self.layers!r}: the MLP needs at least two sizes and an even first "
                "size (half user, half item embedding), e.g. (64, 32, 16, 8)."
            )
        return NeuMFModule(n_users, n_items, self.n_factors, layers, self.interaction, self.dropout)

    def _build_module(self, data):
        module = self._make_module(data.n_users, data.n_items)
        if self.pretrain:
            _load_pretrained(module, *self.pretrained_)
        return module

    #: Settings the pre-trained parts must share with the fused model: their weights are
    #: copied into it, so the shapes must match.
    _SHARED_WITH_PARTS = ("interaction", "pretrain", "pretrain_params", "n_factors", "layers")

    def _fit(self, data, y):
        overrides = self._part_overrides()  # checked even when unused: a typo is an error
        if self.pretrain:
            if self.interaction != "neumf":
                raise ValueError(
                    f"pretrain=True builds a NeuMF from GMF and MLP parts; it does not apply "
                    f"to interaction={self.interaction!r}. Set interaction='neumf'."
                )
            parts = [self._part(kind, overrides) for kind in ("gmf", "mlp")]  # checked first
            self.pretrained_ = tuple(self._fit_part(part, data, y) for part in parts)
        super()._fit(data, y)

    def _part_overrides(self) -> dict:
        overrides = dict(self.pretrain_params or {})
        unknown = sorted(
            repr(key)
            for key in overrides
            if key not in self.get_params(deep=False) or key in self._SHARED_WITH_PARTS
        )
        if unknown:
            raise ValueError(
                f"pretrain_params has key(s) {', '.join(unknown)} that the GMF and MLP parts "
                f"cannot set apart from the fused model; use NeuMF parameters other than "
                f"{list(self._SHARED_WITH_PARTS)}, e.g. {{'optimizer': 'adam', "
                "'learning_rate': 0.001}."
            )
        return overrides

    def _fit_part(self, part, data, y):
        part._fit(data, y)
        return part

    def _part(self, interaction, overrides):
        """A GMF or MLP model with this model's settings (``pretrain_params`` taking
        precedence), on this fit's encoded data; both parts are checked before either is
        fitted."""
        try:
            return self._sub_model(
                interaction=interaction, pretrain=False, pretrain_params=None, **overrides
            )
        except InvalidParameterError as error:
            raise InvalidParameterError(f"In pretrain_params: {error}") from error

    def _module_for_new_users(self, n_users):
        fitted = self.module_
        module = self._make_module(n_users, fitted.n_items)
        parameters = []
        for name, child in fitted.named_children():
            if name.startswith("user_"):
                parameters.append(getattr(module, name).weight)
            elif isinstance(child, nn.Embedding):  # no train/eval behaviour: shared
                setattr(module, name, child)
            else:
                # Copied, not shared: the fold-in trains with dropout, and switching the
                # fitted layers to training mode would change concurrent scoring.
                setattr(module, name, copy.deepcopy(child))
        return module, parameters

    def _score_users(self, context):
        users = torch.from_numpy(np.maximum(context.user_idx, 0)).to(self.device_)
        scores = _score_all_chunked(self.module_, users)  # (n, n_items)
        fold = np.flatnonzero(context.from_history | (context.user_idx < 0))
        if len(fold):  # fresh user rows, trained on their events, in a module of their own
            folded = self._fold_in(context.events.take_users(fold))
            rows = torch.arange(len(fold), device=self.device_)
            scores[torch.from_numpy(fold).to(self.device_)] = _score_all_chunked(folded, rows)
        return scores

    def _score_pairs(self, user_idx, item_idx):
        with torch.no_grad():
            out = []
            for start in range(0, len(user_idx), _PAIRS_PER_CHUNK):
                stop = start + _PAIRS_PER_CHUNK
                u = torch.from_numpy(user_idx[start:stop]).to(self.device_)
                i = torch.from_numpy(item_idx[start:stop]).to(self.device_)
                out.append(self.module_(u, i).double().cpu().numpy())
        return np.concatenate(out)


def _score_all_chunked(module, users, pairs_per_chunk=_PAIRS_PER_CHUNK):
    """``module.score_all(users)`` a few users at a time: an MLP over every (user, item)
    pair holds a hidden layer per pair, so the chunk is sized in pairs."""
    step = max(1, pairs_per_chunk // module.n_items)
    with torch.no_grad():
        return torch.cat(
            [module.score_all(users[s : s + step]) for s in range(0, len(users), step)]
        )


def _load_pretrained(module, gmf, mlp):
    """Initialise a NeuMF module from fitted GMF and MLP models (He et al. 2017, §3.4.1)."""
    with torch.no_grad():
        for name in ("user_gmf", "item_gmf"):
            getattr(module, name).weight.copy_(getattr(gmf.module_, name).weight)
        for name in ("user_mlp", "item_mlp"):
            getattr(module, name).weight.copy_(getattr(mlp.module_, name).weight)
        module.mlp.load_state_dict(mlp.module_.mlp.state_dict())
        module.output.weight.copy_(
            torch.cat([gmf.module_.output.weight, mlp.module_.output.weight], 1) / 2
        )
        module.output.bias.copy_((gmf.module_.output.bias + mlp.module_.output.bias) / 2)
