r"""Linear action-value learning with a max: Q-learning and SARSA under function approximation.

A linear action value is :math:`Q_w(s, a) = \phi(s, a)^\top w` with features ``phi[s, a, k]``.
Q-learning bootstraps from :math:`\max_{a'} Q_w(s', a')`, SARSA from the next action of the
policy that also generates the data. The expected-update forms average one update over a
distribution ``d[s, a]`` of sampled pairs and over the model's transitions, so divergence or
chattering can be read off a deterministic recursion instead of sampled runs.

References: Sutton and Barto (2018), sec. 10.1 and 11.1; Gordon (2000); Melo, Meyn and
Ribeiro (2008).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlnotes.core.markov import stationary_distribution
from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_distribution,
    check_flag,
    check_gamma,
    check_positive_int,
    check_positive_real,
    check_real,
    check_shape,
)

__all__ = [
    "epsilon_greedy_policy",
    "expected_linear_q_learning",
    "expected_linear_sarsa",
    "linear_q_learning_field",
    "linear_q_learning_update",
    "linear_q_td_error",
    "q_loss_directional_derivative",
]


def _dense_model(mdp: TabularMDP) -> tuple[FloatArray, FloatArray, float]:
    S, A = mdp.n_states, mdp.n_actions
    P = mdp.P
    if hasattr(P, "toarray"):  # a sparse (S*A, S) model
        P = P.toarray()
    return (
        np.asarray(P, dtype=np.float64).reshape(S, A, S),
        np.asarray(mdp.R, dtype=np.float64).reshape(S, A),
        float(mdp.gamma),
    )


def _check_features(phi: Any, mdp: TabularMDP) -> FloatArray:
    Phi = as_array("phi", phi, ndim=3)
    S, A = mdp.n_states, mdp.n_actions
    if Phi.shape[:2] != (S, A) or Phi.shape[2] == 0:
        raise ValueError(
            f"phi must have shape ({S}, {A}, K) with K >= 1 (the model's states and actions), "
            f"got {Phi.shape}"
        )
    return Phi


def _check_weights(name: str, w: Any, k: int) -> FloatArray:
    ww = as_array(name, w, ndim=1)
    check_shape(name, ww, (k,))
    return ww


def _check_transition(
    w: Any, x: Any, r: Any, X_next: Any, gamma: Any, terminated: Any
) -> tuple[FloatArray, FloatArray, float, FloatArray, float, bool]:
    ww = as_array("w", w, ndim=1)
    if ww.size == 0:
        raise ValueError("w must have at least one weight, got shape (0,)")
    xx = as_array("x", x, ndim=1)
    check_shape("x", xx, ww.shape)
    Xn = as_array("X_next", X_next, ndim=2)
    if Xn.shape[0] == 0 or Xn.shape[1] != ww.size:
        raise ValueError(
            f"X_next must have shape (A, {ww.size}) with A >= 1 (features of every next action), "
            f"got {Xn.shape}"
        )
    return ww, xx, check_real("r", r), Xn, check_gamma(gamma), check_flag("terminated", terminated)


def linear_q_td_error(
    w: Any, x: Any, r: float, X_next: Any, gamma: float, *, terminated: bool = False
) -> float:
    r"""The Q-learning TD error of one transition for a linear action value.

    .. math:: \delta = r + \gamma \max_{a'} \phi(s', a')^\top w - \phi(s, a)^\top w,

    without the bootstrap term when the step is terminated. Book: eq-bell-td-error.
    Source: Watkins and Dayan (1992); Sutton and Barto (2018), sec. 6.5.

    Parameters
    ----------
    w : array, shape (K,)
        Weights.
    x : array, shape (K,)
        Features :math:`\phi(s, a)` of the updated pair.
    r : float
        Reward.
    X_next : array, shape (A, K)
        Features :math:`\phi(s', a')` of every action at the next state.
    gamma : float
        Discount factor in [0, 1).
    terminated : bool, optional
        If true the next state's value is zero.

    Returns
    -------
    float
    """
    ww, xx, rr, Xn, g, term = _check_transition(w, x, r, X_next, gamma, terminated)
    boot = 0.0 if term else g * float(np.max(Xn @ ww))
    return rr + boot - float(xx @ ww)


def linear_q_learning_update(
    w: Any,
    x: Any,
    r: float,
    X_next: Any,
    gamma: float,
    alpha: float,
    *,
    terminated: bool = False,
) -> FloatArray:
    r"""One sampled semi-gradient Q-learning step for a linear action value.

    .. math:: w \leftarrow w + \alpha\, \delta\, \phi(s, a), \qquad
        \delta = r + \gamma \max_{a'} \phi(s', a')^\top w - \phi(s, a)^\top w .

    The target is held constant (a semi-gradient, as in DQN); it is not a gradient of
    :math:`\tfrac12\delta^2`, which has none at ties of the max.
    Book: eq-bell-linq-expected. Source: Sutton and Barto (2018), sec. 10.1 and 11.1.

    Parameters
    ----------
    w, x, r, X_next, gamma, terminated
        As in :func:`linear_q_td_error`.
    alpha : float
        Positive step size.

    Returns
    -------
    w_new : array, shape (K,)
    """
    ww, xx, rr, Xn, g, term = _check_transition(w, x, r, X_next, gamma, terminated)
    a = check_positive_real("alpha", alpha)
    boot = 0.0 if term else g * float(np.max(Xn @ ww))
    return ww + a * (rr + boot - float(xx @ ww)) * xx


def q_loss_directional_derivative(
    w: Any,
    x: Any,
    r: float,
    X_next: Any,
    gamma: float,
    u: Any,
    *,
    tol: float = 0.0,
) -> float:
    r"""The one-sided directional derivative of :math:`\ell(w) = \tfrac12\delta(w)^2`.

    With :math:`B(w)` the maximising next actions (values within ``tol`` of the max),

    .. math:: \ell'(w; u) = \lim_{t \downarrow 0} \frac{\ell(w + t u) - \ell(w)}{t}
        = \delta(w) \Big(\gamma \max_{b \in B(w)} \phi(s', b)^\top u - \phi(s, a)^\top u\Big).

    :math:`\ell` is differentiable at :math:`w` exactly when this is linear in :math:`u`, that
    is when :math:`\delta(w) = 0`, :math:`\gamma = 0` or the tied features agree; otherwise
    :math:`\ell'(w; u) \ne -\ell'(w; -u)` for some :math:`u`. Book: lem-bell-max-kink.
    Source: Clarke (1983) for directional derivatives of a max; Sutton and Barto (2018),
    sec. 11.5.

    Parameters
    ----------
    w, x, r, X_next, gamma
        As in :func:`linear_q_td_error` (a non-terminated step).
    u : array, shape (K,)
        Direction.
    tol : float, optional
        Actions whose value is within ``tol`` of the max count as tied (default exact ties).

    Returns
    -------
    float
    """
    ww, xx, rr, Xn, g, _ = _check_transition(w, x, r, X_next, gamma, False)
    uu = _check_weights("u", u, ww.size)
    t = check_real("tol", tol, low=0.0)
    values = Xn @ ww
    tied = values >= values.max() - t
    delta = rr + g * float(values.max()) - float(xx @ ww)
    return delta * (g * float(np.max((Xn @ uu)[tied])) - float(xx @ uu))


def linear_q_learning_field(mdp: TabularMDP, phi: Any, d: Any, w: Any) -> FloatArray:
    r"""The expected semi-gradient Q-learning update direction :math:`g(w)`.

    .. math:: g(w) = \sum_{s,a} d(s, a)\, \phi(s, a) \Big(R(s, a) + \gamma \sum_{s'}
        P(s' \mid s, a) \max_{a'} \phi(s', a')^\top w - \phi(s, a)^\top w\Big)
        = \Phi^\top D \big(T^* \Phi w - \Phi w\big).

    Book: eq-bell-linq-expected. Source: Melo, Meyn and Ribeiro (2008).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    phi : array, shape (S, A, K)
        Features of every pair.
    d : array, shape (S, A)
        Distribution the updated pairs are drawn from (sums to 1).
    w : array, shape (K,)
        Weights.

    Returns
    -------
    g : array, shape (K,)
    """
    m = check_mdp(mdp)
    Phi = _check_features(phi, m)
    dd = _check_pair_distribution(d, m)
    ww = _check_weights("w", w, Phi.shape[2])
    P, R, g = _dense_model(m)
    return _q_field(P, R, g, Phi, dd, ww)


def _check_pair_distribution(d: Any, mdp: TabularMDP) -> FloatArray:
    dd = as_array("d", d, ndim=2)
    check_shape("d", dd, (mdp.n_states, mdp.n_actions))
    check_distribution("d", dd.reshape(-1))
    return dd


def _q_field(
    P: FloatArray, R: FloatArray, g: float, Phi: FloatArray, d: FloatArray, w: FloatArray
) -> FloatArray:
    Q = Phi @ w  # (S, A)
    delta = R + g * (P @ Q.max(axis=1)) - Q
    return np.asarray(np.einsum("sa,sak->k", d * delta, Phi), dtype=np.float64)


def _iterate(step: Any, w0: FloatArray, alpha: float, n: int) -> FloatArray:
    W = np.empty((n + 1, w0.size))
    W[0] = w0
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(n):
            W[k + 1] = W[k] + alpha * step(W[k])
            if not np.isfinite(W[k + 1]).all():
                raise OverflowError(
                    f"the weights overflowed float64 after {k + 1} updates (a diverging run)"
                )
    return W


def expected_linear_q_learning(
    mdp: TabularMDP, phi: Any, d: Any, w0: Any, alpha: float, n_steps: int
) -> FloatArray:
    r"""Iterate the expected semi-gradient Q-learning update :math:`w_{k+1} = w_k + \alpha g(w_k)`.

    With :math:`g` of :func:`linear_q_learning_field`. With one-hot (tabular) features,
    :math:`d > 0` and :math:`\alpha \max d \le 1` this is a damped value iteration, each entry
    moving to :math:`(1 - \alpha d)\, Q + \alpha d\, T^* Q`, and converges to :math:`Q^*`; with
    fewer features it can diverge even when :math:`Q^*` is representable.
    Book: eq-bell-linq-diverge. Source: Sutton and Barto (2018), sec. 11.3; Melo, Meyn and
    Ribeiro (2008).

    Parameters
    ----------
    mdp, phi, d
        As in :func:`linear_q_learning_field`.
    w0 : array, shape (K,)
        Initial weights.
    alpha : float
        Positive step size.
    n_steps : int
        Number of updates (0 returns only ``w0``).

    Returns
    -------
    W : array, shape (n_steps + 1, K)
        Time-major, ``W[0] = w0``.

    Raises
    ------
    OverflowError
        If the weights overflow (a diverging run with too many steps).
    """
    m = check_mdp(mdp)
    Phi = _check_features(phi, m)
    dd = _check_pair_distribution(d, m)
    w = _check_weights("w0", w0, Phi.shape[2])
    a = check_positive_real("alpha", alpha)
    n = check_positive_int("n_steps", n_steps, minimum=0)
    P, R, g = _dense_model(m)
    return _iterate(lambda v: _q_field(P, R, g, Phi, dd, v), w, a, n)


def epsilon_greedy_policy(Q: Any, epsilon: float) -> FloatArray:
    r"""The :math:`\varepsilon`-greedy policy of an action-value table, ties split evenly.

    .. math:: \pi(a \mid s) = \frac{\varepsilon}{A} + (1 - \varepsilon)
        \frac{\mathbb{1}[a \in \arg\max_b Q(s, b)]}{|\arg\max_b Q(s, b)|}.

    Book: eq-bell-sarsa-chatter. Source: Sutton and Barto (2018), sec. 5.4.

    Parameters
    ----------
    Q : array, shape (S, A)
        Action values.
    epsilon : float
        Exploration probability in [0, 1].

    Returns
    -------
    pi : array, shape (S, A)
    """
    QQ = as_array("Q", Q, ndim=2)
    if QQ.shape[0] == 0 or QQ.shape[1] == 0:
        raise ValueError(f"Q must have at least one state and one action, got {QQ.shape}")
    eps = check_real("epsilon", epsilon, low=0.0, high=1.0)
    best = QQ == QQ.max(axis=1, keepdims=True)
    greedy = best / best.sum(axis=1, keepdims=True)
    return np.asarray(eps / QQ.shape[1] + (1.0 - eps) * greedy, dtype=np.float64)


def expected_linear_sarsa(
    mdp: TabularMDP, phi: Any, w0: Any, alpha: float, n_steps: int, *, epsilon: float
) -> FloatArray:
    r"""Iterate the expected on-policy SARSA(0) update with the :math:`\varepsilon`-greedy policy.

    At each step :math:`\pi_w` is :func:`epsilon_greedy_policy` of :math:`\Phi w`, :math:`d_w`
    the stationary state-action distribution of :math:`\pi_w`, and

    .. math:: w_{k+1} = w_k + \alpha \sum_{s,a} d_{w_k}(s, a)\, \phi(s, a) \Big(R(s, a)
        + \gamma \sum_{s', a'} P(s' \mid s, a)\, \pi_{w_k}(a' \mid s')\, \phi(s', a')^\top w_k
        - \phi(s, a)^\top w_k\Big).

    For a fixed policy this is on-policy linear TD, which converges; because the policy follows
    :math:`w`, the weights can chatter between regions of different greedy policies.
    Book: eq-bell-sarsa-chatter. Source: Gordon (2000); Sutton and Barto (2018), sec. 10.1.

    Parameters
    ----------
    mdp : TabularMDP
        The model; every :math:`\varepsilon`-greedy chain must have a unique stationary
        distribution.
    phi : array, shape (S, A, K)
        Features of every pair.
    w0 : array, shape (K,)
        Initial weights.
    alpha : float
        Positive step size.
    n_steps : int
        Number of updates.
    epsilon : float
        Exploration probability in [0, 1].

    Returns
    -------
    W : array, shape (n_steps + 1, K)
    """
    m = check_mdp(mdp)
    Phi = _check_features(phi, m)
    w = _check_weights("w0", w0, Phi.shape[2])
    a = check_positive_real("alpha", alpha)
    n = check_positive_int("n_steps", n_steps, minimum=0)
    eps = check_real("epsilon", epsilon, low=0.0, high=1.0)
    P, R, g = _dense_model(m)

    cache: dict[bytes, FloatArray] = {}  # the policy is piecewise constant in w

    def step(v: FloatArray) -> FloatArray:
        Q = Phi @ v
        pi = epsilon_greedy_policy(Q, eps)
        key = pi.tobytes()
        d = cache.get(key)
        if d is None:
            P_pi = np.einsum("sa,sat->st", pi, P)
            d = cache[key] = stationary_distribution(P_pi)[:, None] * pi
        delta = R + g * (P @ (pi * Q).sum(axis=1)) - Q
        return np.asarray(np.einsum("sa,sak->k", d * delta, Phi), dtype=np.float64)

    return _iterate(step, w, a, n)
