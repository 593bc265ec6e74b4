"""Baselines and exact variances of score-function gradient estimators (chapter 2).

The functions here take per-trajectory gradient estimates, for example those of
``rlnotes.reinforce_gradients`` on an enumerated set of trajectories, together with the exact
probability of each trajectory, and return exact moments. With ``prob=None`` they use the
uniform weights of a Monte Carlo sample instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_distribution,
    check_finite_result,
    check_gamma,
    check_positive_int,
)

__all__ = [
    "exact_gradient_variance",
    "finite_horizon_values",
    "optimal_baseline_coefficients",
    "optimal_constant_baseline",
]


def _flat_grads(name: str, grads: Any) -> FloatArray:
    arr = as_array(name, grads)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, ...) with N >= 1, got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _weights(prob: Any, n: int) -> FloatArray:
    if prob is None:
        return np.full(n, 1.0 / n)
    p = as_array("prob", prob, shape=(n,))
    return check_distribution("prob", p)


def _scaled(x: FloatArray) -> tuple[FloatArray, float]:
    """``(x / c, c)`` with ``c = max |x|`` (1 for a zero array), so squares cannot overflow."""
    c = float(np.max(np.abs(x))) if x.size else 0.0
    if c == 0.0:
        return x, 1.0
    return x / c, c


def exact_gradient_variance(grads: Any, prob: Any = None) -> float:
    r"""Total variance (trace of the covariance) of a vector-valued estimator.

    Computes :math:`\operatorname{tr}\operatorname{Cov}[g] = \sum_n p_n \lVert g_n \rVert^2
    - \lVert \sum_n p_n g_n \rVert^2`, the sum of the variances of all coordinates of
    :math:`g`, where :math:`g_n` is the estimate on trajectory :math:`n` and :math:`p_n` its
    probability. Book: eq-vr-variance. The trace as the scalar measure of the variance of a
    gradient estimator follows Greensmith, Bartlett and Baxter (2004).

    Parameters
    ----------
    grads : array, shape (N, ...)
        One estimate per trajectory; trailing axes are flattened.
    prob : array, shape (N,), optional
        Probability of each trajectory (non-negative, summing to 1). ``None`` gives the
        population variance of a sample, with weights ``1 / N``.

    Returns
    -------
    float
        The total variance, clipped below at 0 against round-off.
    """
    g, c = _scaled(_flat_grads("grads", grads))
    p = _weights(prob, g.shape[0])
    centred = g - p @ g
    var = max(float(p @ np.einsum("nd,nd->n", centred, centred)), 0.0)
    with np.errstate(over="ignore"):
        out = float(np.float64(var) * c * c)
    check_finite_result("the total variance", out)
    return out


def optimal_constant_baseline(grads: Any, control: Any, prob: Any = None) -> float:
    r"""Variance-minimizing constant baseline for an estimator :math:`g - b\,h`.

    For an estimator :math:`g` and a zero-mean control variate :math:`h` (for the score
    function, :math:`h = \sum_i \gamma^i \nabla_\theta \log \pi_\theta(a_i \mid s_i)`), the
    total variance of :math:`g - b\,h` is a quadratic in :math:`b`, minimized at

    .. math:: b^\star = \frac{\mathbb{E}[g \cdot h]}{\mathbb{E}[\lVert h \rVert^2]}.

    For the total-return estimator :math:`g = R\,h` this is
    :math:`b^\star = \mathbb{E}[\lVert h \rVert^2 R] / \mathbb{E}[\lVert h \rVert^2]`.
    Book: eq-vr-optimal-baseline. Source: Weaver and Tao (2001); Greensmith, Bartlett and
    Baxter (2004).

    Parameters
    ----------
    grads : array, shape (N, ...)
        The estimator without baseline, one estimate per trajectory.
    control : array, same shape as ``grads``
        The control variate :math:`h` of each trajectory. The formula assumes
        :math:`\mathbb{E}[h] = 0`, which the score function guarantees.
    prob : array, shape (N,), optional
        Probability of each trajectory; ``None`` means uniform sample weights.

    Returns
    -------
    float
        :math:`b^\star`. Both arguments are rescaled by their largest entry first, so
        squares of large gradients do not overflow; a :math:`b^\star` beyond float64 raises
        ``OverflowError``.
    """
    g = _flat_grads("grads", grads)
    h = _flat_grads("control", control)
    if h.shape != g.shape:
        raise ValueError(f"control must have the shape of grads {g.shape}, got {h.shape}")
    p = _weights(prob, g.shape[0])
    gs, cg = _scaled(g)
    hs, ch = _scaled(h)
    denom = float(p @ np.einsum("nd,nd->n", hs, hs))
    if denom <= 0.0:
        raise ValueError("control must be non-zero on some trajectory of positive weight")
    with np.errstate(over="ignore"):
        out = float(np.float64(float(p @ np.einsum("nd,nd->n", gs, hs)) / denom) * (cg / ch))
    check_finite_result("the optimal constant baseline", out)
    return out


def optimal_baseline_coefficients(grads: Any, controls: Any, prob: Any = None) -> FloatArray:
    r"""Variance-minimizing coefficients of several zero-mean control variates.

    For an estimator :math:`g` and control variates :math:`h_1, \dots, h_K` with
    :math:`\mathbb{E}[h_k] = 0`, the total variance of :math:`g - \sum_k \beta_k h_k` is a
    convex quadratic in :math:`\beta`, minimized where

    .. math:: \sum_l \mathbb{E}[h_k \cdot h_l]\, \beta_l = \mathbb{E}[g \cdot h_k],
              \qquad k = 1, \dots, K.

    With :math:`h_{(i, s)} = \gamma^i [s_i = s]\, \nabla_\theta \log \pi_\theta(a_i \mid s_i)`
    the coefficients form the variance-optimal baseline table :math:`b_i(s)`; with :math:`K = 1`
    this is :func:`optimal_constant_baseline`. Book: eq-vr-optimal-baseline-table. Source:
    Greensmith, Bartlett and Baxter (2004); Peters and Schaal (2008).

    Parameters
    ----------
    grads : array, shape (N, ...)
        The estimator without baseline, one estimate per trajectory.
    controls : array, shape (N, K, ...)
        The K control variates of each trajectory, trailing axes as in ``grads``.
    prob : array, shape (N,), optional
        Probability of each trajectory; ``None`` means uniform sample weights.

    Returns
    -------
    array, shape (K,)
        :math:`\beta^\star`, the minimum-norm solution when the system is singular (a control
        that vanishes on every trajectory gets coefficient 0).
    """
    g = _flat_grads("grads", grads)
    h = as_array("controls", controls)
    if h.ndim < 2 or h.shape[0] != g.shape[0] or h.shape[1] == 0:
        raise ValueError(f"controls must have shape (N={g.shape[0]}, K >= 1, ...), got {h.shape}")
    h = h.reshape(h.shape[0], h.shape[1], -1)
    if h.shape[2] != g.shape[1]:
        raise ValueError(f"controls must have trailing size {g.shape[1]} as grads, got {h.shape}")
    p = _weights(prob, g.shape[0])
    w = np.sqrt(p)[:, None]
    # weighted least squares: rows (n, d), columns k
    design = (h * w[:, :, None]).transpose(0, 2, 1).reshape(-1, h.shape[1])
    target = (g * w).reshape(-1)
    beta: FloatArray = np.asarray(np.linalg.lstsq(design, target, rcond=None)[0], dtype=np.float64)
    return beta


def finite_horizon_values(
    mdp: TabularMDP, pi: Any, horizon: int, gamma: float | None = None
) -> tuple[FloatArray, FloatArray]:
    r"""Time-dependent values of a policy over a finite horizon, by backward recursion.

    With :math:`V_H = 0`, for :math:`t = H-1, \dots, 0`:

    .. math::
        Q_t(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\, V_{t+1}(s'), \qquad
        V_t(s) = \sum_a \pi(a \mid s)\, Q_t(s, a),

    so that :math:`V_t(s) = \mathbb{E}[\sum_{k=t}^{H-1} \gamma^{k-t} r_k \mid s_t = s]`,
    the expected reward-to-go from step :math:`t`. Book: eq-vr-advantage. Source: Puterman
    (1994), ch. 4; Sutton and Barto (2018), sec. 3.5.

    Parameters
    ----------
    mdp : TabularMDP
        The model ``P[s, a, s']``, ``R[s, a]``.
    pi : array, shape (S, A)
        Stochastic policy ``pi[s, a]``.
    horizon : int
        Number of steps :math:`H \ge 1`.
    gamma : float, optional
        Discount in [0, 1]; ``None`` means ``mdp.gamma``.

    Returns
    -------
    V : array, shape (H + 1, S)
        ``V[t, s]``; the last row is zero.
    Q : array, shape (H, S, A)
        ``Q[t, s, a]``; the advantage is ``Q[t] - V[t][:, None]``.
    """
    mdp = check_mdp(mdp).to_dense()  # enumeration-sized models: a dense P is the simple route
    policy = mdp.check_policy(pi)
    H = check_positive_int("horizon", horizon)
    g = mdp.gamma if gamma is None else check_gamma(gamma, "gamma", allow_one=True)
    V = np.zeros((H + 1, mdp.n_states))
    Q = np.zeros((H, mdp.n_states, mdp.n_actions))
    for t in range(H - 1, -1, -1):
        Q[t] = mdp.R + g * (mdp.P @ V[t + 1])
        V[t] = np.einsum("sa,sa->s", policy, Q[t])
    return V, Q
