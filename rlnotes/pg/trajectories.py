"""Finite-horizon trajectories of a tabular MDP: exact enumeration, sampling and J(theta).

A trajectory of horizon H is :math:`\\tau = (s_0, a_0, s_1, a_1, \\dots, s_{H-1}, a_{H-1})`
with rewards :math:`r_t = R[s_t, a_t]`. Its probability under a policy ``pi`` is

.. math:: p(\\tau) = \\mu_0(s_0) \\prod_{i=0}^{H-1} \\pi(a_i \\mid s_i)
          \\prod_{i=0}^{H-2} P(s_{i+1} \\mid s_i, a_i)

(the last transition, to :math:`s_H`, sums out because no reward depends on it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_distribution,
    check_gamma,
    check_positive_int,
    check_random_state,
    check_shape,
    read_only_copy,
)
from rlnotes.pg.policies import _check_theta, softmax_policy

__all__ = [
    "Trajectories",
    "enumerate_trajectories",
    "finite_horizon_objective",
    "sample_trajectories",
]

IntArray = NDArray[np.int64]

_INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass(frozen=True, eq=False)
class Trajectories:
    """A batch of N trajectories of horizon H, stored time-major.

    Parameters
    ----------
    states : int array, shape (H, N)
        ``states[t, n]`` is :math:`s_t` of trajectory ``n``.
    actions : int array, shape (H, N)
        ``actions[t, n]`` is :math:`a_t` of trajectory ``n``.
    rewards : float array, shape (H, N)
        ``rewards[t, n]`` is :math:`r_t = R[s_t, a_t]` of trajectory ``n``.
    prob : float array, shape (N,), or None
        The exact probability :math:`p(\\tau_n)` of each trajectory when the batch is an
        enumeration (then it sums to 1); ``None`` for sampled trajectories.

    The arrays are validated, copied and made read-only. Book: eq-sf-trajectory.
    """

    states: IntArray
    actions: IntArray
    rewards: FloatArray
    prob: FloatArray | None = None

    def __post_init__(self) -> None:
        states = np.asarray(self.states)
        actions = np.asarray(self.actions)
        for name, arr in (("states", states), ("actions", actions)):
            if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
                raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
            if arr.ndim != 2:
                raise ValueError(f"{name} must have shape (H, N), got shape {arr.shape}")
            if arr.size:
                lo, hi = int(arr.min()), int(arr.max())  # Python ints: uint64 cannot wrap
                if lo < 0 or hi > _INT64_MAX:
                    raise ValueError(f"{name} must lie in [0, 2**63), got values in [{lo}, {hi}]")
        if states.shape[0] == 0 or states.shape[1] == 0:
            raise ValueError(f"states must have H >= 1 and N >= 1, got shape {states.shape}")
        check_shape("actions", actions, states.shape)
        rewards = as_array("rewards", self.rewards, ndim=2)
        check_shape("rewards", rewards, states.shape)
        prob: FloatArray | None = None
        if self.prob is not None:
            prob = as_array("prob", self.prob, ndim=1)
            check_shape("prob", prob, (states.shape[1],))
            prob = check_distribution("prob", prob)
        object.__setattr__(self, "states", read_only_copy(states, np.int64))
        object.__setattr__(self, "actions", read_only_copy(actions, np.int64))
        object.__setattr__(self, "rewards", read_only_copy(rewards))
        object.__setattr__(self, "prob", None if prob is None else read_only_copy(prob))

    @property
    def horizon(self) -> int:
        """The horizon H (number of steps of every trajectory)."""
        return int(self.states.shape[0])

    @property
    def n_trajectories(self) -> int:
        """The number N of trajectories."""
        return int(self.states.shape[1])


def enumerate_trajectories(
    mdp: TabularMDP, pi: Any, horizon: int, *, max_trajectories: int = 200_000
) -> Trajectories:
    r"""Every trajectory of horizon H with positive probability, with its exact probability.

    .. math:: p(\tau) = \mu_0(s_0) \prod_{i=0}^{H-1} \pi(a_i \mid s_i)
              \prod_{i=0}^{H-2} P(s_{i+1} \mid s_i, a_i)

    Book: eq-sf-trajectory. Source: Sutton and Barto (2018), section 3.1; Williams (1992).

    Parameters
    ----------
    mdp : TabularMDP
        The MDP (its ``mu0``, ``P`` and ``R`` are used; its ``gamma`` is not).
    pi : array, shape (S, A)
        A stochastic policy; rows sum to 1.
    horizon : int
        H >= 1.
    max_trajectories : int
        Upper bound on the number of trajectories; exceeding it raises ``ValueError``.

    Returns
    -------
    Trajectories
        With ``prob`` set; ``prob`` sums to 1.
    """
    m = check_mdp(mdp).to_dense()  # enumeration-sized models: a dense P is the simple route
    p = m.check_policy(pi)
    H = check_positive_int("horizon", horizon)
    cap = check_positive_int("max_trajectories", max_trajectories)

    # Breadth-first expansion with back-pointers: level t keeps, for each partial trajectory
    # after its action a_t, the state s_t, the action and the index of its parent at level
    # t - 1. Reading the pointers back from the last level costs O(H N), not O(H^2 N).
    cur = np.flatnonzero(m.mu0 > 0)
    prob = m.mu0[cur]
    parent = np.arange(cur.size)  # the root level's "parents" are the initial states
    level_s: list[IntArray] = []
    level_a: list[IntArray] = []
    level_parent: list[IntArray] = []
    too_many = (
        f"max_trajectories={cap} is exceeded: horizon {H} gives more than {cap} "
        "trajectories; lower horizon or raise max_trajectories"
    )
    for t in range(H):
        # choose the action of every partial trajectory
        allowed = p[cur] > 0
        if int(allowed.sum()) > cap:
            raise ValueError(too_many)
        idx, act = np.nonzero(allowed)
        level_s.append(cur[idx])
        level_a.append(act.astype(np.int64))
        level_parent.append(parent[idx])
        prob = prob[idx] * p[cur[idx], act]
        if t == H - 1:
            break
        # then the next state
        trans = m.P[cur[idx], act]
        positive = trans > 0
        if int(positive.sum()) > cap:
            raise ValueError(too_many)
        j, nxt = np.nonzero(positive)
        prob = prob[j] * trans[j, nxt]
        parent = j  # index into this level
        cur = nxt
    n = prob.size
    states = np.empty((H, n), dtype=np.int64)
    actions = np.empty((H, n), dtype=np.int64)
    ptr = np.arange(n)
    for t in range(H - 1, -1, -1):
        states[t] = level_s[t][ptr]
        actions[t] = level_a[t][ptr]
        ptr = level_parent[t][ptr]
    rewards = m.R[states, actions]
    return Trajectories(states=states, actions=actions, rewards=rewards, prob=prob)


def _sample_rows(cdf: FloatArray, u: FloatArray) -> IntArray:
    """Inverse-CDF sampling: for each row k, the index i with cdf[k, i-1] <= u[k] < cdf[k, i]."""
    idx: IntArray = (cdf <= u[:, None]).sum(axis=1).astype(np.int64)
    return idx


def _cdf(probs: FloatArray) -> FloatArray:
    """Cumulative sums along the last axis, scaled so that the last entry is exactly 1."""
    c = np.cumsum(probs, axis=-1)
    c = c / c[..., -1:]
    c[..., -1] = 1.0
    return c


def sample_trajectories(
    mdp: TabularMDP,
    pi: Any,
    horizon: int,
    n_episodes: int,
    seed: int | np.random.Generator,
) -> Trajectories:
    r"""Sample N independent trajectories of horizon H from :math:`p(\tau)`.

    :math:`s_0 \sim \mu_0`, :math:`a_t \sim \pi(\cdot \mid s_t)`,
    :math:`s_{t+1} \sim P(\cdot \mid s_t, a_t)`, :math:`r_t = R[s_t, a_t]`.
    Book: eq-sf-trajectory. Source: Williams (1992).

    Parameters
    ----------
    mdp : TabularMDP
    pi : array, shape (S, A)
        A stochastic policy; rows sum to 1.
    horizon : int
        H >= 1.
    n_episodes : int
        N >= 1.
    seed : int or numpy Generator
        A seed in [0, 2**63) of ``numpy.random.default_rng``, or a Generator (used as is);
        the same seed gives the same batch.

    Returns
    -------
    Trajectories
        With ``prob=None``.
    """
    m = check_mdp(mdp).to_dense()  # enumeration-sized models: a dense P is the simple route
    p = m.check_policy(pi)
    H = check_positive_int("horizon", horizon)
    N = check_positive_int("n_episodes", n_episodes)
    rng = check_random_state("seed", seed)
    pi_cdf = _cdf(p)
    P_cdf = _cdf(m.P)
    mu_cdf = _cdf(m.mu0[None, :])[0]
    states = np.empty((H, N), dtype=np.int64)
    actions = np.empty((H, N), dtype=np.int64)
    s = _sample_rows(np.broadcast_to(mu_cdf, (N, m.n_states)), rng.random(N))
    for t in range(H):
        a = _sample_rows(pi_cdf[s], rng.random(N))
        states[t] = s
        actions[t] = a
        if t < H - 1:
            s = _sample_rows(P_cdf[s, a], rng.random(N))
    rewards = m.R[states, actions]
    return Trajectories(states=states, actions=actions, rewards=rewards, prob=None)


def finite_horizon_objective(
    mdp: TabularMDP, theta: Any, horizon: int, gamma: float | None = None
) -> Any:
    r"""The exact objective of the softmax policy over a finite horizon.

    .. math:: J(\theta) = \mathbb{E}_{\tau \sim p_\theta}\Big[\sum_{t=0}^{H-1} \gamma^t r_t\Big]
              = \sum_s \mu_0(s) V_0(s),

    by backward dynamic programming: :math:`V_H = 0`,
    :math:`Q_t = R + \gamma P V_{t+1}`, :math:`V_t(s) = \sum_a \pi_\theta(a \mid s) Q_t(s, a)`.
    Book: thm-sf-policy-gradient. Source: Sutton et al. (2000).

    Parameters
    ----------
    mdp : TabularMDP
    theta : array or torch.Tensor, shape (S, A)
        Logits of the softmax policy. A floating-point torch tensor gives a differentiable
        result, so that autograd returns :math:`\nabla_\theta J`.
    horizon : int
        H >= 1.
    gamma : float in [0, 1], optional
        The discount :math:`\gamma`; ``None`` means ``mdp.gamma``. With a finite horizon 1 is
        allowed.

    Returns
    -------
    float, or a 0-d torch.Tensor when ``theta`` is a tensor.
    """
    m = check_mdp(mdp).to_dense()  # enumeration-sized models: a dense P is the simple route
    H = check_positive_int("horizon", horizon)
    g = m.gamma if gamma is None else check_gamma(gamma, "gamma", allow_one=True)
    # A torch tensor can only exist once torch is imported, so torch is never loaded here.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(theta, torch.Tensor):
        if not theta.is_floating_point():
            raise TypeError(f"theta must be a floating-point tensor, got dtype {theta.dtype}")
        if tuple(theta.shape) != (m.n_states, m.n_actions):
            raise ValueError(
                f"theta must have shape {(m.n_states, m.n_actions)}, got {tuple(theta.shape)}"
            )
        if not bool(torch.isfinite(theta).all()):
            raise ValueError("theta must be finite, got NaN or inf")
        pi_t = torch.softmax(theta, dim=1)
        P_t = torch.as_tensor(np.array(m.P), dtype=theta.dtype, device=theta.device)
        R_t = torch.as_tensor(np.array(m.R), dtype=theta.dtype, device=theta.device)
        mu_t = torch.as_tensor(np.array(m.mu0), dtype=theta.dtype, device=theta.device)
        v_t = torch.zeros(m.n_states, dtype=theta.dtype, device=theta.device)
        for _ in range(H):
            q_t = R_t + g * torch.einsum("sap,p->sa", P_t, v_t)
            v_t = (pi_t * q_t).sum(dim=1)
        return (mu_t * v_t).sum()
    th = _check_theta(theta)
    check_shape("theta", th, (m.n_states, m.n_actions))
    pi = softmax_policy(th)
    v = np.zeros(m.n_states)
    for _ in range(H):
        q = m.R + g * (m.P @ v)
        v = (pi * q).sum(axis=1)
    return float(m.mu0 @ v)
