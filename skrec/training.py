"""The one training loop every torch model uses.

A torch model subclasses :class:`TorchRecommender` and supplies three hooks:

- ``_build_module(data)`` -> an ``nn.Module`` from :mod:`skrec.nn`;
- ``_batches(prepared, module, generator)`` -> an epoch of batches (dicts of tensors);
- ``_loss(module, batch)`` -> a scalar tensor, from :mod:`skrec.nn.losses`;

and optionally ``_prepare(data)`` (per-dataset state such as a negative sampler,
built once before the epochs) and ``_train_step`` (a closed-form step equal to the
default autograd one, where a model has a faster way to take it). The loop owns
everything else: device resolution, seeding through local generators, the optimizer,
gradient clipping, the progress bar, ``loss_curve_``/``validation_scores_``/``n_iter_``,
early stopping on the validation event's NDCG@10 with the best weights restored, and
moving a fitted model between devices (``set_params(device=...)``, pickles that load
on a CPU-only machine).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import sys
import threading
import time
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .base import BaseRecommender, UserContext
from .data.interactions import Interactions
from .metrics import ndcg_at_k
from .utils.device import resolve_device
from .utils.validation import Interval, StrOptions

logger = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
}

#: Constraints of the parameters every torch model shares; models add their own.
TRAINING_CONSTRAINTS = {
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="right")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "checkpoint_dir": [str, os.PathLike, None],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

#: Shared parameter documentation, appended to each torch model's docstring.
TRAINING_PARAMETERS_DOC = """\
    max_iter : int
        Epochs (passes over the training events).
    batch_size : int
    learning_rate : float
    weight_decay : float, default=0.0
        Optimizer weight decay.
    optimizer : {"adam", "adamw", "sgd", "adagrad"}, default="adam"
    clip_grad_norm : float, optional
        Clip the gradient's global norm to this value.
    early_stopping : bool, default=False
        Hold out one event of a random ``validation_fraction`` of the users (their
        last by timestamp; a random one when ``X`` has no timestamp), stop when the
        NDCG@10 on it has not improved for ``n_iter_no_change`` epochs, and restore
        the best epoch's weights. The held-out events are not trained on.
    validation_fraction : float, default=0.1
        Share of the users validated on; 1.0 holds out every user's last event (the
        leave-last-out protocol of the sequential-recommendation papers).
    n_iter_no_change : int, default=5
    checkpoint_dir : str or path, optional
        Save the training state (weights, optimizer, random generators, curves, best
        epoch so far) there after every epoch. A later ``fit`` with the same parameters
        on the same data (and ``y``) resumes from it, and ends as the uninterrupted fit
        would have. Needs an integer ``random_state``.
    device : str, default="auto"
        ``"auto"`` picks cuda, then mps, then cpu; ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        and ``"mps"`` are accepted.
        ``set_params(device=...)`` after fit moves the fitted model.
    random_state : int, RandomState or None
        Seeds initialisation, shuffling and sampling through local generators (global
        torch state is left as it was). Same seed on CPU, same model.
    verbose : bool, default=False
        Progress bar over epochs, with the loss and validation score."""


class InterruptedFitWarning(UserWarning):
    """``fit`` was interrupted (Ctrl-C) after at least one whole epoch and kept the best
    (or, without validation, the last complete) epoch's weights."""


def document_training_parameters(cls):
    """Class decorator: the shared training parameters where ``{training}`` stands in the
    model's docstring (its Parameters section), so they are written once."""
    cls.__doc__ = cls.__doc__.replace("    {training}", TRAINING_PARAMETERS_DOC)
    return cls


