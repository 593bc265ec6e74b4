"""Linear temporal-difference learning: semi-gradient TD(0), residual gradients, Baird's star.

A linear value function is :math:`v_w(s) = \\phi(s)^\\top w` with a feature matrix
``phi[s, k]``. The expected-update forms average one update over a state weighting ``d[s]``
and the policy's Markov chain ``P_pi[s, s']`` with expected rewards ``r_pi[s]``, so that
convergence or divergence can be read off a small matrix instead of sampled runs.

References: Sutton and Barto (2018), ch. 9 and 11; Baird (1995); Tsitsiklis and Van Roy (1997).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnotes.core.mdp import TabularMDP
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
    "BairdCounterexample",
    "baird_counterexample",
    "expected_residual_gradient",
    "expected_semi_gradient_td",
    "residual_gradient_update",
    "semi_gradient_td0_update",
    "td_fixed_point",
    "td_lambda_linear",
    "td_matrices",
]


def _check_chain(
    phi: Any, P_pi: Any, r_pi: Any, d: Any, gamma: Any
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, float]:
    Phi = as_array("phi", phi, ndim=2)
    n_states = Phi.shape[0]
    if n_states == 0 or Phi.shape[1] == 0:
        raise ValueError(f"phi must have at least one state and one feature, got {Phi.shape}")
    P = as_array("P_pi", P_pi, ndim=2)
    check_shape("P_pi", P, (n_states, n_states))
    check_distribution("P_pi", P, axis=1)
    r = as_array("r_pi", r_pi, ndim=1)
    check_shape("r_pi", r, (n_states,))
    dd = as_array("d", d, ndim=1)
    check_shape("d", dd, (n_states,))
    check_distribution("d", dd)
    return Phi, P, r, dd, check_gamma(gamma)


def _check_steps(alpha: Any, n_steps: Any) -> tuple[float, int]:
    return check_positive_real("alpha", alpha), check_positive_int("n_steps", n_steps, minimum=0)


def td_matrices(
    phi: Any, P_pi: Any, r_pi: Any, d: Any, gamma: float, *, lam: float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """The matrices of the expected linear TD(lambda) update.

    The expected semi-gradient TD(0) step is :math:`w \\leftarrow w + \\alpha (A w + b)` with

    .. math:: A = \\Phi^\\top D (\\gamma P_\\pi - I) \\Phi, \\qquad b = \\Phi^\\top D r_\\pi,

    where :math:`D = \\operatorname{diag}(d)`. For :math:`\\lambda > 0` (the average of the
    accumulating-trace update) both gain the factor :math:`(I - \\gamma\\lambda P_\\pi)^{-1}`:
    :math:`A = \\Phi^\\top D (I - \\gamma\\lambda P_\\pi)^{-1} (\\gamma P_\\pi - I) \\Phi`,
    :math:`b = \\Phi^\\top D (I - \\gamma\\lambda P_\\pi)^{-1} r_\\pi`, so that
    :math:`A w + b = \\Phi^\\top D (T^{(\\lambda)} \\Phi w - \\Phi w)`.
    Book: eq-bell-td-expected, eq-bell-td-lambda-fixed. Source: Tsitsiklis and Van Roy
    (1997); Sutton and Barto (2018), sec. 9.4, 11.2 and 12.2.

    Parameters
    ----------
    phi : array, shape (S, K)
        Features, row ``phi[s]`` for state ``s``.
    P_pi : array, shape (S, S)
        Markov chain of the target policy.
    r_pi : array, shape (S,)
        Expected reward of the target policy.
    d : array, shape (S,)
        State weighting (the distribution the updates are sampled from).
    gamma : float
        Discount factor in [0, 1).
    lam : float, optional
        Trace parameter :math:`\\lambda \\in [0, 1]` (default 0, TD(0)).

    Returns
    -------
    A : array, shape (K, K)
    b : array, shape (K,)
    """
    Phi, P, r, dd, g = _check_chain(phi, P_pi, r_pi, d, gamma)
    lm = check_real("lam", lam, low=0.0, high=1.0)
    DPhi = dd[:, None] * Phi
    G = g * (P @ Phi) - Phi
    if lm > 0.0:
        M = np.eye(P.shape[0]) - g * lm * P
        G = np.asarray(np.linalg.solve(M, G), dtype=np.float64)
        r = np.asarray(np.linalg.solve(M, r), dtype=np.float64)
    return DPhi.T @ G, DPhi.T @ r


def td_fixed_point(
    phi: Any, P_pi: Any, r_pi: Any, d: Any, gamma: float, *, lam: float = 0.0
) -> FloatArray:
    """The TD(lambda) fixed point: the solution of :math:`A w + b = 0`.

    With :math:`A, b` from :func:`td_matrices`, this is the solution of the projected Bellman
    equation :math:`\\Phi w = \\Pi_D T^{(\\lambda)} \\Phi w`, where :math:`T^{(\\lambda)} V =
    (I - \\gamma\\lambda P_\\pi)^{-1}(r_\\pi + \\gamma(1-\\lambda) P_\\pi V)`
    (:math:`T^{(0)} = T^\\pi`); it depends on :math:`\\lambda` unless :math:`v_\\pi` is
    representable. Book: eq-bell-td-fixed, eq-bell-td-lambda-fixed. Source: Tsitsiklis and
    Van Roy (1997).

    Parameters
    ----------
    phi, P_pi, r_pi, d, gamma, lam
        As in :func:`td_matrices`.

    Returns
    -------
    w : array, shape (K,)

    Raises
    ------
    ValueError
        If ``A`` is singular (e.g. ``phi`` lacks full column rank on the support of ``d``).
    """
    A, b = td_matrices(phi, P_pi, r_pi, d, gamma, lam=lam)
    if np.linalg.matrix_rank(A) < A.shape[0]:
        raise ValueError("phi gives a singular TD matrix A; the TD fixed point is not unique")
    return np.asarray(np.linalg.solve(A, -b), dtype=np.float64)


def expected_semi_gradient_td(
    phi: Any,
    P_pi: Any,
    r_pi: Any,
    d: Any,
    gamma: float,
    w0: Any,
    alpha: float,
    n_steps: int,
) -> FloatArray:
    """Iterate the expected semi-gradient TD(0) update.

    .. math:: w_{k+1} = w_k + \\alpha \\sum_s d(s) \\big(r_\\pi(s) + \\gamma
        \\textstyle\\sum_{s'} P_\\pi(s, s') \\phi(s')^\\top w_k - \\phi(s)^\\top w_k\\big) \\phi(s)
        = w_k + \\alpha (A w_k + b).

    Off-policy, ``d`` is the behaviour policy's state distribution and ``P_pi``, ``r_pi``
    belong to the target policy (the importance ratio has been averaged out).
    Book: eq-bell-td-expected. Source: Sutton and Barto (2018), sec. 11.2; Baird (1995).

    Parameters
    ----------
    phi, P_pi, r_pi, d, gamma
        As in :func:`td_matrices`.
    w0 : array, shape (K,)
        Initial weights.
    alpha : float
        Positive step size.
    n_steps : int
        Number of updates (0 returns only ``w0``).

    Returns
    -------
    W : array, shape (n_steps + 1, K)
        The weights after each update, time-major, ``W[0] = w0``.

    Raises
    ------
    OverflowError
        If the weights overflow float64 (a diverging run).
    """
    A, b = td_matrices(phi, P_pi, r_pi, d, gamma)
    return _iterate_affine(A, b, w0, alpha, n_steps)


def expected_residual_gradient(
    phi: Any,
    P_pi: Any,
    r_pi: Any,
    d: Any,
    gamma: float,
    w0: Any,
    alpha: float,
    n_steps: int,
) -> FloatArray:
    """Gradient descent on the mean squared Bellman error.

    With :math:`\\bar\\delta_w = r_\\pi + \\gamma P_\\pi \\Phi w - \\Phi w` and
    :math:`\\overline{BE}(w) = \\tfrac12 \\bar\\delta_w^\\top D \\bar\\delta_w`,

    .. math:: w_{k+1} = w_k - \\alpha \\nabla \\overline{BE}(w_k)
        = w_k - \\alpha (\\gamma P_\\pi \\Phi - \\Phi)^\\top D \\bar\\delta_{w_k}.

    This is the expected residual-gradient update with two independent next states.
    Book: eq-bell-residual-gradient. Source: Baird (1995); Sutton and Barto (2018), sec. 11.5.

    Parameters
    ----------
    phi, P_pi, r_pi, d, gamma, w0, alpha, n_steps
        As in :func:`expected_semi_gradient_td`.

    Returns
    -------
    W : array, shape (n_steps + 1, K)

    Raises
    ------
    OverflowError
        If the weights overflow float64 (a diverging run).
    """
    Phi, P, r, dd, g = _check_chain(phi, P_pi, r_pi, d, gamma)
    G = g * (P @ Phi) - Phi
    GD = G.T * dd[None, :]
    # delta = G w + r, so -grad = -(G^T D G w + G^T D r)
    return _iterate_affine(-GD @ G, -GD @ r, w0, alpha, n_steps)


def _iterate_affine(
    A: FloatArray, b: FloatArray, w0: Any, alpha: float, n_steps: int
) -> FloatArray:
    w = as_array("w0", w0, ndim=1)
    check_shape("w0", w, (A.shape[0],))
    a, n = _check_steps(alpha, n_steps)
    W = np.empty((n + 1, w.size))
    W[0] = w
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(n):
            W[k + 1] = W[k] + a * (A @ W[k] + b)
            if not np.isfinite(W[k + 1]).all():
                raise OverflowError(
                    f"the weights overflowed float64 after {k + 1} updates (a diverging run)"
                )
    return W


def td_lambda_linear(
    phi: Any,
    states: Any,
    rewards: Any,
    gamma: float,
    lam: float,
    alpha: Any,
    *,
    w0: Any = None,
) -> FloatArray:
    """Sampled linear TD(lambda) with accumulating traces along one trajectory.

    For :math:`t = 0, \\dots, T-1`, with :math:`z_{-1} = 0`,

    .. math:: z_t = \\gamma\\lambda z_{t-1} + \\phi(s_t), \\qquad
        \\delta_t = r_t + \\gamma \\phi(s_{t+1})^\\top w_t - \\phi(s_t)^\\top w_t, \\qquad
        w_{t+1} = w_t + \\alpha_t \\delta_t z_t .

    The trajectory is one stream of a continuing Markov chain (no episode ends). Along an
    irreducible aperiodic chain with Robbins--Monro steps, :math:`w_t` converges to the
    TD(lambda) fixed point of :func:`td_fixed_point` with the chain's stationary distribution.
    Book: eq-bell-td-lambda-fixed. Source: Sutton (1988); Tsitsiklis and Van Roy (1997).

    Parameters
    ----------
    phi : array, shape (S, K)
        Features.
    states : array of int, shape (T + 1,)
        Visited states :math:`s_0, \\dots, s_T`.
    rewards : array, shape (T,)
        Rewards :math:`r_0, \\dots, r_{T-1}`.
    gamma : float
        Discount factor in [0, 1).
    lam : float
        Trace parameter in [0, 1].
    alpha : float or array, shape (T,)
        Positive step size, constant or one per step.
    w0 : array, shape (K,), optional
        Initial weights (default zeros).

    Returns
    -------
    W : array, shape (T + 1, K)
        Time-major, ``W[0] = w0``.

    Raises
    ------
    OverflowError
        If the weights overflow float64 (a diverging run).
    """
    Phi = as_array("phi", phi, ndim=2)
    S, K = Phi.shape
    if S == 0 or K == 0:
        raise ValueError(f"phi must have at least one state and one feature, got {Phi.shape}")
    st = np.asarray(states)
    if st.dtype.kind not in "iu":
        raise TypeError(f"states must be an integer array, got dtype {st.dtype}")
    if st.ndim != 1 or st.size < 1:
        raise ValueError(f"states must have shape (T + 1,) with T >= 0, got {st.shape}")
    if st.min() < 0 or st.max() >= S:
        raise ValueError(f"states must lie in [0, {S}), got values in [{st.min()}, {st.max()}]")
    T = st.size - 1
    rw = as_array("rewards", rewards, ndim=1)
    check_shape("rewards", rw, (T,))
    g = check_gamma(gamma)
    lm = check_real("lam", lam, low=0.0, high=1.0)
    al = as_array("alpha", alpha, ndim=(0, 1))
    if al.ndim == 1:
        check_shape("alpha", al, (T,))
    if (al <= 0).any():
        raise ValueError("alpha must be > 0 at every step")
    steps = np.broadcast_to(al, (T,))
    w = np.zeros(K) if w0 is None else as_array("w0", w0, ndim=1)
    check_shape("w0", w, (K,))
    W = np.empty((T + 1, K))
    W[0] = w
    V = Phi @ w  # values of all states, kept in step with w
    z = np.zeros(K)
    gl = g * lm
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            s, s_next = st[t], st[t + 1]
            z = gl * z + Phi[s]
            delta = rw[t] + g * V[s_next] - V[s]
            dw = (steps[t] * delta) * z
            W[t + 1] = W[t] + dw
            V = V + Phi @ dw
    if not np.isfinite(W).all():
        bad = int(np.argmin(np.isfinite(W).all(axis=1)))
        raise OverflowError(f"the weights overflowed float64 after {bad} updates (a diverging run)")
    return W


def _check_transition(
    w: Any, x: Any, r: Any, x_next: Any, gamma: Any, alpha: Any, rho: Any
) -> tuple[FloatArray, FloatArray, float, FloatArray, float, float, float]:
    ww = as_array("w", w, ndim=1)
    xx = as_array("x", x, ndim=1)
    check_shape("x", xx, ww.shape)
    xn = as_array("x_next", x_next, ndim=1)
    check_shape("x_next", xn, ww.shape)
    rr = check_real("r", r)
    g = check_gamma(gamma)
    a, _ = _check_steps(alpha, 0)
    rh = check_real("rho", rho)
    if rh < 0:
        raise ValueError(f"rho must be a non-negative importance ratio, got {rh}")
    return ww, xx, rr, xn, g, a, rh


def semi_gradient_td0_update(
    w: Any,
    x: Any,
    r: float,
    x_next: Any,
    gamma: float,
    alpha: float,
    *,
    rho: float = 1.0,
    terminated: bool = False,
) -> FloatArray:
    """One sampled semi-gradient TD(0) step for a linear value function.

    .. math:: \\delta = r + \\gamma \\phi(s')^\\top w - \\phi(s)^\\top w, \\qquad
        w \\leftarrow w + \\alpha \\rho \\delta \\phi(s).

    The target :math:`r + \\gamma \\phi(s')^\\top w` is treated as a constant (hence
    *semi*-gradient). A terminated step does not bootstrap. Book: eq-bell-semi-gradient.
    Source: Sutton and Barto (2018), eq. 9.7 and 11.2.

    Parameters
    ----------
    w : array, shape (K,)
        Current weights.
    x, x_next : array, shape (K,)
        Features of the state and of the next state.
    r : float
        Reward.
    gamma : float
        Discount factor in [0, 1).
    alpha : float
        Positive step size.
    rho : float, optional
        Importance ratio :math:`\\pi(a|s)/\\mu(a|s)` (1 on-policy).
    terminated : bool, optional
        If true the next state's value is taken as zero.

    Returns
    -------
    w_new : array, shape (K,)
    """
    ww, xx, rr, xn, g, a, rh = _check_transition(w, x, r, x_next, gamma, alpha, rho)
    boot = 0.0 if check_flag("terminated", terminated) else g * float(xn @ ww)
    delta = rr + boot - float(xx @ ww)
    return ww + a * rh * delta * xx


def residual_gradient_update(
    w: Any,
    x: Any,
    r: float,
    x_next: Any,
    gamma: float,
    alpha: float,
    *,
    x_next_independent: Any = None,
    rho: float = 1.0,
    terminated: bool = False,
) -> FloatArray:
    """One sampled residual-gradient step on :math:`\\tfrac12 \\delta^2`.

    .. math:: w \\leftarrow w - \\alpha \\rho \\delta (\\gamma \\phi(s'_2) - \\phi(s)),
        \\qquad \\delta = r + \\gamma \\phi(s'_1)^\\top w - \\phi(s)^\\top w.

    With ``x_next_independent=None`` the same next state is used twice
    (:math:`s'_2 = s'_1`): the update is then the gradient of the *sampled* squared error,
    whose expectation is not the gradient of the squared *expected* error when transitions
    are stochastic (the double-sampling problem). Passing the features of a second,
    independently sampled next state makes the update unbiased. A terminated step uses no
    next state. Book: eq-bell-residual-gradient. Source: Baird (1995); Sutton and Barto
    (2018), sec. 11.5.

    Parameters
    ----------
    w, x, r, x_next, gamma, alpha, rho, terminated
        As in :func:`semi_gradient_td0_update`.
    x_next_independent : array, shape (K,), optional
        Features of a second next state drawn independently from the same ``(s, a)``.

    Returns
    -------
    w_new : array, shape (K,)
    """
    ww, xx, rr, xn, g, a, rh = _check_transition(w, x, r, x_next, gamma, alpha, rho)
    if x_next_independent is None:
        x2 = xn
    else:
        x2 = as_array("x_next_independent", x_next_independent, ndim=1)
        check_shape("x_next_independent", x2, ww.shape)
    if check_flag("terminated", terminated):
        delta = rr - float(xx @ ww)
        grad_delta = -xx
    else:
        delta = rr + g * float(xn @ ww) - float(xx @ ww)
        grad_delta = g * x2 - xx
    return ww - a * rh * delta * grad_delta


@dataclass(frozen=True, eq=False)
class BairdCounterexample:
    """Baird's star problem as data (built by :func:`baird_counterexample`).

    Book: eq-bell-baird. Source: Baird (1995); Sutton and Barto (2018), example 11.1.

    Parameters
    ----------
    mdp : TabularMDP
        Seven states, two actions (0 = dashed, 1 = solid), zero rewards, uniform ``mu0``.
    phi : array, shape (7, 8)
        Features: :math:`v(i) = 2 w_i + w_8` for the upper states :math:`i = 1..6`,
        :math:`v(7) = w_7 + 2 w_8` (1-based indices).
    behaviour : array, shape (7, 2)
        Dashed with probability 6/7, solid with 1/7.
    target : array, shape (7, 2)
        Always solid.
    w0 : array, shape (8,)
        The usual start :math:`(1, 1, 1, 1, 1, 1, 10, 1)`.
    """

    mdp: TabularMDP
    phi: FloatArray
    behaviour: FloatArray
    target: FloatArray
    w0: FloatArray


def baird_counterexample(gamma: float = 0.99) -> BairdCounterexample:
    """Baird's counterexample to off-policy linear TD (the "star" problem).

    The dashed action moves to one of the six upper states uniformly, the solid action to the
    seventh state; every reward is zero, so the true values are zero and representable
    (:math:`w = 0`). Under the behaviour policy the state distribution is uniform; the target
    policy always takes the solid action. For ``gamma > 15/17`` (about 0.882) the expected
    off-policy semi-gradient TD(0) matrix has an eigenvalue with positive real part, so the
    update diverges from almost every start for every positive step size; for ``gamma < 15/17``
    it converges for small enough steps. Book: eq-bell-baird. Source: Baird (1995); the
    seven-state version of Sutton and Barto (2018), example 11.1.

    Parameters
    ----------
    gamma : float, optional
        Discount factor in [0, 1) (0.99 in the source).

    Returns
    -------
    BairdCounterexample
    """
    g = check_gamma(gamma)
    S, A = 7, 2
    P = np.zeros((S, A, S))
    P[:, 0, :6] = 1.0 / 6.0
    P[:, 1, 6] = 1.0
    mdp = TabularMDP(P=P, R=np.zeros((S, A)), gamma=g)
    phi = np.zeros((S, 8))
    for i in range(6):
        phi[i, i] = 2.0
        phi[i, 7] = 1.0
    phi[6, 6] = 1.0
    phi[6, 7] = 2.0
    behaviour = np.tile([6.0 / 7.0, 1.0 / 7.0], (S, 1))
    target = np.tile([0.0, 1.0], (S, 1))
    w0 = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 1.0])
    for arr in (phi, behaviour, target, w0):
        arr.setflags(write=False)
    return BairdCounterexample(mdp=mdp, phi=phi, behaviour=behaviour, target=target, w0=w0)
