"""Torch device resolution shared by every model."""

from __future__ import annotations

import torch


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` -> cuda, then mps, then cpu; any torch device string otherwise."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda', 'cuda:1' "
            "or 'mps'."
        ) from exc
