"""Training losses, each written once and shared by every model.

Ranking losses take the score of each positive, ``pos`` of shape (B,), and the scores of
its negatives, ``neg`` of shape (B, N). ``valid`` (bool, same shape as ``neg``) marks the
negatives to use; ``False`` drops a negative that is in fact a positive (an accidental
hit of in-batch or unrejected sampling). Every loss returns the mean over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Ranking losses on (positive, negatives) scores; ``softmax``, ``mse`` and ``infonce``
#: take other inputs (full logits, targets, paired embeddings).
PAIRWISE = ("bpr", "bce", "sampled_softmax", "gbce", "warp")
ALL = ("bpr", "bce", "mse", "softmax", "sampled_softmax", "gbce", "warp", "infonce")


def _masked(values: torch.Tensor, valid: torch.Tensor | None, fill: float = 0.0):
    return values if valid is None else values.masked_fill(~valid, fill)


def bpr(pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor | None = None):
    """Bayesian personalised ranking: ``-log σ(pos - neg)``, averaged over valid pairs."""
    per_pair = -F.logsigmoid(pos[:, None] - neg)  # (B, N)
    if valid is None:
        return per_pair.mean()
    return _masked(per_pair, valid).sum() / valid.sum().clamp_min(1)


def bce(pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor | None = None):
    """Binary cross-entropy: ``-log σ(pos) - Σ log(1 - σ(neg))`` per positive."""
    return (F.softplus(-pos) + _masked(F.softplus(neg), valid).sum(1)).mean()


def gbce(
    pos: torch.Tensor,
    neg: torch.Tensor,
    n_items: int,
    t: float = 0.75,
    valid: torch.Tensor | None = None,
):
    """Generalised BCE of gSASRec: the positive's probability raised to ``β``.

    ``β = α (t (1 - 1/α) + 1/α)`` with ``α = N / (n_items - 1)`` the sampling rate,
    so ``t = 0`` is plain BCE and ``t = 1`` calibrates the positive's probability to
    the full catalog. Loss: ``-β log σ(pos) - Σ log(1 - σ(neg))``.

    References: A. Petrov and C. Macdonald. gSASRec. RecSys 2023.
    """
    beta = gbce_beta(neg.shape[1], n_items, t)
    return (beta * F.softplus(-pos) + _masked(F.softplus(neg), valid).sum(1)).mean()


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gBCE's power on the positive's probability, ``α (t (1 - 1/α) + 1/α)`` with the
    sampling rate ``α = n_negatives / (n_items - 1)``; 1 at ``t = 0``."""
    alpha = n_negatives / max(n_items - 1, 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def balance_logit(name: str, n_negatives: int, n_items: int, gbce_t: float = 0.75) -> float:
    """The score at which ``bce`` or ``gbce`` is stationary when every item scores the
    same: ``β (1 - σ) = N σ``, so ``σ = β / (β + N)`` and the logit is ``log(β / N)``
    (0 for one-negative BCE). The other losses do not change when every score moves
    together: 0."""
    if name not in ("bce", "gbce"):
        return 0.0
    beta = gbce_beta(n_negatives, n_items, gbce_t) if name == "gbce" else 1.0
    return math.log(beta / n_negatives)


def mse(pred: torch.Tensor, target: torch.Tensor):
    """Mean squared error (explicit ratings)."""
    return F.mse_loss(pred, target)


def softmax(logits: torch.Tensor, target: torch.Tensor):
    """Full cross-entropy: ``logits`` (B, n_items) against the target item (B,)."""
    return F.cross_entropy(logits, target)


def sampled_softmax(
    pos: torch.Tensor,
    neg: torch.Tensor,
    valid: torch.Tensor | None = None,
    log_q_pos: torch.Tensor | None = None,
    log_q_neg: torch.Tensor | None = None,
):
    """Cross-entropy of the positive against its sampled negatives.

    With ``log_q_*`` (log sampling probability of each item) the logits are corrected
    by ``-log q`` (Bengio & Senécal; Yi et al. 2019), which makes the sampled loss an
    estimate of the full softmax under non-uniform sampling.
    """
    if log_q_pos is not None:
        pos = pos - log_q_pos
        neg = neg - log_q_neg
    logits = torch.cat([pos[:, None], _masked(neg, valid, -torch.inf)], dim=1)  # (B, 1 + N)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def warp(
    pos: torch.Tensor,
    neg: torch.Tensor,
    n_items: int,
    valid: torch.Tensor | None = None,
    margin: float = 1.0,
):
    """Weighted approximate-rank pairwise loss (WARP), vectorised over N sampled trials.

    The first negative violating the margin ends the trials; with T trials (the valid
    negatives up to and including it) the rank of the positive is estimated as
    ``⌊(n_items - 1) / T⌋`` and the hinge on that negative is weighted by
    ``H(rank) = Σ_{r ≤ rank} 1/r``. Positives with no violator add 0. The estimate
    assumes uniform draws in random order (skrec's models allow WARP with the
    ``uniform`` sampler only).

    References: J. Weston, S. Bengio and N. Usunier. WSABIE. IJCAI 2011.
    """
    hinge = margin - pos[:, None] + neg  # (B, N)
    violates = _masked(hinge > 0, valid, False)
    any_violation = violates.any(1)
    first = violates.float().argmax(1)  # (B,): index of the first violator
    if valid is None:
        trials = first + 1
    else:  # invalid slots (a user's own items) were not trials
        trials = valid.to(first.device).long().cumsum(1).gather(1, first[:, None]).squeeze(1)
    rank = torch.div(n_items - 1, trials.clamp_min(1), rounding_mode="floor").clamp_min(1)
    weight = torch.special.digamma(rank.double() + 1) + 0.5772156649015329  # H(rank)
    chosen = hinge.gather(1, first[:, None]).squeeze(1)
    loss = weight.to(pos.dtype) * chosen.clamp_min(0) * any_violation
    return loss.sum() / max(pos.shape[0], 1)


