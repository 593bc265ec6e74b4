r"""The linear-programming view of a discounted MDP, solved by HiGHS on sparse constraints.

The primal LP maximises the return :math:`\sum_{s,a} \rho(s, a) R(s, a)`, which is linear in
the occupancy, over the flow polytope :math:`\mathcal{D}` of
:func:`~rlnotes.dp.occupancy.flow_constraints`; its dual minimises :math:`\mu_0^\top V` over the
values that dominate their own Bellman backup, :math:`V \ge R + \gamma P V` (Puterman 1994,
sec. 6.9). Both are handed to ``scipy.optimize.linprog(method="highs")`` (Huangfu and Hall
2018) with a sparse constraint matrix. Extra linear constraints on the occupancy give the
constrained MDPs of Altman (1999), whose optimal policies are in general stochastic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sps
from scipy.optimize import linprog

from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_distribution,
    check_flag,
    check_shape,
)
from rlnotes.dp.bellman import higham_gamma, lookahead
from rlnotes.dp.occupancy import flow_constraints, policy_and_reached

__all__ = [
    "ConstrainedLPResult",
    "LPResult",
    "solve_constrained_lp",
    "solve_lp",
]

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True, eq=False)
class LPResult:
    r"""The output of :func:`solve_lp`.

    Parameters
    ----------
    occupancy : array, shape (S, A)
        An optimal occupancy :math:`\rho^*` for the initial weights; HiGHS returns basic
        solutions (its interior-point method ends with a crossover), that is vertices of
        :math:`\mathcal{D}`, deterministic on the reached states.
    V : array, shape (S,)
        The LP's values (the dual solution). :math:`V = V^*` on every state the weights
        reach under an optimal policy; elsewhere the LP only asks :math:`V \ge V^*`, so pass
        weights with full support for :math:`V^*` everywhere. ``error_bound`` tells.
    Q : array, shape (S, A)
        :math:`R + \gamma P V`.
    policy : array, shape (S, A)
        :math:`\pi_\rho` (:func:`~rlnotes.dp.occupancy.policy_from_occupancy`) on the states
        the occupancy reaches, greedy with respect to ``Q`` on the others.
    objective : float
        :math:`\sum_{s,a} \rho(s, a) R(s, a)` of the solution found (primal) or
        :math:`w^\top V` (dual); at the optimum both equal :math:`w^\top V^*`.
    iterations : int
        HiGHS's iteration count.
    error_bound : float
        A certified bound on :math:`\|V - V^*\|_\infty` over all states: the Bellman residual
        :math:`\|T^* V - V\|_\infty / (1 - \gamma)` plus its rounding error.
    reached : array of bool, shape (S,)
        The states with :math:`\rho(s) > 0` (above :math:`10^{-9}\,\|\rho\|_1`, the default
        tolerance of :func:`~rlnotes.dp.occupancy.policy_from_occupancy`).

    The arrays are read-only. Book: thm-occ-lp.
    """

    occupancy: FloatArray
    V: FloatArray
    Q: FloatArray
    policy: FloatArray
    objective: float
    iterations: int
    error_bound: float
    reached: BoolArray


@dataclass(frozen=True, eq=False)
class ConstrainedLPResult:
    r"""The output of :func:`solve_constrained_lp`.

    Parameters
    ----------
    occupancy : array, shape (S, A)
        An optimal occupancy of the constrained problem.
    policy : array, shape (S, A)
        :math:`\pi_\rho`; uniform on unreached states (they affect neither the return nor the
        costs from :math:`\mu_0`).
    objective : float
        The optimal return :math:`\sum \rho R`.
    costs : array, shape (K,)
        The discounted costs :math:`\sum \rho\, c_k` of the solution.
    multipliers : array, shape (K,)
        Lagrange multipliers :math:`\lambda_k \ge 0` of the budget constraints: the optimum
        equals :math:`\max_\pi \eta_{R - \sum_k \lambda_k c_k}(\pi) + \sum_k \lambda_k B_k`.
    iterations : int
        HiGHS's iteration count.

    The arrays are read-only. Book: thm-occ-cmdp.
    """

    occupancy: FloatArray
    policy: FloatArray
    objective: float
    costs: FloatArray
    multipliers: FloatArray
    iterations: int


def _frozen(arr: Any, dtype: Any = np.float64) -> Any:
    out = np.array(arr, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _check_weights(mdp: TabularMDP, weights: Any) -> FloatArray:
    if weights is None:
        return np.array(mdp.mu0, dtype=np.float64)
    w = as_array("weights", weights, shape=(mdp.n_states,))
    return check_distribution("weights", w)


def _highs_failure(res: Any, what: str) -> RuntimeError:
    return RuntimeError(
        f"{what}: HiGHS did not return an optimal solution (scipy status {res.status}: "
        f"{res.message})"
    )


def optimality_bound(mdp: TabularMDP, V: FloatArray) -> float:
    r"""The certificate :math:`(\|T^* V - V\|_\infty + e) / (1 - \gamma(1 + \gamma_n))` on
    :math:`\|V - V^*\|_\infty`.

    :math:`T^*` is a :math:`\gamma`-contraction with fixed point :math:`V^*`, so
    :math:`\|V - V^*\|_\infty \le \|V - T^* V\|_\infty + \gamma \|V - V^*\|_\infty`
    (Puterman 1994, sec. 6.3). Rounding: with :math:`n` the most next states of a pair,
    :math:`u = 2^{-53}` and :math:`\gamma_n = nu / (1 - nu)`, each computed residual entry errs
    by at most :math:`e = \gamma_{n+3}(\|R\|_\infty + (1 + \gamma)\|V\|_\infty)` (Higham 2002,
    sec. 3.1), and the stored rows of :math:`P` sum to one within :math:`\gamma_n`.
    """
    res = float(np.max(np.abs(lookahead(mdp, V).max(axis=1) - V)))
    n = mdp.max_branching
    v_sup = float(np.max(np.abs(V)))
    e = higham_gamma(n + 3) * (float(np.max(np.abs(mdp.R))) + (1.0 + mdp.gamma) * v_sup)
    return (res + e) / (1.0 - mdp.gamma * (1.0 + higham_gamma(n)))


def solve_lp(mdp: TabularMDP, *, primal: bool = True, weights: Any = None) -> LPResult:
    r"""Solve a discounted MDP as a linear program (the primal over occupancies, or the dual).

    .. math::

        \max_{\rho \ge 0} \sum_{s,a} \rho(s, a) R(s, a) \ \text{ s.t. } \
        \sum_a \rho(s', a) - \gamma \sum_{s,a} P(s' \mid s, a) \rho(s, a) = w(s')
        \qquad\text{(primal)},

    .. math::

        \min_V \sum_s w(s) V(s) \ \text{ s.t. } \
        V(s) \ge R(s, a) + \gamma \sum_{s'} P(s' \mid s, a) V(s') \ \ \forall (s, a)
        \qquad\text{(dual)}.

    Both optima equal :math:`w^\top V^*`. The primal is solved for :math:`\rho`, and its
    equality multipliers give :math:`V`; the dual is solved for :math:`V`, and its
    inequality multipliers give :math:`\rho`. The constraint matrix is the sparse
    :math:`S \times SA` matrix of :func:`~rlnotes.dp.occupancy.flow_constraints`. The
    weights :math:`w` default to :math:`\mu_0`; :math:`V = V^*` is pinned only on the states
    that an optimal policy reaches from :math:`w`, so pass weights with full support (e.g.
    uniform) to get :math:`V^*` on every state. ``error_bound`` certifies the returned values
    over all states either way.
    Book: thm-occ-lp, eq-occ-lp-primal, eq-occ-lp-dual.
    Source: Puterman (1994), sec. 6.9; Huangfu and Hall (2018) for HiGHS.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    primal : bool, optional
        Solve the primal (default) or the dual LP.
    weights : array, shape (S,), optional
        The initial distribution :math:`w` of the LP (default ``mdp.mu0``).

    Returns
    -------
    LPResult

    Raises
    ------
    RuntimeError
        If HiGHS reports anything but an optimal solution (its status and message are in
        the error), or its solution is not a point of the flow polytope.
    """
    mdp = check_mdp(mdp)
    use_primal = check_flag("primal", primal)
    w = _check_weights(mdp, weights)
    S, A = mdp.n_states, mdp.n_actions
    M, _ = flow_constraints(mdp)
    r = np.asarray(mdp.R, dtype=np.float64).ravel()
    if use_primal:
        res = linprog(-r, A_eq=M, b_eq=w, bounds=(0, None), method="highs")
        if res.status != 0:
            raise _highs_failure(res, "solve_lp (primal)")
        rho = np.asarray(res.x, dtype=np.float64).reshape(S, A)
        V = -np.asarray(res.eqlin.marginals, dtype=np.float64)
        objective = -float(res.fun)
    else:
        res = linprog(w, A_ub=sps.csr_array(-M.T), b_ub=-r, bounds=(None, None), method="highs")
        if res.status != 0:
            raise _highs_failure(res, "solve_lp (dual)")
        V = np.asarray(res.x, dtype=np.float64)
        rho = -np.asarray(res.ineqlin.marginals, dtype=np.float64).reshape(S, A)
        objective = float(res.fun)
    return _lp_result(mdp, rho, V, w, objective, int(res.nit))


def _policy_on_reached(
    mdp: TabularMDP, rho: FloatArray, w: FloatArray, fallback: FloatArray | str
) -> tuple[FloatArray, BoolArray]:
    """pi_rho on the reached states, ``fallback`` elsewhere; rho must lie in D(w)."""
    try:
        return policy_and_reached(mdp, rho, w, 1e-9, fallback)
    except ValueError as err:
        raise RuntimeError(f"HiGHS returned an occupancy outside the flow polytope: {err}") from err


def _lp_result(
    mdp: TabularMDP,
    rho: FloatArray,
    V: FloatArray,
    w: FloatArray,
    objective: float,
    iterations: int,
) -> LPResult:
    Q = lookahead(mdp, V)
    greedy = np.zeros_like(Q)
    greedy[np.arange(mdp.n_states), np.argmax(Q, axis=1)] = 1.0
    pi, reached = _policy_on_reached(mdp, rho, w, greedy)
    return LPResult(
        occupancy=_frozen(rho),
        V=_frozen(V),
        Q=_frozen(Q),
        policy=_frozen(pi),
        objective=objective,
        iterations=iterations,
        error_bound=optimality_bound(mdp, V),
        reached=_frozen(reached, dtype=bool),
    )


def solve_constrained_lp(mdp: TabularMDP, costs: Any, budgets: Any) -> ConstrainedLPResult:
    r"""A constrained MDP: the best return subject to budgets on discounted costs.

    .. math::

        \max_{\rho \in \mathcal{D}} \sum_{s,a} \rho(s, a) R(s, a) \ \text{ s.t. } \
        \sum_{s,a} \rho(s, a)\, c_k(s, a) \le B_k, \quad k = 1, \dots, K,

    where :math:`\sum \rho\, c_k = \mathbb{E}[\sum_t \gamma^t c_k(s_t, a_t)]` is the expected
    discounted cost. By :math:`\rho \leftrightarrow \pi_\rho` this is the best stationary
    policy under the budgets, and stationary policies suffice (Altman 1999, ch. 3). It is a
    linear program, so HiGHS solves it at a vertex: a basic solution has at most :math:`S + K`
    positive entries, so the optimal policy randomises in at most :math:`K` states, and in
    general it must randomise (Altman 1999, ch. 3). Value iteration has no such step.
    Book: thm-occ-cmdp.
    Source: Altman (1999), ch. 3.

    Parameters
    ----------
    mdp : TabularMDP
        The model (its ``mu0`` is the initial distribution).
    costs : array, shape (S, A) or (K, S, A)
        One or ``K`` cost tables :math:`c_k(s, a)`.
    budgets : float or array, shape (K,)
        The budgets :math:`B_k` on the discounted costs.

    Returns
    -------
    ConstrainedLPResult

    Raises
    ------
    ValueError
        If the budgets are infeasible (HiGHS's status and message are in the error): no
        policy's discounted cost meets them.
    RuntimeError
        If HiGHS fails in any other way.
    """
    mdp = check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    c = as_array("costs", costs, ndim=(2, 3))
    if c.ndim == 2:
        c = c[None]
    check_shape("costs", c[0], (S, A))
    K = c.shape[0]
    b = as_array("budgets", budgets, ndim=(0, 1)).reshape(-1)
    check_shape("budgets", b, (K,))
    M, mu0 = flow_constraints(mdp)
    r = np.asarray(mdp.R, dtype=np.float64).ravel()
    res = linprog(
        -r,
        A_ub=sps.csr_array(c.reshape(K, S * A)),
        b_ub=b,
        A_eq=M,
        b_eq=mu0,
        bounds=(0, None),
        method="highs",
    )
    if res.status == 2:
        raise ValueError(
            f"budgets {b.tolist()} are infeasible: no policy meets them "
            f"(scipy status {res.status}: {res.message})"
        )
    if res.status != 0:
        raise _highs_failure(res, "solve_constrained_lp")
    rho = np.asarray(res.x, dtype=np.float64).reshape(S, A)
    pi, _ = _policy_on_reached(mdp, rho, mu0, "uniform")
    return ConstrainedLPResult(
        occupancy=_frozen(rho),
        policy=_frozen(pi),
        objective=-float(res.fun),
        costs=_frozen(c.reshape(K, S * A) @ rho.ravel()),
        multipliers=_frozen(-np.asarray(res.ineqlin.marginals, dtype=np.float64)),
        iterations=int(res.nit),
    )
