"""Sequential recommenders: GRU4Rec, SASRec, BERT4Rec.

All three read each user's events in time order as a padded item sequence, encode it
(:mod:`skrec.nn.sequential`) and score the catalog with the hidden state at the last
position against the (tied) item embeddings. They are embedding models for retrieval:
a user — known, new, or an anonymous session passed through ``history=`` — is the
encoder's output on their latest ``max_len`` events, so no refit is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import torch

from ..base import INDEX_KINDS
from ..data.interactions import Interactions
from ..data.sampling import NegativeSampler, minibatches
from ..data.sequences import mask_items, padded_sequences, shifted_targets, trim
from ..nn import losses
from ..nn.sequential import GRU, Transformer
from ..training import TRAINING_CONSTRAINTS, TorchRecommender, document_training_parameters
from ..utils.validation import Interval, StrOptions

#: Losses of the sequential models: full cross-entropy and the sampled ones.
SEQUENCE_LOSSES = ("softmax", "sampled_softmax", "bce", "gbce", "bpr")

SEQUENCE_CONSTRAINTS = {
    **TRAINING_CONSTRAINTS,
    "n_factors": [Interval(Integral, 1, None, closed="left")],
    "max_len": [Interval(Integral, 2, None, closed="left")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "loss": [StrOptions(set(SEQUENCE_LOSSES))],
    "n_negatives": [Interval(Integral, 1, None, closed="left")],
    "gbce_t": [Interval(Real, 0, 1, closed="both")],
    "index": [StrOptions(set(INDEX_KINDS))],
    "logits_dtype": [StrOptions({"float32", "bfloat16"})],
}

#: Elements of one (positions x items) logits chunk of the full cross-entropy.
_LOGIT_CHUNK_ELEMENTS = 2**25
#: Users encoded per forward pass at inference.
_INFERENCE_BATCH = 512

SEQUENCE_PARAMETERS_DOC = """\
    max_len : int, default=50
        Events per sequence: training uses each user's latest ``max_len`` (+1 for the
        next-item target), inference the latest ``max_len``.
    loss : {"softmax", "sampled_softmax", "bce", "gbce", "bpr"}, default="softmax"
        ``softmax``: full cross-entropy over the catalog at every position (computed
        in item chunks, only at real positions, so large catalogs fit in memory).
        The others use ``n_negatives`` uniform negatives, not among the user's items:
        one per position when ``n_negatives=1`` (the original SASRec's ``bce``), else
        ``n_negatives`` per sequence shared by its positions. ``gbce`` is gSASRec's
        generalised BCE with calibration ``gbce_t``. ``bce`` with several negatives
        and ``gbce`` add one learned logit to every score in the loss, started at the
        loss's equal-score balance ``log(β / n_negatives)``; rankings do not see it
        (docs/models.md, "Score offset").
    n_negatives : int, default=1
    gbce_t : float, default=0.75
    logits_dtype : {"float32", "bfloat16"}, default="float32"
        ``softmax`` only: the precision of the (positions x items) logits products.
        ``bfloat16`` runs them about 3x faster on CPUs with AVX512-BF16 or AMX and on
        GPUs, while the exponentials and sums stay float32 (on a 2-core CPU a whole
        Beauty step gained only ~5%: the element-wise passes dominate there).
    index : {"exact", "flat", "ivf", "hnsw"}, default="exact"
        Top-k retrieval: exact, or a faiss index over the item vectors."""


@dataclass
class Sequences:
    """Training windows (padded, item index + 1), their users, and the sampler."""

    sequences: torch.Tensor
    users: torch.Tensor
    sampler: NegativeSampler | None


class SequentialModel(TorchRecommender):
    """Shared data, batches, loss and inference of the sequential models (not used
    directly). Subclasses build the encoder and say how training pairs are made."""

    _requires_timestamp = True
    #: Next-item training (GRU4Rec, SASRec); BERT4Rec trains on masked items.
    _next_item = True

    def _window(self) -> int:
        return self.max_len + 1 if self._next_item else self.max_len

    def _training_pairs(self, sequences: torch.Tensor, generator) -> tuple:
        return shifted_targets(sequences)

    # -------------------------------------------------------------- training
    def _encoder(self, data: Interactions) -> torch.nn.Module:
        """The model's encoder, a :class:`skrec.nn.sequential.SequenceEncoder`."""
        raise NotImplementedError

    def _build_module(self, data: Interactions) -> torch.nn.Module:
        """The encoder, with a score offset where the loss needs one.

        ``bce`` and ``gbce`` with many negatives are stationary with every score at
        ``log(β / n_negatives)`` (-6.7 in gSASRec's ML-1M setting). Scores start near 0,
        and without an offset the encoder must first build that shift into every
        score from the embeddings, sitting at the popularity level meanwhile (for tens
        of epochs on ML-1M). One learned logit started there removes that start; all
        items share it, so rankings ignore it.
        """
        module = self._encoder(data)
        offset = losses.balance_logit(self.loss, self.n_negatives, data.n_items, self.gbce_t)
        if offset:
            module.score_offset = torch.nn.Parameter(torch.tensor(offset))
        return module

    def _prepare(self, data: Interactions) -> Sequences:
        self.max_len_ = int(self.max_len)  # inference reads the fitted length
        sequences, lengths = padded_sequences(data.indptr, data.item, self._window())
        keep = lengths >= 2
        if not bool(keep.any()):
            raise ValueError(
                f"{type(self).__name__} learns from users with at least two events; every "
                f"user in X has one{self._held_out_note(data)}. Pass longer histories."
            )
        sampler = None
        if self.loss != "softmax":
            sampler = NegativeSampler("uniform", data.n_items, positives=data.csr())
        return Sequences(sequences[keep], keep.nonzero(as_tuple=True)[0], sampler)

    def _batches(self, prepared: Sequences, module, generator):
        for index in minibatches(len(prepared.sequences), self.batch_size, generator):
            inputs, targets = trim(*self._training_pairs(prepared.sequences[index], generator))
            batch = {"inputs": inputs, "targets": targets}
            if prepared.sampler is not None:
                batch.update(
                    self._negatives(prepared.sampler, prepared.users[index], targets, generator)
                )
            yield batch

    def _negatives(self, sampler, users, targets, generator) -> dict:
        if self.n_negatives == 1:  # one per position
            flat_users = users[:, None].expand_as(targets).reshape(-1)
            positive = (targets - 1).clamp_min(0).reshape(-1)
            negative, valid = sampler.sample(flat_users, positive, 1, generator)
            return {"negative": negative.view(targets.shape), "valid": valid.view(targets.shape)}
        # n per sequence, shared by its positions: all of the user's items are rejected,
        # so no one positive is named (-1; BERT4Rec's first target is mostly padding, which
        # as item 0 would keep that item out of most sequences' negatives).
        no_positive = torch.full_like(users, -1)
        negative, valid = sampler.sample(users, no_positive, self.n_negatives, generator)
        return {"negative": negative, "valid": valid}

    def _loss(self, module, batch) -> torch.Tensor:
        hidden = module(batch["inputs"])  # (B, L, D)
        targets = batch["targets"]
        where = targets > 0
        h, target = hidden[where], targets[where] - 1  # (M, D), (M,)
        weight, bias = module.item_weight(), module.output_bias
        if self.loss == "softmax":
            chunk = max(1024, _LOGIT_CHUNK_ELEMENTS // max(len(h), 1))
            dtype = getattr(torch, self.logits_dtype)
            return losses.full_softmax(h, weight, target, bias, chunk_size=chunk, dtype=dtype)
        pos = (h * weight.index_select(0, target)).sum(1)
        negative = batch["negative"]
        if self.n_negatives == 1:  # one per position (B, L); never read from the shapes,
            # which are alike when n_negatives equals the batch's width
            negative = negative[where][:, None]  # (M, 1)
            neg = (h[:, None, :] * weight.index_select(0, negative[:, 0])[:, None, :]).sum(2)
            valid = batch["valid"][where][:, None]
        else:  # (B, N) shared by a sequence's positions
            vectors = weight.index_select(0, negative.reshape(-1)).view(*negative.shape, -1)
            neg = torch.bmm(hidden, vectors.transpose(1, 2))[where]  # (M, N)
            valid = batch["valid"][:, None, :].expand(-1, targets.shape[1], -1)[where]
            negative = negative[:, None, :].expand(-1, targets.shape[1], -1)[where]
        if bias is not None:
            pos, neg = pos + bias[target], neg + bias[negative]
        if module.score_offset is not None:
            pos, neg = pos + module.score_offset, neg + module.score_offset
        return losses.ranking_loss(
            self.loss, pos, neg, valid=valid, n_items=module.n_items, gbce_t=self.gbce_t
        )

    def _transformer(self, n_items, *, causal, feedforward, **options):
        """The transformer of SASRec and BERT4Rec; ``dim_feedforward`` defaults to
        ``feedforward * n_factors``."""
        if self.n_factors % self.n_heads:
            raise ValueError(
                f"The 'n_heads' parameter of {type(self).__name__} must divide "
                f"n_factors={self.n_factors}. Got {self.n_heads} instead."
            )
        return Transformer(
            n_items,
            self.n_factors,
            self.n_layers,
            self.n_heads,
            self.dim_feedforward or feedforward * self.n_factors,
            self.dropout,
            self.max_len,
            causal=causal,
            **options,
        )

    # ------------------------------------------------------------- inference
    def _inference_sequences(self, events: Interactions):
        """Padded sequences whose last position is the one to read the user from."""
        return padded_sequences(events.indptr, events.item, self.max_len_)

    def _user_item_vectors(self, context):
        module, device = self.module_, self.device_
        weight = module.item_weight().detach()
        sequences, lengths = self._inference_sequences(context.events)
        users = torch.zeros(len(context), weight.shape[1], device=device)
        order = torch.argsort(lengths)  # batches of similar lengths carry little padding
        with torch.no_grad():
            for rows in torch.split(order, _INFERENCE_BATCH):
                (batch,) = trim(sequences[rows])
                last = lengths[rows].clamp_min(1).to(device)
                users[rows.to(device)] = module.last_hidden(batch.to(device), last)
        if module.output_bias is not None:  # scores + bias: one more column each side
            users = torch.cat([users, torch.ones_like(users[:, :1])], 1)
            weight = torch.cat([weight, module.output_bias.detach()[:, None]], 1)
        return users, weight

    def _item_vectors(self):
        return self.module_.item_weight().detach().cpu().numpy()


def _init_sequence_params(model, params: dict) -> None:
    """Store hyper-parameters (``__init__`` does nothing else, per scikit-learn)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(model, name, value)


@document_training_parameters
class SASRec(SequentialModel):
    """Self-attentive sequential recommendation (Kang & McAuley 2018).

    A causal transformer over each user's latest events predicts the next item at every
    position; the item embeddings are shared by input and output, positions are learned.
    By default it trains with full cross-entropy over the catalog, which beats the
    original one-negative BCE by a wide margin (Klenitskiy & Vasilev 2023); ``loss="bce"``
    reproduces the original, ``loss="gbce"`` with many negatives is gSASRec.

    Parameters
    ----------
    n_factors : int, default=64
        Embedding and hidden size.
    n_layers : int, default=2
    n_heads : int, default=1
    dim_feedforward : int, optional
        Width of the feed-forward layer; ``n_factors`` when None (as in the paper).
    dropout : float, default=0.1
    {sequence}
    {training}

    Attributes
    ----------
    module_ : skrec.nn.sequential.Transformer
    max_len_ : int
        The ``max_len`` the model was fitted with; inference reads this one.
    loss_curve_, validation_scores_, n_iter_, best_iteration_
        See :class:`skrec.training.TorchRecommender`.

    Notes
    -----
    The encoder is the SASRec authors' (as in Klenitskiy & Vasilev's PyTorch code, whose
    figures the benchmarks compare with): in each block the queries are the layer-normed
    input and the keys and values the input itself, the residual stream is normalised
    again before the feed-forward layer, and a layer norm follows the last block;
    embeddings and weights start from N(0, 0.02²), except the query/key/value
    projection, drawn Xavier-uniform as in torch's ``nn.MultiheadAttention`` that their
    code uses. Padding goes on the right, so the
    causal attention needs no padding mask, and learned positions count from each
    sequence's first event. On ML-1M this encoder reaches in 9 epochs the validation
    NDCG@10 a generic pre-norm transformer reached in 21 (docs/benchmarks.md).

    References
    ----------
    W.-C. Kang and J. McAuley. Self-Attentive Sequential Recommendation. ICDM 2018.
    A. Klenitskiy and A. Vasilev. Turning Dross Into Gold Loss: is BERT4Rec really
    better than SASRec? RecSys 2023.
    A. Petrov and C. Macdonald. gSASRec: Reducing Overconfidence in Sequential
    Recommendation Trained with Negative Sampling. RecSys 2023.

    Examples
    --------
    >>> from skrec import SASRec
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> SASRec(max_iter=2, random_state=0).fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _parameter_constraints = {
        **SEQUENCE_CONSTRAINTS,
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "dim_feedforward": [Interval(Integral, 1, None, closed="left"), None],
    }
    #: The encoder since stop 17 (the SASRec authors' block); checkpoints and files of
    #: the earlier pre-norm one carry no name and are not loaded into it.
    _architecture = "sasrec-block"

    def __init__(
        self,
        n_factors: int = 64,
        n_layers: int = 2,
        n_heads: int = 1,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        max_len: int = 50,
        loss: str = "softmax",
        n_negatives: int = 1,
        gbce_t: float = 0.75,
        logits_dtype: str = "float32",
        index: str = "exact",
        max_iter: int = 100,
        batch_size: int = 128,
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
        _init_sequence_params(self, locals())

    def _encoder(self, data):
        return self._transformer(
            data.n_items,
            causal=True,
            feedforward=1,
            wiring="sasrec",
            positions="from_start",
            init_std=0.02,
            qkv_init="xavier",
        )


@document_training_parameters
class BERT4Rec(SequentialModel):
    """BERT4Rec: a bidirectional transformer trained to fill in masked items
    (Sun et al. 2019).

    Each training sequence has every event replaced by a mask token with probability
    ``mask_prob`` (at least one per sequence) and the model predicts the masked items
    from both sides. At inference a mask token is appended after the user's latest
    ``max_len - 1`` events and its prediction ranks the catalog.

    Parameters
    ----------
    n_factors : int, default=64
    n_layers : int, default=2
    n_heads : int, default=2
    dim_feedforward : int, optional
        Feed-forward width; ``4 * n_factors`` when None (256 for 64 dims, as in the
        paper).
    dropout : float, default=0.1
    mask_prob : float, default=0.2
    output_head : bool, default=True
        BERT's masked-LM head before the tied output: dense + GELU + layer norm, and a
        per-item output bias (as in the paper's implementation).
    {sequence}
    {training}

    Attributes
    ----------
    module_ : skrec.nn.sequential.Transformer
    max_len_ : int
        The ``max_len`` the model was fitted with; inference reads this one.
    loss_curve_, validation_scores_, n_iter_, best_iteration_
        See :class:`skrec.training.TorchRecommender`.

    Notes
    -----
    The loss is taken at the masked positions only; ``softmax`` is the paper's full
    cross-entropy. Blocks are pre-norm with GELU. With ``output_head`` the user vector
    for retrieval carries a trailing 1 and the item vectors the output bias.

    References
    ----------
    F. Sun, J. Liu, J. Wu, C. Pei, X. Lin, W. Ou and P. Jiang. BERT4Rec: Sequential
    Recommendation with Bidirectional Encoder Representations from Transformer.
    CIKM 2019.

    Examples
    --------
    >>> from skrec import BERT4Rec
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> BERT4Rec(max_iter=2, random_state=0).fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _next_item = False
    _parameter_constraints = {
        **SASRec._parameter_constraints,
        "mask_prob": [Interval(Real, 0, 1, closed="right")],
        "output_head": ["boolean"],
    }

    def __init__(
        self,
        n_factors: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        mask_prob: float = 0.2,
        output_head: bool = True,
        max_len: int = 50,
        loss: str = "softmax",
        n_negatives: int = 1,
        gbce_t: float = 0.75,
        logits_dtype: str = "float32",
        index: str = "exact",
        max_iter: int = 100,
        batch_size: int = 128,
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
        _init_sequence_params(self, locals())

    def _encoder(self, data):
        return self._transformer(
            data.n_items, causal=False, feedforward=4, activation="gelu", head=self.output_head
        )

    def _training_pairs(self, sequences, generator):
        return mask_items(sequences, self.mask_prob, self._train.n_items + 1, generator)

    def _inference_sequences(self, events):
        sequences, lengths = padded_sequences(events.indptr, events.item, self.max_len_ - 1)
        sequences = torch.nn.functional.pad(sequences, (0, 1))
        sequences[torch.arange(len(lengths)), lengths] = self._train.n_items + 1  # the mask
        return sequences, lengths + 1


@document_training_parameters
class GRU4Rec(SequentialModel):
    """GRU4Rec: a recurrent network over each user's (or session's) events predicts the
    next item at every position (Hidasi et al. 2016).

    Parameters
    ----------
    n_factors : int, default=64
        Embedding and hidden size.
    n_layers : int, default=1
    dropout : float, default=0.1
    {sequence}
    {training}

    Attributes
    ----------
    module_ : skrec.nn.sequential.GRU
    max_len_ : int
        The ``max_len`` the model was fitted with; inference reads this one.
    loss_curve_, validation_scores_, n_iter_, best_iteration_
        See :class:`skrec.training.TorchRecommender`.

    Notes
    -----
    Trained on padded user sequences with full cross-entropy at every position (the
    setting of Klenitskiy & Vasilev 2023), not the session-parallel mini-batches and
    TOP1/BPR-max losses of the original; the item embeddings are tied to the output.

    References
    ----------
    B. Hidasi, A. Karatzoglou, L. Baltrunas and D. Tikk. Session-based Recommendations
    with Recurrent Neural Networks. ICLR 2016.

    Examples
    --------
    >>> from skrec import GRU4Rec
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=60, n_items=30, random_state=0)
    >>> GRU4Rec(max_iter=2, random_state=0).fit(X).recommend([X.user_id[0]], k=3).shape
    (1, 3)
    """

    _parameter_constraints = {
        **SEQUENCE_CONSTRAINTS,
        "n_layers": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_factors: int = 64,
        n_layers: int = 1,
        dropout: float = 0.1,
        max_len: int = 50,
        loss: str = "softmax",
        n_negatives: int = 1,
        gbce_t: float = 0.75,
        logits_dtype: str = "float32",
        index: str = "exact",
        max_iter: int = 100,
        batch_size: int = 128,
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
        _init_sequence_params(self, locals())

    def _encoder(self, data):
        return GRU(data.n_items, self.n_factors, self.n_layers, self.dropout)


for _cls in (SASRec, BERT4Rec, GRU4Rec):
    _cls.__doc__ = _cls.__doc__.replace("    {sequence}", SEQUENCE_PARAMETERS_DOC)
