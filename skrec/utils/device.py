"""Torch device resolution shared by every model."""

from __future__ import annotations

import torch

#: Device types models run on.
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` -> cuda, then mps, then cpu; otherwise a cpu, cuda (``cuda:N``) or mps device."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda', 'cuda:1' "
            "or 'mps'."
        ) from exc
    if resolved.type not in DEVICE_TYPES:
        raise ValueError(
            f"device={device!r}: skrec trains and scores on {', '.join(DEVICE_TYPES)} devices "
            f"only ('{resolved.type}' holds no data skrec can use); use 'auto' or one of those."
        )
    if resolved.type == "cuda" and resolved.index is not None and torch.cuda.is_available():
        if resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}, but this machine has {torch.cuda.device_count()} CUDA "
                f"device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})."
            )
    return resolved