class TorchRecommender(BaseRecommender):
    """Base class of skrec's torch models (not to be used directly).

    Attributes set by fit: ``module_`` (the trained ``nn.Module``), ``device_``,
    ``loss_curve_`` (mean training loss per epoch), ``validation_scores_`` (NDCG@10 per
    epoch, or None without early stopping), ``n_iter_`` (epochs run) and
    ``best_iteration_`` (the epoch whose weights were kept) and ``training_seconds_``
    (wall time of the epochs, validation included, summed over the runs a checkpoint
    joined).
    """

    #: The network's name, for a model whose network changed without a parameter to say
    #: so: checkpoint fingerprints and saved files carry it, so that weights of the old
    #: network (same names) are never loaded into the new one. None: never changed.
    _architecture: str | None = None

    # ------------------------------------------------------------ model hooks
    def _build_module(self, data: Interactions) -> torch.nn.Module:
        raise NotImplementedError

    def _prepare(self, data: Interactions):
        """Per-dataset state the batches need (e.g. a negative sampler); built once."""
        return data

    def _held_out_note(self, data: Interactions) -> str:
        """For an error about ``data`` too short to learn from: a note when early
        stopping's hold-out shortened it (``data`` is then not the whole training set)."""
        if self.early_stopping and data is not self._train:
            return (
                " once early stopping has held out validation events (lower "
                "validation_fraction, or set early_stopping=False)"
            )
        return ""

    def _batches(self, prepared, module: torch.nn.Module, generator: torch.Generator):
        """One epoch of batches: an iterable of dicts of (CPU) tensors."""
        raise NotImplementedError

    def _loss(self, module: torch.nn.Module, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------- the loop
    def _fit(self, data: Interactions, y) -> None:
        # (True is refused with the parameters, before fit gets here)
        if self.checkpoint_dir is not None and not isinstance(self.random_state, Integral):
            raise ValueError(
                f"{type(self).__name__}: checkpoint_dir needs an integer random_state (got "
                f"{self.random_state!r}): a resumed fit must draw the validation split, "
                "batches and negatives the interrupted one drew. Pass e.g. random_state=0."
            )
        device = _usable_device(self.device, strict=True)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        with _local_seed(seed, device):
            generator = torch.Generator().manual_seed(seed)
            validation = None
            if self.early_stopping:
                data, validation = _hold_out(data, self.validation_fraction, generator)
            self.device_ = device
            self.module_ = self._build_module(data).to(device)
            self.loss_curve_, self.validation_scores_ = [], [] if validation else None
            self.training_seconds_ = 0.0
            self.n_iter_, self.best_iteration_ = self._run(
                self.module_,
                list(self.module_.parameters()),
                self._prepare(data),
                generator,
                validation,
            )
        self.module_.eval()

    def _run(self, module, parameters, prepared, generator, validation=None):
        """Train ``parameters`` of ``module`` for up to ``max_iter`` epochs.

        Returns ``(epochs run, best epoch)``; with ``validation`` the best epoch's
        weights are restored.
        """
        optimizer = _make_optimizer(
            self.optimizer, parameters, self.learning_rate, self.weight_decay
        )
        best_score, best_state, best_epoch, stale, start = -np.inf, None, 0, 0, 1
        main_run = module is getattr(self, "module_", None)  # not a fold-in
        checkpoint = None
        if self.checkpoint_dir is not None and main_run:
            checkpoint = _Checkpoint(self)
            saved = checkpoint.load(module, optimizer, generator)
            if saved is not None:
                best_score, best_state, best_epoch, stale, start = saved
                if start - 1 > self.max_iter:
                    raise ValueError(
                        f"{type(self).__name__}: the checkpoint {checkpoint.path} holds "
                        f"{start - 1} epochs, more than max_iter={self.max_iter}, and a "
                        f"{self.max_iter}-epoch fit cannot be taken from it. Set max_iter >= "
                        f"{start - 1} to use it, or give this fit another checkpoint_dir."
                    )
                if start > self.max_iter or (validation and stale >= self.n_iter_no_change):
                    return checkpoint.finish(module, best_state, start - 1, best_epoch)
        bar = tqdm(
            range(start, self.max_iter + 1),
            initial=start - 1,
            total=self.max_iter,
            disable=not self.verbose,
            desc=type(self).__name__,
            unit="epoch",
        )
        epoch = done = start - 1  # the last epoch begun, and the last one completed
        last_state = None  # without validation: the weights after the last completed epoch
        try:
            for epoch in bar:
                tick = time.perf_counter()
                module.train()
                total, count = torch.zeros((), device=self.device_), 0
                for batch in self._batches(prepared, module, generator):
                    batch = {
                        name: t.to(self.device_, non_blocking=True) for name, t in batch.items()
                    }
                    total += self._train_step(module, batch, parameters, optimizer)
                    count += 1
                mean_loss = float(total) / max(count, 1)
                if not np.isfinite(mean_loss):
                    raise ValueError(
                        f"{type(self).__name__}: the training loss became {mean_loss} in epoch "
                        f"{epoch} (learning_rate={self.learning_rate}). The optimisation diverged: "
                        "lower learning_rate, set clip_grad_norm, or check the targets for "
                        "NaN/inf values."
                    )
                if not main_run:
                    continue  # a fold-in run: no curves, no validation
                self.loss_curve_.append(mean_loss)
                postfix = {"loss": f"{mean_loss:.4f}"}
                if validation is not None:
                    module.eval()
                    score = self._validation_ndcg(*validation)
                    self.validation_scores_.append(score)
                    postfix["ndcg@10"] = f"{score:.4f}"
                    if score > best_score:
                        # copied first: a Ctrl-C during the copy keeps the old best whole
                        snapshot = _snapshot(module)
                        best_score, best_epoch, stale, best_state = score, epoch, 0, snapshot
                    else:
                        stale += 1
                if validation is None:
                    last_state = _snapshot(module)
                done = epoch  # its curves, best and last weights are all in place
                self.training_seconds_ += time.perf_counter() - tick
                bar.set_postfix(postfix)
                logger.debug("%s epoch %d: %s", type(self).__name__, epoch, postfix)
                if checkpoint is not None:
                    checkpoint.save(
                        module,
                        optimizer,
                        generator,
                        epoch,
                        best_score,
                        best_state,
                        best_epoch,
                        stale,
                    )
                if validation is not None and stale >= self.n_iter_no_change:
                    break
        except KeyboardInterrupt:
            kept = best_state if validation is not None else last_state
            if kept is None or not main_run:
                raise  # nothing complete to keep: fit restores the previous state
            if validation is not None and best_epoch > done:
                # Interrupted between taking an epoch's best weights and marking it done:
                # its curves are already appended, so it counts as complete.
                done = best_epoch
            kept_epoch = best_epoch if validation is not None else done
            del self.loss_curve_[done:]
            if self.validation_scores_ is not None:
                del self.validation_scores_[done:]
            warnings.warn(
                f"{type(self).__name__}.fit was interrupted in epoch {epoch}; the model keeps "
                f"the weights of epoch {kept_epoch}"
                + (" (the best validated so far)." if validation is not None else ".")
                + (" Fit again to resume from the checkpoint." if checkpoint else ""),
                InterruptedFitWarning,
                stacklevel=_caller_stacklevel(),
            )
            return _Checkpoint.finish(module, kept, done, kept_epoch)
        return _Checkpoint.finish(module, best_state, epoch, best_epoch)

    def _train_step(self, module, batch: dict, parameters, optimizer) -> torch.Tensor:
        """One optimisation step of ``parameters`` on ``batch``; returns the batch's loss
        (detached). A model may override it with an equivalent closed-form step."""
        loss = self._loss(module, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=parameters)  # only what this run trains
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, self.clip_grad_norm)
        optimizer.step()
        return loss.detach()

    def _validation_ndcg(self, context: UserContext, targets: np.ndarray, k: int = 10) -> float:
        """NDCG@k of the held-out item of each context user (full ranking, seen excluded)."""
        with torch.no_grad():
            index, _ = self._top_items(context, min(k, self._train.n_items))
        return float(ndcg_at_k(targets[:, None], index, index.shape[1]))

    # ---------------------------------------------------------------- devices
    def _retrieval_device(self):
        return getattr(self, "device_", "cpu")

    def set_params(self, **params):
        moving = "device" in params and hasattr(self, "module_")
        # Resolved before anything changes: a refused device leaves the model as it was.
        device = _usable_device(params["device"], strict=True) if moving else None
        super().set_params(**params)
        if moving:
            self.module_.to(device)
            self.device_ = device
            for value in self.__dict__.values():  # fitted parts (NeuMF's pretrained_)
                parts = value if isinstance(value, (tuple, list)) else (value,)
                for part in parts:
                    if isinstance(part, TorchRecommender) and hasattr(part, "module_"):
                        part.set_params(device=params["device"])
        return self

    def __getstate__(self):
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
            state["module_"] = _cpu_copy(module)
        if "device_" in state:
            state["device_"] = torch.device("cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in self.__dict__:
            self.device_ = _usable_device(self.device, strict=False)
            self.module_.to(self.device_)


def _sorted_dicts(value):
    """``value`` with every dict made a sorted tuple of items, so that the same settings
    given in another key order fingerprint alike."""
    if isinstance(value, dict):
        return tuple(sorted((repr(key), _sorted_dicts(item)) for key, item in value.items()))
    return value


class _Checkpoint:
    """The training state of one fit in ``checkpoint_dir``, named by a fingerprint of the
    model's class, parameters and training data, written atomically after each epoch."""

    #: Parameters that do not change the epochs' trajectory, only where it stops (or
    #: where it runs): a checkpoint resumes under new values, so a finished fit can be
    #: extended with a larger ``max_iter`` or ``n_iter_no_change``.
    _NOT_FINGERPRINTED = ("verbose", "device", "checkpoint_dir", "max_iter", "n_iter_no_change")

    def __init__(self, model):
        params = model.get_params(deep=False)
        for name in self._NOT_FINGERPRINTED:
            params.pop(name, None)
        canonical = sorted((name, _sorted_dicts(value)) for name, value in params.items())
        digest = hashlib.sha256(repr(canonical).encode())
        if model._architecture is not None:  # see TorchRecommender._architecture
            digest.update(model._architecture.encode())
        data = model._train  # the whole fit data; the validation split follows from the seed
        for array in (data.user, data.item, data.weight):
            digest.update(np.ascontiguousarray(array).tobytes())
        if data.timestamp is None:  # another validation split (random, not the last event)
            digest.update(b"no timestamps")
        if data.target is not None:  # ``y``: other ratings are another fit
            digest.update(np.ascontiguousarray(data.target, dtype=np.float64).tobytes())
        self.model = model
        self.path = (
            Path(model.checkpoint_dir) / f"{type(model).__name__}-{digest.hexdigest()[:16]}.pt"
        )

    def load(self, module, optimizer, generator):
        """Restore a saved state; returns (best score, best state, best epoch, stale,
        next epoch), or None when there is no checkpoint for this fit."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            module.load_state_dict(state["module"])
            optimizer.load_state_dict(state["optimizer"])
        except Exception as error:  # noqa: BLE001 - any unreadable file is reported the same way
            reason = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
            raise ValueError(
                f"The checkpoint {self.path} cannot be read ({reason}); it is damaged or was "
                "written by another version of skrec. Delete it to start over."
            ) from error
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda_rng"], module_device(module))
        self.model.loss_curve_ = list(state["loss_curve"])
        self.model.training_seconds_ = float(state.get("seconds", 0.0))
        if self.model.validation_scores_ is not None:
            self.model.validation_scores_ = list(state["validation_scores"])
        logger.info(
            "%s: resumed from %s after epoch %d",
            type(self.model).__name__,
            self.path,
            state["epoch"],
        )
        best_state = state["best_state"] or None
        return (
            state["best_score"],
            best_state,
            state["best_epoch"],
            state["stale"],
            state["epoch"] + 1,
        )

    def save(self, module, optimizer, generator, epoch, best_score, best_state, best_epoch, stale):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "module": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            **(
                {"cuda_rng": torch.cuda.get_rng_state(module_device(module))}
                if module_device(module).type == "cuda"
                else {}
            ),
            "loss_curve": list(self.model.loss_curve_),
            "seconds": float(self.model.training_seconds_),
            "validation_scores": list(self.model.validation_scores_ or []),
            "epoch": epoch,
            "best_score": float(best_score),
            "best_state": best_state or {},
            "best_epoch": best_epoch,
            "stale": stale,
        }
        partial = self.path.with_suffix(".pt.partial")
        torch.save(state, partial)
        os.replace(partial, self.path)  # a kill mid-write leaves the previous checkpoint

    @staticmethod
    def finish(module, best_state, epoch, best_epoch):
        """(epochs run, epoch kept), with the best weights restored when validating."""
        if best_state is not None:
            module.load_state_dict(best_state)
            return epoch, best_epoch
        return epoch, epoch


def _snapshot(module) -> dict:
    """A fresh copy of ``module``'s state. Callers assign it only once it is whole, so a
    Ctrl-C during the copy leaves the previous snapshot intact (never a half-written one)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def module_device(module) -> torch.device:
    return next(module.parameters()).device


def _make_optimizer(name, parameters, learning_rate, weight_decay):
    """The optimizer, with torch's fused kernel where this device supports it (one
    kernel for all parameters: ~3x faster steps on CPU for embedding tables)."""
    make = OPTIMIZERS[name]
    try:
        return make(parameters, lr=learning_rate, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return make(parameters, lr=learning_rate, weight_decay=weight_decay)


def _cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` on the CPU, made without a second copy on its own device
    (``deepcopy(module).cpu()`` would briefly need twice a GPU model's memory): each
    tensor is copied to the CPU first, and the deep copy takes those."""
    memo = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        cpu = tensor.detach().to("cpu", copy=True)
        if isinstance(tensor, torch.nn.Parameter):
            cpu = torch.nn.Parameter(cpu, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = cpu
    return copy.deepcopy(module, memo)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))  # skrec/


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning issued by the calling function at the
    first frame outside skrec (the user's ``fit``), however deep the model's hooks go."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep):
        level, frame = level + 1, frame.f_back
    return level


def _usable_device(device, *, strict: bool) -> torch.device:
    """``device`` resolved; an unavailable accelerator is an error when ``strict``,
    otherwise (loading a pickle on another machine) a warning and the CPU."""
    try:
        resolved = resolve_device(device)
    except ValueError:
        if strict:
            raise
        resolved = None  # e.g. "cuda:1" saved on a machine with more devices than this one
    available = resolved is not None and {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
    }.get(resolved.type, True)
    if available:
        return resolved
    if strict:
        raise ValueError(
            f"device={device!r} but no {resolved.type} device is available on this machine; "
            "use device='auto' or 'cpu'."
        )
    warnings.warn(
        f"The model was saved for device={device!r}, which this machine lacks; it was loaded "
        "on the CPU.",
        stacklevel=3,
    )
    return torch.device("cpu")


#: Serialises the sections that seed torch's global generators: a fit or a fold-in in one
#: thread must not draw from a generator another thread has just seeded.
_GLOBAL_RNG_LOCK = threading.RLock()


class _local_seed:
    """Seed torch's default generators for the duration of a fit, then restore them, so
    module initialisation and dropout are reproducible without touching global state.

    Sections run one thread at a time (fits and fold-ins draw from the global generators,
    which threads share); the same thread may nest them.
    """

    def __init__(self, seed: int, device: torch.device):
        devices = [device] if device.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._seed, self._device, self._mps_state = seed, device, None

    def __enter__(self):
        _GLOBAL_RNG_LOCK.acquire()
        try:
            self._fork.__enter__()
        except BaseException:
            _GLOBAL_RNG_LOCK.release()
            raise
        try:
            # Only the generators restored on exit are seeded (torch.manual_seed would
            # reseed every accelerator's, which this fit never uses and never restores).
            torch.default_generator.manual_seed(self._seed)
            if self._device.type == "cuda":
                with torch.cuda.device(self._device):
                    torch.cuda.manual_seed(self._seed)
            elif self._device.type == "mps":
                self._mps_state = torch.mps.get_rng_state()
                torch.mps.manual_seed(self._seed)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self._mps_state is not None:
                torch.mps.set_rng_state(self._mps_state)
            return self._fork.__exit__(*exc)
        finally:
            _GLOBAL_RNG_LOCK.release()


def _hold_out(data: Interactions, fraction: float, generator: torch.Generator):
    """Split one event off a random ``fraction`` of users with at least two events.

    Returns the remaining events and ``(context, targets)`` for validation: the held-out
    users' remaining events as a :class:`UserContext` and their held-out item indices.
    """
    sizes = np.diff(data.indptr)
    eligible = np.flatnonzero(sizes >= 2)
    if len(eligible) == 0:
        raise ValueError(
            "early_stopping needs users with at least two events to hold one out for "
            "validation; none has. Set early_stopping=False."
        )
    n_val = max(1, int(round(fraction * len(eligible))))
    pick = torch.randperm(len(eligible), generator=generator)[:n_val].numpy()
    users = np.sort(eligible[pick])
    if data.timestamp is not None:
        offset = sizes[users] - 1  # the last event in time order
    else:
        draws = torch.rand(len(users), generator=generator, dtype=torch.float64).numpy()
        offset = (draws * sizes[users]).astype(np.int64)
    held = data.indptr[users] + offset
    keep = np.ones(len(data), dtype=bool)
    keep[held] = False
    train = data.select(keep)
    context = UserContext(users, np.zeros(len(users), dtype=bool), train.take_users(users))
    return train, (context, data.item[held])
