r"""Value iteration and policy iteration with certified sup-norm error bounds.

Both return a :class:`PlanningResult`. Each bound used here follows from the contraction of
:math:`T^*` and its monotonicity (Puterman 1994, secs. 6.3 and 6.6; Bertsekas and Tsitsiklis 1996,
sec. 2.2); the book derives them in chapter 3. The bounds are evaluated in floating point:
rounding of the order of :math:`\epsilon_{\mathrm{mach}} \|V\|_\infty / (1 - \gamma)` is not
included, so ``tol`` should stay well above it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnotes.core.markov import IntArray, deterministic_policy_model
from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_finite,
    check_positive_int,
    check_positive_real,
    check_shape,
)
from rlnotes.dp.bellman import lookahead, solve_policy_values


@dataclass(frozen=True, eq=False)
class PlanningResult:
    r"""The output of :func:`value_iteration` or :func:`policy_iteration`.

    Parameters
    ----------
    Q : array, shape (S, A)
        Optimal action values, :math:`\|Q - Q^*\|_\infty \le` ``error_bound``.
    V : array, shape (S,)
        Optimal state values, ``V = Q.max(axis=1)`` and :math:`\|V - V^*\|_\infty \le`
        ``error_bound``.
    policy : array, shape (S, A)
        A deterministic policy as one-hot rows ``policy[s, a]``, greedy with respect to ``Q``
        (the same convention as every ``pi[s, a]`` of rlnotes); ``actions`` gives its indices.
    iterations : int
        Sweeps of :math:`T^*` (value iteration) or policy evaluations (policy iteration).
    error_bound : float
        A certified upper bound on :math:`\|V - V^*\|_\infty`; at most the ``tol`` asked for.
    residuals : array, shape (iterations,)
        Per iteration, :math:`\|V_{k+1} - V_k\|_\infty` for value iteration and the Bellman
        residual :math:`\|T^* V_k - V_k\|_\infty` for policy iteration, for convergence plots.

    The arrays are read-only. Book: thm-bell-stopping, eq-bell-pi-rate.
    """

    Q: FloatArray
    V: FloatArray
    policy: FloatArray
    iterations: int
    error_bound: float
    residuals: FloatArray

    @property
    def actions(self) -> IntArray:
        """The greedy action of each state, ``policy.argmax(axis=1)``."""
        out: IntArray = np.argmax(self.policy, axis=1).astype(np.int64)
        return out


def _one_hot(actions: IntArray, n_actions: int) -> FloatArray:
    pi = np.zeros((actions.shape[0], n_actions))
    pi[np.arange(actions.shape[0]), actions] = 1.0
    return pi


def _result(
    Q: FloatArray, actions: IntArray, iterations: int, bound: float, residuals: list[float]
) -> PlanningResult:
    arrays = [np.array(Q), Q.max(axis=1), _one_hot(actions, Q.shape[1]), np.array(residuals)]
    for arr in arrays:
        arr.setflags(write=False)
    return PlanningResult(
        Q=arrays[0],
        V=arrays[1],
        policy=arrays[2],
        iterations=iterations,
        error_bound=float(bound),
        residuals=arrays[3],
    )


def value_iteration(
    mdp: TabularMDP,
    tol: float = 1e-8,
    *,
    stopping: str = "sup",
    V0: Any = None,
    max_iterations: int = 1_000_000,
) -> PlanningResult:
    r"""Value iteration :math:`V_{k+1} = T^* V_k` with a stopping rule that guarantees ``tol``.

    With ``stopping="sup"`` (plain value iteration) it stops at the first :math:`k` with

    .. math::

        \|V_{k+1} - V_k\|_\infty \le \mathrm{tol}\,\frac{1 - \gamma}{\gamma},
        \quad\text{which gives}\quad \|V_{k+1} - V^*\|_\infty
        \le \frac{\gamma}{1 - \gamma}\|V_{k+1} - V_k\|_\infty \le \mathrm{tol},

    by the contraction of :math:`T^*` (Puterman 1994, sec. 6.3). It returns
    :math:`V_{k+1}` and :math:`Q_{k+1} = R + \gamma P V_k` (:math:`\|Q_{k+1} - Q^*\|_\infty \le`
    tol as well).

    With ``stopping="span"`` it uses the monotone bounds of MacQueen (1966) (Puterman 1994,
    sec. 6.6): with :math:`d = V_{k+1} - V_k`,

    .. math::

        V_{k+1} + \frac{\gamma \min_s d}{1 - \gamma} \le V^* \le
        V_{k+1} + \frac{\gamma \max_s d}{1 - \gamma},

    so the midpoint :math:`V_{k+1} + \gamma(\max d + \min d) / (2(1 - \gamma))` is within
    :math:`\gamma\,\mathrm{sp}(d) / (2(1 - \gamma))` of :math:`V^*`, where
    :math:`\mathrm{sp}(d) = \max d - \min d`. It stops once that is at most ``tol`` and
    returns the shifted values (and :math:`Q_{k+1}` shifted by the same constant). The span
    often contracts much faster than :math:`\gamma`. Without the shift, a small span guarantees
    only an :math:`\varepsilon`-optimal greedy policy, not accurate values.

    The greedy policy is greedy with respect to the returned ``Q`` (lowest action index on
    ties); it is :math:`2\,\mathrm{tol}/(1 - \gamma)`-optimal.
    Book: thm-bell-stopping, thm-bell-span.
    Source: Bellman (1957); Puterman (1994), sec. 6.3.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^*\|_\infty` (default 1e-8).
    stopping : {"sup", "span"}, optional
        The stopping rule and estimate described above.
    V0 : array, shape (S,), optional
        Starting values (default zeros).
    max_iterations : int, optional
        A ``RuntimeError`` is raised if the guarantee is not reached within this many sweeps.

    Returns
    -------
    PlanningResult
    """
    mdp = check_mdp(mdp)
    t = check_positive_real("tol", tol)
    if stopping not in ("sup", "span"):
        raise ValueError(f"stopping must be 'sup' or 'span', got {stopping!r}")
    n_max = check_positive_int("max_iterations", max_iterations)
    S = mdp.n_states
    if V0 is None:
        V = np.zeros(S)
    else:
        V = as_values("V0", V0, S)
    gamma = mdp.gamma
    residuals: list[float] = []
    for k in range(1, n_max + 1):
        Q = lookahead(mdp, V)
        V_new = Q.max(axis=1)
        d = V_new - V
        d_max, d_min = float(d.max()), float(d.min())
        sup = max(abs(d_max), abs(d_min))
        residuals.append(sup)
        if gamma == 0.0:
            return _result(Q, np.argmax(Q, axis=1), k, 0.0, residuals)
        if stopping == "sup":
            bound = gamma / (1.0 - gamma) * sup
            if bound <= t:
                return _result(Q, np.argmax(Q, axis=1), k, bound, residuals)
        else:
            bound = gamma / (1.0 - gamma) * (d_max - d_min) / 2.0
            if bound <= t:
                Q_hat = Q + gamma / (1.0 - gamma) * (d_max + d_min) / 2.0
                return _result(Q_hat, np.argmax(Q_hat, axis=1), k, bound, residuals)
        V = V_new
    raise RuntimeError(
        f"value_iteration: tol={t:.3g} not certified within max_iterations={n_max} "
        f"(last bound {bound:.3g})"
    )


def as_values(name: str, V: Any, n_states: int) -> FloatArray:
    """Validate a finite state-value vector of shape ``(n_states,)``."""
    arr = check_finite(name, as_float_array(name, V, ndim=1))
    check_shape(name, arr, (n_states,))
    return arr


def policy_iteration(
    mdp: TabularMDP,
    *,
    tol: float = 1e-8,
    pi0: Any = None,
    max_iterations: int = 10_000,
) -> PlanningResult:
    r"""Howard's policy iteration with certified policy evaluation.

    Repeats :math:`V_k = V^{\pi_k}` (solved by :func:`~rlnotes.dp.bellman.policy_evaluation`'s
    solver to a certified :math:`\mathrm{tol}/2`) and the greedy improvement

    .. math::

        \pi_{k+1}(s) \in \arg\max_a \; R(s, a) + \gamma \sum_{s'} P(s' \mid s, a) V_k(s'),

    keeping :math:`\pi_k(s)` unless another action is better by more than
    :math:`\delta = \mathrm{tol}(1 - \gamma)/4` (so rounding noise cannot make it cycle). It
    stops when the policy is stable and the Bellman-residual bound

    .. math::

        \|V_k - V^*\|_\infty \le \frac{\|T^* V_k - V_k\|_\infty}{1 - \gamma}
        \le \frac{\delta + \mathrm{tol}(1 - \gamma)/2}{1 - \gamma} < \mathrm{tol}

    holds (the first inequality: Puterman 1994, sec. 6.6). Without rounding it
    terminates after finitely many improvements with an optimal policy (Howard 1960; Puterman
    1994, sec. 6.4). The returned ``Q`` is :math:`R + \gamma P V_k` and ``policy`` is
    :math:`\pi_k` (one-hot), greedy with respect to ``Q`` up to :math:`\delta`. Book:
    eq-bell-pi-rate. Source: Howard (1960).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^*\|_\infty` (default 1e-8).
    pi0 : array, shape (S, A), optional
        Starting policy; its most likely action is used in each state. Default: greedy with
        respect to ``R``.
    max_iterations : int, optional
        A ``RuntimeError`` is raised if the policy is not stable within this many evaluations.

    Returns
    -------
    PlanningResult

    Raises
    ------
    RuntimeError
        At once, when ``tol`` cannot be certified in floating point: the policy is stable (or
        a policy repeats, so the improvements are noise), the bound is above ``tol``, and
        policy evaluation already stalls above its own tolerance, so evaluating more
        accurately cannot help.
    """
    mdp = check_mdp(mdp)
    t = check_positive_real("tol", tol)
    n_max = check_positive_int("max_iterations", max_iterations)
    gamma = mdp.gamma
    if pi0 is None:
        actions: IntArray = np.argmax(mdp.R, axis=1)
    else:
        actions = np.argmax(mdp.check_policy(pi0, "pi0"), axis=1)
    rows = np.arange(mdp.n_states)
    delta = t * (1.0 - gamma) / 4.0
    eval_tol = t / 2.0
    V: FloatArray | None = None
    residuals: list[float] = []
    bound = np.inf
    seen: set[bytes] = set()  # policies evaluated since the last tightening of eval_tol

    def uncertifiable(why: str) -> RuntimeError:
        return RuntimeError(
            f"policy_iteration: tol={t:.3g} cannot be certified in floating point ({why}; "
            f"Bellman-residual bound {bound:.3g}); ask for a larger tol"
        )

    for k in range(1, n_max + 1):
        P_pi, r_pi = deterministic_policy_model(mdp, actions)
        with warnings.catch_warnings():
            # A tolerance below the rounding floor is reported by the error raised below.
            warnings.simplefilter("ignore", RuntimeWarning)
            V, eval_bound, _ = solve_policy_values(P_pi, r_pi, gamma, eval_tol, V0=V)
        at_floor = eval_bound > eval_tol  # even the refined direct solve missed eval_tol
        Q = lookahead(mdp, V)
        best = np.argmax(Q, axis=1)
        q_max = Q[rows, best]
        residual = float(np.max(np.abs(q_max - V)))
        residuals.append(residual)
        bound = residual / (1.0 - gamma) if gamma > 0.0 else 0.0
        improve = q_max > Q[rows, actions] + delta
        key = actions.tobytes()
        # Exact policy iteration never revisits a policy; a repeat means the "improvements"
        # are evaluation or rounding noise.
        cycling = key in seen
        seen.add(key)
        if not improve.any() or cycling:
            if bound <= t:
                return _result(Q, np.where(improve, best, actions), k, bound, residuals)
            # Not yet certified: evaluate more accurately, unless that cannot help.
            if at_floor:
                raise uncertifiable(
                    f"policy evaluation stalls at error bound {eval_bound:.3g} > {eval_tol:.3g}"
                )
            eval_tol /= 10.0
            if eval_tol < 1e-6 * t:
                raise uncertifiable("evaluation tolerance exhausted with a stable policy")
            seen.clear()
        actions = np.where(improve, best, actions)
    raise RuntimeError(
        f"policy_iteration: tol={t:.3g} not certified within max_iterations={n_max} "
        f"(last bound {bound:.3g})"
    )