def infonce(
    query: torch.Tensor,
    key: torch.Tensor,
    temperature: float = 0.1,
    key_ids: torch.Tensor | None = None,
):
    """InfoNCE with in-batch negatives: row b of ``query`` (B, D) should match row b of
    ``key`` (B, D) among all B keys. ``key_ids`` (B,) drops off-diagonal keys equal to
    the row's own key (accidental hits)."""
    logits = query @ key.T / temperature  # (B, B)
    if key_ids is not None:
        same = key_ids[:, None] == key_ids[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, -torch.inf)
    target = torch.arange(len(query), device=query.device)
    return F.cross_entropy(logits, target)


def ranking_loss(
    name: str,
    pos: torch.Tensor,
    neg: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    n_items: int | None = None,
    gbce_t: float = 0.75,
    log_q_pos: torch.Tensor | None = None,
    log_q_neg: torch.Tensor | None = None,
):
    """Dispatch one of :data:`PAIRWISE` by name on (positive, negatives) scores."""
    if name == "bpr":
        return bpr(pos, neg, valid)
    if name == "bce":
        return bce(pos, neg, valid)
    if name == "sampled_softmax":
        return sampled_softmax(pos, neg, valid, log_q_pos, log_q_neg)
    if name == "gbce":
        return gbce(pos, neg, n_items, gbce_t, valid)
    if name == "warp":
        return warp(pos, neg, n_items, valid)
    raise ValueError(f"{name!r} is not a pairwise ranking loss; choose from {PAIRWISE}.")


class _ChunkedSoftmax(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T + bias`` against ``target``, computed
    over item chunks: neither pass holds the (M, n_items) logits, only (M, chunk).
    The chunk products run in ``dtype`` (the inputs', or bfloat16 for speed); the
    log-sum-exp, the loss and the gradients are accumulated in the inputs' dtype."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, chunk, dtype):
        dtype = dtype or hidden.dtype
        h, w = hidden.to(dtype), weight.to(dtype)
        lse = hidden.new_full((hidden.shape[0],), -torch.inf)  # (M,)
        for start in range(0, weight.shape[0], chunk):
            logits = _chunk_logits(h, w, bias, start, chunk, hidden.dtype)  # (M, c)
            lse = torch.logaddexp(lse, torch.logsumexp(logits, 1))
        if dtype == hidden.dtype:
            target_logit = (hidden * weight[target]).sum(1)  # (M,)
        else:  # from the same rounded product as the log-sum-exp's, or the loss can be < 0
            target_logit = (h[:, None, :] @ w[target][:, :, None])[:, 0, 0].to(hidden.dtype)
        if bias is not None:
            target_logit = target_logit + bias[target]
        ctx.save_for_backward(hidden, weight, bias, target, lse)
        ctx.chunk, ctx.dtype = chunk, dtype
        return (lse - target_logit).mean()

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, bias, target, lse = ctx.saved_tensors
        h, w = hidden.to(ctx.dtype), weight.to(ctx.dtype)
        scale = grad / hidden.shape[0]
        grad_hidden = torch.zeros_like(hidden)
        grad_weight = torch.zeros_like(weight)
        grad_bias = None if bias is None else torch.zeros_like(bias)
        for start in range(0, weight.shape[0], ctx.chunk):
            logits = _chunk_logits(h, w, bias, start, ctx.chunk, hidden.dtype)
            probability = torch.exp(logits - lse[:, None]) * scale  # (M, c): d loss / d logit
            stop = start + probability.shape[1]
            p = probability.to(ctx.dtype)
            grad_hidden += (p @ w[start:stop]).to(hidden.dtype)
            grad_weight[start:stop] = (p.T @ h).to(hidden.dtype)
            if grad_bias is not None:
                grad_bias[start:stop] = probability.sum(0)
        # the target logit's own term: -1/M per row
        grad_hidden -= scale * weight[target]
        grad_weight.index_add_(0, target, -scale * hidden)
        if grad_bias is not None:
            grad_bias.index_add_(0, target, (-scale).expand(len(target)).to(grad_bias.dtype))
        return grad_hidden, grad_weight, grad_bias, None, None, None


def _chunk_logits(hidden, weight, bias, start, chunk, out_dtype):
    """Logits of one item chunk, as ``out_dtype`` (the product in the inputs' dtype)."""
    logits = (hidden @ weight[start : start + chunk].T).to(out_dtype)
    return logits if bias is None else logits + bias[start : start + chunk]


def full_softmax(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    chunk_size: int = 8192,
    dtype: torch.dtype | None = None,
):
    """Full cross-entropy over every item without the (M, n_items) logits tensor.

    Equals ``softmax(hidden @ weight.T + bias, target)`` — ``hidden`` (M, D) query
    vectors, ``weight`` (n_items, D) item vectors, ``bias`` (n_items,) — in value and
    gradients, but both passes go ``chunk_size`` items at a time, so memory is
    O(M · chunk_size) instead of O(M · n_items) (a 54k-item catalog trains in bounded
    memory). Costs one extra logits pass in backward. ``dtype=torch.bfloat16`` runs
    the logits products in bfloat16 (the products about 3x faster on CPUs with
    AVX512-BF16 and on GPUs; logits then carry ~3 significant digits), accumulating
    in the inputs' dtype.
    """
    return _ChunkedSoftmax.apply(hidden, weight, bias, target, int(chunk_size), dtype)
