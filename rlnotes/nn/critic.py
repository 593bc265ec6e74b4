r"""Value networks: build one, evaluate it, fit it to targets by a few steps of Adam.

A critic :math:`\hat V_\phi` is an MLP (``rlnotes.nn.policies.mlp``) with one output. It is
fitted by regression, :math:`\min_\phi \frac{1}{T} \sum_t (\hat V_\phi(x_t) - y_t)^2`, to
targets :math:`y_t` that the caller computes with :mod:`rlnotes.estimators.returns` (reward to
go, :math:`\lambda`-returns), a few Adam steps per batch. REINFORCE with a baseline, GAE, TRPO
and Q-Prop share these three functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_finite,
    check_finite_result,
    check_positive_int,
    check_positive_real,
)
from rlnotes.nn.policies import mlp
from rlnotes.nn.tensors import parameter_dtype

__all__ = ["CriticFit", "fit_critic", "predict_values", "value_network"]


class CriticFit(NamedTuple):
    """What one call of :func:`fit_critic` did.

    Attributes
    ----------
    initial_loss : float
        Mean squared error to the targets before the first step.
    final_loss : float
        Mean squared error after the last step.
    n_steps : int
        Number of optimizer steps taken.
    """

    initial_loss: float
    final_loss: float
    n_steps: int


def value_network(
    in_dim: int, hidden: Sequence[int] = (32,), *, dtype: torch.dtype | None = None
) -> nn.Sequential:
    r"""A critic :math:`\hat V_\phi: \mathbb{R}^{d} \to \mathbb{R}`, an MLP with one output.

    Parameters
    ----------
    in_dim : int
        Dimension :math:`d` of its input (an observation, possibly with extra features).
    hidden : sequence of int
        Hidden widths (tanh), as in ``rlnotes.nn.policies.mlp``.
    dtype : torch.dtype, optional
        Floating-point type of the parameters; ``None`` means torch's default dtype.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(*batch, in_dim)`` to ``(*batch, 1)``.
    """
    return mlp(in_dim, 1, hidden, dtype=dtype)


def _check_critic(critic: object) -> nn.Module:
    if not isinstance(critic, nn.Module):
        raise TypeError(f"critic must be a torch.nn.Module, got {type(critic).__name__}")
    return critic


def _inputs(name: str, x: Any) -> FloatArray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = as_float_array(name, x, ndim=2)
    check_finite(name, arr)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row, got shape {arr.shape}")
    return arr


def predict_values(critic: nn.Module, observations: Any) -> FloatArray:
    r""":math:`\hat V_\phi(x_t)` for each row of ``observations``, without gradient, float64.

    Parameters
    ----------
    critic : torch.nn.Module
        Maps ``(T, d)`` to ``(T, 1)`` (e.g. from :func:`value_network`).
    observations : array_like, shape (T, d)
        Finite real inputs (cast to the dtype of the critic's parameters).

    Returns
    -------
    numpy.ndarray, shape (T,)
    """
    net = _check_critic(critic)
    x = _inputs("observations", observations)
    with torch.no_grad():
        out = net(torch.tensor(x, dtype=parameter_dtype(net)))
    if out.shape != (x.shape[0], 1):
        raise ValueError(f"critic must map (T, d) to (T, 1), got output shape {tuple(out.shape)}")
    values: FloatArray = out[:, 0].double().numpy()
    return values


def fit_critic(
    critic: nn.Module,
    observations: Any,
    targets: Any,
    *,
    n_steps: int = 10,
    learning_rate: float = 0.01,
    optimizer: torch.optim.Optimizer | None = None,
) -> CriticFit:
    r"""Regress ``critic`` on ``targets`` by ``n_steps`` full-batch optimizer steps.

    Each step is one step of the optimizer on the mean squared error

    .. math:: L(\phi) = \frac{1}{T} \sum_{t=0}^{T-1} \big(\hat V_\phi(x_t) - y_t\big)^2 .

    The critic's parameters are updated in place. Pass the same ``optimizer`` from one call
    to the next to keep Adam's moment estimates across batches (as a training loop does);
    without one a fresh ``torch.optim.Adam(critic.parameters(), lr=learning_rate)`` is used.

    Book: thm-vr-baseline (a learned baseline), eq-vr-lambda-return (its targets under GAE).
    Source: Schulman et al. (2016), sec. 5 (value-function regression).

    Parameters
    ----------
    critic : torch.nn.Module
        Maps ``(T, d)`` to ``(T, 1)``.
    observations : array_like, shape (T, d)
        The inputs :math:`x_t` (finite, real).
    targets : array_like, shape (T,)
        The targets :math:`y_t` (finite, real).
    n_steps : int
        Number of optimizer steps (>= 1).
    learning_rate : float
        Step size of the default Adam optimizer (> 0; ignored with ``optimizer``).
    optimizer : torch.optim.Optimizer, optional
        An optimizer over the critic's parameters.

    Returns
    -------
    CriticFit
        The loss before and after the steps, and the number of steps.
    """
    net = _check_critic(critic)
    x = _inputs("observations", observations)
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().numpy()
    y = as_float_array("targets", targets, ndim=1)
    check_finite("targets", y)
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"targets must have shape ({x.shape[0]},), one per row of observations, got {y.shape}"
        )
    steps = check_positive_int("n_steps", n_steps)
    lr = check_positive_real("learning_rate", learning_rate)
    if optimizer is None:
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}"
        )
    dtype = parameter_dtype(net)
    xt = torch.tensor(x, dtype=dtype)
    yt = torch.tensor(y, dtype=dtype)
    first = float("nan")
    for k in range(steps):
        pred = net(xt)
        if k == 0 and pred.shape != (x.shape[0], 1):
            raise ValueError(
                f"critic must map (T, d) to (T, 1), got output shape {tuple(pred.shape)}"
            )
        loss = ((pred[:, 0] - yt) ** 2).mean()
        if k == 0:
            first = float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        last = float(((net(xt)[:, 0] - yt) ** 2).mean())
    check_finite_result("the critic's squared error", np.array([first, last]))
    return CriticFit(initial_loss=first, final_loss=last, n_steps=steps)
