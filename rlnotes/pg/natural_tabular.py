r"""The natural policy gradient of a tabular softmax policy, in closed form (numpy only).

For logits :math:`\theta[s, a]` with :math:`\pi_\theta(a \mid s) \propto e^{\theta[s, a]}`, the
score is :math:`\nabla_\theta \log \pi(a \mid s) = e_s \otimes (e_a - \pi(\cdot \mid s))`, so
Kakade's Fisher matrix, weighted by a state distribution :math:`d`, is block diagonal,

.. math:: F = \sum_s d(s) \big(\operatorname{diag}\pi_s - \pi_s \pi_s^\top\big),

and the natural gradient of the (entropy-regularized) return is the soft advantage divided by
:math:`1 - \gamma`, up to the per-state constants of the null space of :math:`F`. The natural
step therefore has the closed form of :func:`npg_update` (Kakade 2001; Agarwal et al. 2021;
Cen et al. 2022). Values (:math:`Q^\pi` or the soft :math:`Q_\tau^\pi`) are arguments: this
layer does not evaluate policies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_distribution,
    check_finite,
    check_gamma,
    check_positive_real,
    check_real,
    check_shape,
)

__all__ = ["npg_update", "softmax_fisher", "softmax_policy_gradient"]


def _policy(pi: Any, *, positive: bool) -> FloatArray:
    arr = check_finite("pi", as_float_array("pi", pi, ndim=2))
    check_distribution("pi", arr, axis=1)
    if positive and (arr <= 0).any():
        raise ValueError("pi must have strictly positive entries when tau > 0 (log pi is used)")
    return arr


def _state_weights(d: Any, n_states: int) -> FloatArray:
    arr = check_finite("state_weights", as_float_array("state_weights", d, ndim=1))
    check_shape("state_weights", arr, (n_states,))
    check_distribution("state_weights", arr)
    return arr


def _values(q: Any, shape: tuple[int, ...]) -> FloatArray:
    arr = check_finite("q_values", as_float_array("q_values", q, ndim=2))
    check_shape("q_values", arr, shape)
    return arr


def _tau(tau: Any) -> float:
    return check_real("tau", tau, low=0.0)


def _xlogx_safe_log(pi: FloatArray) -> FloatArray:
    """Log pi with log 0 replaced by 0 (only used where it is multiplied by pi or tau = 0)."""
    with np.errstate(divide="ignore"):
        out = np.where(pi > 0, np.log(np.where(pi > 0, pi, 1.0)), 0.0)
    return out


def softmax_fisher(pi: Any, state_weights: Any) -> FloatArray:
    r"""Kakade's Fisher matrix of a tabular softmax policy, shape ``(S*A, S*A)``.

    .. math:: F = \mathbb{E}_{s \sim d,\, a \sim \pi(\cdot \mid s)}
              \big[\nabla_\theta \log\pi(a \mid s) \nabla_\theta \log\pi(a \mid s)^\top\big]
              = \bigoplus_s d(s) \big(\operatorname{diag}\pi_s - \pi_s \pi_s^\top\big),

    indexed row-major like ``theta.reshape(-1)``. Each block annihilates the constant vector,
    so the rank is at most :math:`S (A - 1)`. Book: eq-nat-tabular-fisher.
    Source: Kakade (2001).

    Parameters
    ----------
    pi : array, shape (S, A)
        The policy; rows sum to 1.
    state_weights : array, shape (S,)
        The state distribution :math:`d` (e.g. the discounted state distribution of
        :math:`\pi`), summing to 1.
    """
    p = _policy(pi, positive=False)
    S, A = p.shape
    d = _state_weights(state_weights, S)
    F = np.zeros((S * A, S * A))
    for s in range(S):
        block = np.diag(p[s]) - np.outer(p[s], p[s])
        F[s * A : (s + 1) * A, s * A : (s + 1) * A] = d[s] * block
    return F


def softmax_policy_gradient(
    pi: Any, q_values: Any, state_weights: Any, gamma: float, *, tau: float = 0.0
) -> FloatArray:
    r"""The exact gradient of the (entropy-regularized) return with respect to the logits.

    .. math:: \frac{\partial J_\tau}{\partial \theta[s, a]} = \frac{1}{1 - \gamma}\,
              d(s)\, \pi(a \mid s) \big(Q_\tau(s, a) - \tau \log\pi(a \mid s) - V_\tau(s)\big),
              \quad V_\tau(s) = \sum_a \pi(a \mid s)\big(Q_\tau(s, a) - \tau\log\pi(a \mid s)\big),

    where :math:`d` is the normalized discounted state distribution of :math:`\pi` from the
    start distribution and :math:`Q_\tau` its soft action values (:math:`\tau = 0`: the
    ordinary :math:`Q^\pi`, and the bracket is the advantage :math:`A^\pi`).
    Book: eq-nat-tabular-fisher (the gradient), eq-nat-tabular-natural.
    Source: Agarwal et al. (2021), lemma on softmax gradients; Cen et al. (2022).

    Returns
    -------
    array, shape (S, A)
    """
    t = _tau(tau)
    p = _policy(pi, positive=t > 0)
    S, A = p.shape
    q = _values(q_values, (S, A))
    d = _state_weights(state_weights, S)
    g = check_gamma(gamma)
    soft = q - t * _xlogx_safe_log(p)
    v = (p * soft).sum(axis=1, keepdims=True)
    out: FloatArray = d[:, None] * p * (soft - v) / (1.0 - g)
    return out


def npg_update(
    pi: Any, q_values: Any, step_size: float, gamma: float, *, tau: float = 0.0
) -> FloatArray:
    r"""One natural policy gradient step of a tabular softmax policy, in closed form.

    .. math:: \pi_{t+1}(a \mid s) \propto \pi_t(a \mid s)^{1 - \eta\tau/(1-\gamma)}
              \exp\!\Big(\frac{\eta\, Q_\tau^{\pi_t}(s, a)}{1 - \gamma}\Big),

    the logit step :math:`\theta \leftarrow \theta + \eta F^{+} \nabla_\theta J_\tau` with
    Kakade's Fisher (any solution of :math:`F w = \nabla J_\tau` gives the same policy).
    :math:`\tau = 0`: :math:`\pi_{t+1} \propto \pi_t e^{\eta A^{\pi_t}/(1-\gamma)}`, which
    tends to the greedy policy of :math:`Q^{\pi_t}` (a policy-iteration step) as
    :math:`\eta \to \infty`. :math:`\eta = (1 - \gamma)/\tau`:
    :math:`\pi_{t+1} \propto e^{Q_\tau^{\pi_t}/\tau}`, soft policy iteration. Computed in the
    log domain (no overflow for large :math:`\eta`).
    Book: eq-nat-tabular-update. Source: Kakade (2001); Agarwal et al. (2021); Cen et al. (2022).

    Parameters
    ----------
    pi : array, shape (S, A)
        The current policy; strictly positive where ``tau > 0``.
    q_values : array, shape (S, A)
        :math:`Q^{\pi_t}` (``tau = 0``) or the soft :math:`Q_\tau^{\pi_t}`.
    step_size : float
        :math:`\eta > 0`; with ``tau > 0`` at most :math:`(1 - \gamma)/\tau` (larger steps
        would give a negative exponent of :math:`\pi_t`, which is outside the method).
    gamma : float
        Discount in [0, 1).
    tau : float
        Entropy weight :math:`\tau \ge 0`.

    Returns
    -------
    array, shape (S, A)
        The new policy; rows sum to 1.
    """
    t = _tau(tau)
    p = _policy(pi, positive=t > 0)
    q = _values(q_values, p.shape)
    eta = check_positive_real("step_size", step_size)
    g = check_gamma(gamma)
    keep = 1.0 - eta * t / (1.0 - g)
    if keep < -1e-12:
        raise ValueError(
            f"step_size must be <= (1 - gamma)/tau = {(1.0 - g) / t:.6g} when tau > 0, got {eta}"
        )
    keep = max(keep, 0.0)
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    logits = eta * q / (1.0 - g)
    if keep > 0.0:
        logits = logits + keep * logp
    logits = np.where(p > 0, logits, -np.inf) if t == 0.0 else logits
    logits = logits - logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    out: FloatArray = w / w.sum(axis=1, keepdims=True)
    return out
