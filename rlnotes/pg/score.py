"""The score-function (REINFORCE) estimator of the policy gradient of a tabular softmax policy."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_finite_result,
    check_gamma,
    check_index_array,
)
from rlnotes.estimators.returns import reward_to_go
from rlnotes.pg.policies import _check_theta, softmax_policy
from rlnotes.pg.trajectories import Trajectories

__all__ = ["WEIGHTINGS", "reinforce_gradients"]

#: The weightings that :func:`reinforce_gradients` accepts.
WEIGHTINGS = ("total", "reward_to_go")


def reinforce_gradients(
    theta: Any,
    traj: Trajectories,
    *,
    gamma: float,
    weighting: str = "total",
    baseline: Any = None,
) -> FloatArray:
    r"""The score-function estimate :math:`g(\tau_n)` of :math:`\nabla_\theta J`, per trajectory.

    With :math:`G_i = \sum_{t=i}^{H-1} \gamma^{t-i} r_t` (so :math:`G_0` is the discounted
    return) and an optional baseline :math:`b_i`,

    .. math::
        g(\tau) = \sum_{i=0}^{H-1} w_i \, \nabla_\theta \log \pi_\theta(a_i \mid s_i),
        \qquad
        w_i = \begin{cases}
            G_0 - \gamma^i b_i & \text{(total)} \\
            \gamma^i (G_i - b_i) & \text{(reward to go)}
        \end{cases}

    Both weightings have expectation :math:`\nabla_\theta J(\theta)` for the discounted
    finite-horizon objective, for any baseline :math:`b_i` that depends only on the history up
    to :math:`s_i` (a baseline that depends on :math:`a_i` or later breaks this).
    Book: thm-sf-policy-gradient, eq-sf-reinforce. Source: Williams (1992); Sutton et al. (2000).

    Parameters
    ----------
    theta : array, shape (S, A)
        Logits of the tabular softmax policy that generated (or weights) the trajectories.
    traj : Trajectories
        H steps of N trajectories, with states in ``[0, S)`` and actions in ``[0, A)``.
    weighting : {"total", "reward_to_go"}
        How each step's score is weighted (see above).
    gamma : float in [0, 1]
        The discount :math:`\gamma`, required so it cannot silently differ from the
        objective's: pass ``mdp.gamma`` to match
        ``finite_horizon_objective(mdp, theta, H)``, 1 for the undiscounted return.
    baseline : array, shape (H, N), optional
        :math:`b_i` for each step of each trajectory; ``None`` means zero.

    Returns
    -------
    g : array, shape (N, S, A)
        For an enumeration, ``(traj.prob[:, None, None] * g).sum(0)`` is the exact gradient; for
        a sample, ``g.mean(0)`` is the Monte Carlo estimate with standard error
        ``g.std(0, ddof=1) / sqrt(N)``.
    """
    th = _check_theta(theta)
    if not isinstance(traj, Trajectories):
        raise TypeError(f"traj must be a Trajectories, got {type(traj).__name__}")
    n_states, n_actions = th.shape
    s = check_index_array("traj.states", traj.states, n_states)
    a = check_index_array("traj.actions", traj.actions, n_actions)
    if not isinstance(weighting, str):
        raise TypeError(f"weighting must be a string, got {type(weighting).__name__}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    g_ = check_gamma(gamma, "gamma", allow_one=True)
    H, N = s.shape
    if baseline is None:
        b = np.zeros((H, N))
    else:
        b = as_array("baseline", baseline, shape=(H, N))

    powers = g_ ** np.arange(H, dtype=np.float64)[:, None]  # (H, 1)
    # G_i = r_i + gamma G_{i+1}, time-major (H, N), by the shared recursion
    rtg = reward_to_go(traj.rewards, g_)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
        w = rtg[0][None, :] - powers * b if weighting == "total" else powers * (rtg - b)
    check_finite_result("the weights G - b", w)

    # W[n, s, a] = sum_i w_i [s_i = s, a_i = a]
    # g[n, s, :] = W[n, s, :] - (sum_a W[n, s, a]) pi[s]
    n_idx = np.broadcast_to(np.arange(N), (H, N))
    flat = (n_idx * n_states + s) * n_actions + a
    W = np.bincount(flat.ravel(), weights=w.ravel(), minlength=N * n_states * n_actions)
    W = W.reshape(N, n_states, n_actions)
    pi = softmax_policy(th)
    with np.errstate(over="ignore", invalid="ignore"):
        g: FloatArray = W - W.sum(axis=2, keepdims=True) * pi[None, :, :]
    check_finite_result("the gradient estimates", g)
    return g
