"""Argument checks for torch tensors, shared by every module of the torch layer.

The numpy counterpart is :mod:`rlnotes.core.validation`; the rule is the same: a wrong type
(not a tensor, an integer tensor) is a ``TypeError``, a wrong value (shape, emptiness, NaN or
inf) a ``ValueError``, and every message starts with the argument's name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["check_tensor", "parameter_dtype"]


def check_tensor(
    name: str, x: object, *, ndim: int | None = None, shape: Sequence[int] | None = None
) -> torch.Tensor:
    """Require a non-empty, finite, floating-point tensor of the given rank or shape."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d tensor, got shape {tuple(x.shape)}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x


def parameter_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (torch's default if none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()
