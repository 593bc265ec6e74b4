r"""Bellman operators and exact policy evaluation on a :class:`~rlnotes.core.mdp.TabularMDP`.

The operators act on action-value tables ``Q[s, a]``; a policy is ``pi[s, a]``. Everything is
vectorized over the model: one product of the ``(S A) x S`` matrix ``P`` with a vector per
application.

Policy evaluation solves :math:`(I - \gamma P_\pi) V = r_\pi` with a certified error bound.
Small models use a direct LU solve; large ones use GMRES (Saad and Schultz 1986), which only
multiplies vectors by :math:`P_\pi` and never factors :math:`I - \gamma P_\pi`. Its result is
accepted only when the bound of :func:`policy_evaluation` proves it accurate; otherwise the
direct solve is used.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, gmres

from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import FloatArray, check_positive_real

#: Models with at most this many states are evaluated by a direct dense solve.
DIRECT_SOLVE_MAX_STATES = 400

IntArray = NDArray[np.int64]


def expected_next(mdp: TabularMDP, v: FloatArray) -> FloatArray:
    """:math:`(P v)(s, a) = \\sum_{s'} P(s' \\mid s, a) v(s')` as an ``(S, A)`` array.

    Unchecked: for the algorithms of rlnotes, which validate their inputs first.
    """
    S, A = mdp.n_states, mdp.n_actions
    out: FloatArray = (mdp.P.reshape(S * A, S) @ v).reshape(S, A)
    return out


def lookahead(mdp: TabularMDP, v: FloatArray) -> FloatArray:
    """:math:`Q(s, a) = R(s, a) + \\gamma (P v)(s, a)` (unchecked)."""
    out: FloatArray = mdp.R + mdp.gamma * expected_next(mdp, v)
    return out


def bellman_operator(mdp: TabularMDP, Q: Any, pi: Any) -> FloatArray:
    r"""The Bellman expectation operator :math:`T^\pi` applied to ``Q``.

    .. math::

        (T^\pi Q)(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)
        \sum_{a'} \pi(a' \mid s') \, Q(s', a').

    The next state :math:`s'` is averaged over :math:`P(\cdot \mid s, a)`; :math:`Q^\pi` is the
    unique fixed point. Book: eq-bellman-expectation-op. Source: Bellman (1957);
    Puterman (1994), sec. 6.1.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    Q : array, shape (S, A)
        Action values.
    pi : array, shape (S, A)
        Policy ``pi[s, a]``; rows sum to 1.

    Returns
    -------
    array, shape (S, A)
    """
    mdp = check_mdp(mdp)
    Qa = mdp.check_q(Q)
    pia = mdp.check_policy(pi)
    return lookahead(mdp, np.einsum("sa,sa->s", pia, Qa))


def bellman_optimality_operator(mdp: TabularMDP, Q: Any) -> FloatArray:
    r"""The Bellman optimality operator :math:`T^*` applied to ``Q``.

    .. math::

        (T^* Q)(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a) \max_{a'} Q(s', a').

    A :math:`\gamma`-contraction in the sup norm whose fixed point is :math:`Q^*`.
    Book: eq-bellman-optimality-op. Source: Bellman (1957); Puterman (1994), sec. 6.2.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    Q : array, shape (S, A)
        Action values.

    Returns
    -------
    array, shape (S, A)
    """
    mdp = check_mdp(mdp)
    Qa = mdp.check_q(Q)
    return lookahead(mdp, Qa.max(axis=1))


def residual_bound(P_pi: FloatArray, r_pi: FloatArray, gamma: float, V: FloatArray) -> float:
    r"""The certificate :math:`\|T^\pi V - V\|_\infty / (1 - \gamma)`.

    It bounds :math:`\|V - V^\pi\|_\infty` from above.
    """
    res = r_pi + gamma * (P_pi @ V) - V
    return float(np.max(np.abs(res))) / (1.0 - gamma)


def solve_policy_values(
    P_pi: FloatArray,
    r_pi: FloatArray,
    gamma: float,
    tol: float,
    V0: FloatArray | None = None,
) -> tuple[FloatArray, float, str]:
    r"""Solve :math:`(I - \gamma P_\pi) V = r_\pi` to a certified sup-norm error ``tol``.

    Returns ``(V, bound, method)`` where ``bound`` is the certificate of ``residual_bound``
    and ``method`` is ``"exact"`` (gamma = 0), ``"gmres"`` or ``"direct"``.
    """
    S = r_pi.shape[0]
    if gamma == 0.0:
        return r_pi.copy(), 0.0, "exact"
    if S > DIRECT_SOLVE_MAX_STATES:
        V_it = _gmres_values(P_pi, r_pi, gamma, tol, V0)
        if V_it is not None:
            bound = residual_bound(P_pi, r_pi, gamma, V_it)
            if bound <= tol:
                return V_it, bound, "gmres"
    M = np.eye(S) - gamma * P_pi
    V: FloatArray = np.asarray(np.linalg.solve(M, r_pi), dtype=np.float64)
    bound = residual_bound(P_pi, r_pi, gamma, V)
    for _ in range(2):  # iterative refinement against rounding, rarely needed
        if bound <= tol:
            break
        V = V + np.asarray(np.linalg.solve(M, r_pi + gamma * (P_pi @ V) - V), dtype=np.float64)
        bound = residual_bound(P_pi, r_pi, gamma, V)
    if bound > tol:
        warnings.warn(
            f"tol={tol:.3g} is below the floating-point floor of this model; "
            f"the certified error bound is {bound:.3g}",
            RuntimeWarning,
            stacklevel=3,
        )
    return V, bound, "direct"


def _gmres_values(
    P_pi: FloatArray,
    r_pi: FloatArray,
    gamma: float,
    tol: float,
    V0: FloatArray | None,
) -> FloatArray | None:
    S = r_pi.shape[0]

    def matvec(v: FloatArray) -> FloatArray:
        x = np.ravel(v)
        out: FloatArray = x - gamma * (P_pi @ x)
        return out

    op = LinearOperator((S, S), matvec=matvec, dtype=np.float64)
    # ||res||_inf <= ||res||_2, so a 2-norm residual below tol (1 - gamma) / 2 certifies tol / 2.
    # A dense LU solve typically takes as long as about S / 17 products with P_pi (BLAS-3
    # against memory-bound BLAS-2), so GMRES gives up after about S / 30 products.
    budget = max(30, S // 30)
    restart = 30
    x, info = gmres(
        op,
        r_pi,
        x0=V0,
        rtol=0.0,
        atol=0.5 * tol * (1.0 - gamma),
        restart=restart,
        maxiter=max(1, budget // restart),
    )
    if info < 0 or not np.all(np.isfinite(x)):
        return None
    out: FloatArray = np.asarray(x, dtype=np.float64)
    return out


def policy_evaluation(
    mdp: TabularMDP, pi: Any, *, tol: float = 1e-10
) -> tuple[FloatArray, FloatArray]:
    r"""Exact values :math:`V^\pi` and :math:`Q^\pi` of a policy.

    .. math::

        V^\pi = (I - \gamma P_\pi)^{-1} r_\pi, \qquad Q^\pi = R + \gamma P V^\pi,

    with :math:`P_\pi(s, s') = \sum_a \pi(a \mid s) P(s' \mid s, a)` and
    :math:`r_\pi(s) = \sum_a \pi(a \mid s) R(s, a)`. The returned ``V`` satisfies the certified
    bound

    .. math::

        \|V - V^\pi\|_\infty \le \frac{\|T^\pi V - V\|_\infty}{1 - \gamma} \le \mathrm{tol},

    which holds because :math:`(I - \gamma P_\pi)(V - V^\pi) = V - T^\pi V` and
    :math:`\|(I - \gamma P_\pi)^{-1}\|_\infty = 1/(1 - \gamma)`; then
    :math:`\|Q - Q^\pi\|_\infty \le \gamma\,\mathrm{tol}`. Models with more than
    ``DIRECT_SOLVE_MAX_STATES`` states are solved by GMRES (Saad and Schultz 1986), which only
    multiplies by :math:`P_\pi`; the result is checked against the bound and re-solved
    directly if the check fails. Smaller ones are solved directly. If rounding makes ``tol``
    unreachable even by the direct solve, a ``RuntimeWarning`` states the bound achieved.
    Book: eq-bell-qpi-fixed.
    Source: Puterman (1994), sec. 6.1.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    pi : array, shape (S, A)
        Policy ``pi[s, a]``; rows sum to 1.
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^\pi\|_\infty` (default 1e-10). The residual is
        itself computed in floating point; its rounding error, of the order of
        :math:`\epsilon_{\mathrm{mach}} \|V\|_\infty` per entry, is not included, so
        ``tol`` should stay well above :math:`10^{-15} \|V\|_\infty / (1 - \gamma)`.

    Returns
    -------
    V : array, shape (S,)
    Q : array, shape (S, A)
    """
    mdp = check_mdp(mdp)
    pia = mdp.check_policy(pi)
    t = check_positive_real("tol", tol)
    P_pi, r_pi = policy_model(mdp, pia)
    V, _, _ = solve_policy_values(P_pi, r_pi, mdp.gamma, t)
    return V, lookahead(mdp, V)
