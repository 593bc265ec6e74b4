r"""Value iteration and policy iteration with certified sup-norm error bounds.

Both return a :class:`PlanningResult`. Each bound used here follows from the contraction of
:math:`T^*` and its monotonicity (Puterman 1994, secs. 6.3 and 6.6; Bertsekas and Tsitsiklis 1996,
sec. 2.2); the book derives them in chapter 3. Every bound includes the rounding error of the
last computed sweep or residual (computed centered, ``certified_lookahead``)
and the few-ulp deviation of the stored rows of ``P`` from summing to 1
(``row_sum_error``), so a returned ``error_bound`` is a true
bound on the floating-point result; a ``tol`` below that floor raises ``RuntimeError`` as soon
as it is seen to be unreachable. Both algorithms work on dense and sparse models alike.
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
    as_array,
    check_finite_result,
    check_positive_int,
    check_positive_real,
)
from rlnotes.dp.bellman import (
    UNIT_ROUNDOFF,
    centered_rounding_bound,
    certified_lookahead,
    contraction_gap,
    expected_next,
    lookahead,
    solve_policy_values,
)

__all__ = ["PlanningResult", "as_values", "policy_iteration", "value_iteration"]

#: Value iteration gives up after this many consecutive sweeps that change V only by rounding.
_STALL_SWEEPS = 100


@dataclass(frozen=True, eq=False)
class PlanningResult:
    r"""The output of :func:`value_iteration` or :func:`policy_iteration` (and of the soft
    planners of :mod:`rlnotes.dp.soft`, whose ``policy`` is the Boltzmann policy and ``V`` the
    soft maximum of ``Q``).

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

    Notes
    -----
    The arrays are read-only. Book: thm-bell-stopping, eq-bell-pi-rate.
    """

    Q: FloatArray
    V: FloatArray
    policy: FloatArray
    iterations: int
    error_bound: float
    residuals: FloatArray

    @classmethod
    def frozen(
        cls,
        Q: FloatArray,
        V: FloatArray,
        policy: FloatArray,
        iterations: int,
        error_bound: float,
        residuals: list[float],
    ) -> PlanningResult:
        """A result holding read-only copies of the arrays (the constructor every solver uses)."""
        arrays = [np.array(Q), np.array(V), np.array(policy), np.array(residuals, dtype=float)]
        for arr in arrays:
            arr.setflags(write=False)
        return cls(arrays[0], arrays[1], arrays[2], int(iterations), float(error_bound), arrays[3])

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
    policy = _one_hot(actions, Q.shape[1])
    return PlanningResult.frozen(Q, Q.max(axis=1), policy, iterations, bound, residuals)


def _sup(x: FloatArray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def _row_max(Q: FloatArray) -> FloatArray:
    """``Q.max(axis=1)``; for few actions as an elementwise maximum of columns (far faster)."""
    if Q.shape[1] > 16:
        out: FloatArray = Q.max(axis=1)
        return out
    V = Q[:, 0].copy()
    for a in range(1, Q.shape[1]):
        np.maximum(V, Q[:, a], out=V)
    return V


def value_iteration(
    mdp: TabularMDP,
    *,
    tol: float = 1e-8,
    stopping: str = "span",
    V0: Any = None,
    max_iterations: int = 1_000_000,
) -> PlanningResult:
    r"""Value iteration :math:`V_{k+1} = T^* V_k` with a stopping rule that guarantees ``tol``.

    Each sweep computes :math:`Q_{k+1} = R + \gamma P V_k` and :math:`V_{k+1} = \max_a Q_{k+1}`
    in floating point, within :math:`\rho` (``rounding_bound``) of
    the exact :math:`T^* V_k`; write :math:`d = V_{k+1} - V_k`.

    With ``stopping="sup"`` (plain value iteration) it stops at the first :math:`k` with

    .. math::

        \|V_{k+1} - V^*\|_\infty \le \frac{\gamma \|d\|_\infty + \rho}{1 - \gamma}
        \le \mathrm{tol},

    by the contraction of :math:`T^*` (Puterman 1994, sec. 6.3; the :math:`\rho` term is the
    rounding of the last sweep). It returns :math:`V_{k+1}` and :math:`Q_{k+1}`, and
    :math:`\|Q_{k+1} - Q^*\|_\infty` obeys the same bound.

    With ``stopping="span"`` (the default) it uses the monotone bounds of MacQueen (1966)
    (Puterman 1994, sec. 6.6),

    .. math::

        V_{k+1} + \frac{\gamma \min_s d - \rho}{1 - \gamma} \le V^* \le
        V_{k+1} + \frac{\gamma \max_s d + \rho}{1 - \gamma},

    and returns the midpoint: :math:`V_{k+1}` and :math:`Q_{k+1}` shifted by the constant
    :math:`c = \gamma(\max d + \min d) / (2(1 - \gamma))`, within
    :math:`(\gamma\,\mathrm{sp}(d)/2 + \rho) / (1 - \gamma)` of :math:`V^*` and :math:`Q^*`
    (:math:`\mathrm{sp}(d) = \max d - \min d`). The span often contracts much faster than
    :math:`\gamma`, and since :math:`\mathrm{sp}(d)/2 \le \|d\|_\infty` (and the sup bound is
    used whenever it is smaller), this rule never stops later than ``"sup"``. Because of the
    shift the values carry a constant error within the bound: an absorbing zero-reward state,
    whose exact value is 0, gets the value :math:`c` (for example 9.7e-9 at ``tol=1e-8``),
    not 0. Use ``stopping="sup"`` for the unshifted iterates.

    In both rules the denominator is ``contraction_gap`` rather than
    :math:`1 - \gamma` (rows stored in floating point sum to 1 only within a few ulp), and the
    returned bound includes the rounding of the shift. The greedy policy is greedy with
    respect to the returned ``Q`` (lowest action index on ties); it is
    :math:`2\,\mathrm{tol}/(1 - \gamma)`-optimal.
    Book: thm-bell-stopping, thm-bell-span.
    Source: Bellman (1957); Puterman (1994), secs. 6.3 and 6.6; MacQueen (1966).

    Parameters
    ----------
    mdp : TabularMDP
        The model (dense or sparse).
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^*\|_\infty` (default 1e-8), rounding included.
    stopping : {"span", "sup"}, optional
        The stopping rule and estimate described above.
    V0 : array, shape (S,), optional
        Starting values (default zeros).
    max_iterations : int, optional
        At most this many sweeps. Fewer are run when the contraction bound, computed after the
        first sweep, guarantees certification sooner (:math:`\gamma^k \|d_1\|_\infty` small
        enough): if that guarantee is not met, rounding is to blame and the run stops there.

    Returns
    -------
    PlanningResult

    Raises
    ------
    RuntimeError
        If ``tol`` is not certified within ``max_iterations`` sweeps, or cannot be certified in
        floating point: at once when the rounding floor :math:`\rho / (1 - \gamma)` exceeds
        ``tol`` whatever the values, and as soon as the iterates stall at the rounding level
        with a bound above ``tol``.
    OverflowError
        If the iterates overflow float64 (rewards too large for this discount).
    """
    mdp = check_mdp(mdp)
    t = check_positive_real("tol", tol)
    if not isinstance(stopping, str):
        raise TypeError(f"stopping must be 'span' or 'sup', got {type(stopping).__name__}")
    if stopping not in ("sup", "span"):
        raise ValueError(f"stopping must be 'span' or 'sup', got {stopping!r}")
    n_max = check_positive_int("max_iterations", max_iterations)
    S = mdp.n_states
    V = np.zeros(S) if V0 is None else as_values("V0", V0, S)
    gamma = mdp.gamma
    n = mdp.max_branching
    r_sup = _sup(mdp.R)
    gap = contraction_gap(gamma, n, row_error=mdp.row_sum_error)
    if gamma > 0.0:
        if gap <= 0.0:
            raise RuntimeError(
                f"value_iteration: gamma={gamma!r} is too close to 1 to certify any bound in "
                "floating point"
            )
        floor = centered_rounding_bound(n, gamma, 0.0, 0.0, r_sup, mdp.row_sum_error) / gap
        if floor > t:
            raise RuntimeError(
                f"value_iteration: tol={t:.3g} cannot be certified in floating point: the "
                f"rounding of one sweep alone allows an error of {floor:.3g}; ask for a "
                "larger tol"
            )
    residuals: list[float] = []
    limit = n_max
    stalled = 0
    bound = np.inf
    for k in range(1, n_max + 1):
        Q, rho = certified_lookahead(mdp, V)
        check_finite_result("value iteration", Q)
        V_new = _row_max(Q)
        d = V_new - V
        d_max, d_min = float(d.max()), float(d.min())
        sup = max(abs(d_max), abs(d_min))
        residuals.append(sup)
        if gamma == 0.0:  # Q = R + 0 * (P V) = R exactly
            return _result(Q, np.argmax(Q, axis=1), k, 0.0, residuals)
        bound, shift = _vi_certificate(
            gamma, mdp.row_sum_error, rho, d_max, d_min, _sup(Q), span=stopping == "span"
        )
        if bound <= t:
            Q_out = Q + shift if shift else Q
            return _result(Q_out, np.argmax(Q_out, axis=1), k, bound, residuals)
        if k == 1 and limit == n_max:
            limit = min(n_max, _guaranteed_sweeps(mdp, t, gap, sup, V_new))
        if gamma * sup <= rho:  # the iterates move only by rounding
            stalled += 1
            if sup == 0.0 or rho / gap > t or stalled >= _STALL_SWEEPS:
                raise RuntimeError(
                    f"value_iteration: tol={t:.3g} cannot be certified in floating point: "
                    f"the iterates stall at the rounding level after {k} sweeps with bound "
                    f"{bound:.3g}; ask for a larger tol"
                )
        else:
            stalled = 0
        if k >= limit and limit < n_max:
            raise RuntimeError(
                f"value_iteration: tol={t:.3g} not certified after {k} sweeps although the "
                f"contraction guarantees it by then in exact arithmetic (bound {bound:.3g}); "
                "rounding prevents it; ask for a larger tol"
            )
        V = V_new
    raise RuntimeError(
        f"value_iteration: tol={t:.3g} not certified within max_iterations={n_max} "
        f"(last bound {bound:.3g})"
    )


def _vi_certificate(
    gamma: float,
    row_error: float,
    rho: float,
    d_max: float,
    d_min: float,
    q_sup: float,
    *,
    span: bool,
) -> tuple[float, float]:
    r"""``(bound, shift)`` for the sweep :math:`V_{k+1} = \mathrm{fl}(T^* V_k)`, rounding included.

    The rows of :math:`P` sum to :math:`1 \pm e` (``row_error``), so :math:`T^*` maps
    :math:`V + c` into :math:`[TV + \gamma c (1 - e), TV + \gamma c (1 + e)]` for :math:`c \ge 0`
    and contracts by :math:`\bar\gamma = \gamma (1 + e)`. The sup rule gives
    :math:`\|V_{k+1} - V^*\| \le (\gamma \|d\| + \rho) / (1 - \bar\gamma)` and
    :math:`\|Q_{k+1} - Q^*\| \le \bar\gamma (\|d\| + \|V_{k+1} - V^*\|) + \rho`. The span
    rule sums the monotone bounds
    :math:`D_0 = T V_{k+1} - V_{k+1} \in [\gamma m (1 \pm e) - \rho,\,
    \gamma M (1 \pm e) + \rho]` over
    :math:`D_{j+1} = T^{j+2} V_{k+1} - T^{j+1} V_{k+1}`, each endpoint with the factor
    :math:`\gamma(1 \pm e)` that makes it largest, into an interval for :math:`V^* - V_{k+1}`;
    the one for :math:`Q^* - Q_{k+1}` follows from :math:`Q^* - Q_{k+1} = \gamma P (V^* - V_k)
    - \epsilon` with :math:`V^* - V_k = (V^* - V_{k+1}) + d`. The shift is the midpoint of the
    first interval, and the bound the larger distance from it to an endpoint of either,
    plus the rounding of adding the shift. The span rule's bound is used only where it is
    smaller than the sup rule's.
    """
    u = UNIT_ROUNDOFF
    m = d_min - u * abs(d_min)  # the computed d = V_{k+1} - V_k is itself rounded
    M = d_max + u * abs(d_max)
    sup = max(abs(m), abs(M))
    g_hi = gamma * (1.0 + row_error)
    gap = 1.0 - g_hi
    v_err = (gamma * sup + rho) / gap
    bound = max(v_err, g_hi * (sup + v_err) + rho) * (1.0 + 8.0 * u)
    if not span:
        return bound, 0.0

    def geometric(x: float, upper: bool) -> float:
        # sum_j of x gamma^j (1 +- e)^j with the factor that makes it an outer bound
        grow = (x >= 0.0) == upper
        ratio = g_hi if grow else gamma * (1.0 - row_error)
        return x / (1.0 - ratio)

    def scaled(x: float, upper: bool) -> float:
        grow = (x >= 0.0) == upper
        return gamma * x * ((1.0 + row_error) if grow else (1.0 - row_error))

    lo = geometric(scaled(m, upper=False) - rho, upper=False)
    hi = geometric(scaled(M, upper=True) + rho, upper=True)
    c = 0.5 * (lo + hi)
    q_lo = scaled(lo + m, upper=False) - rho
    q_hi = scaled(hi + M, upper=True) + rho
    half = max(hi - c, c - lo, q_hi - c, c - q_lo)
    bound_span = (half + 2.02 * u * (q_sup + abs(c))) * (1.0 + 8.0 * u)
    if bound_span < bound:
        return bound_span, c
    return bound, 0.0


def _guaranteed_sweeps(
    mdp: TabularMDP, tol: float, gap: float, sup_1: float, V_1: FloatArray
) -> int:
    r"""Sweeps after which the sup rule certifies ``tol`` for sure (a huge number if never).

    In floating point, :math:`\|d_k\| \le \bar\gamma^{k-1} \|d_1\| + 2\bar\rho / \mathrm{gap}`
    with :math:`\bar\gamma = 1 - \mathrm{gap}` and :math:`\bar\rho` the rounding bound of a
    sweep at the largest norm an iterate can reach, :math:`\|V_1\| + \|d_1\| / \mathrm{gap}`.
    The rule certifies once :math:`\gamma \|d_k\| + \bar\rho \le \mathrm{tol} \cdot
    \mathrm{gap}`.
    """
    gamma = mdp.gamma
    v_max = _sup(V_1) + sup_1 / gap
    rho_max = centered_rounding_bound(
        mdp.max_branching, gamma, v_max, v_max, _sup(mdp.R), mdp.row_sum_error
    )
    budget = tol * gap - rho_max * (1.0 + 2.0 * gamma / gap)
    if budget <= 0.0 or sup_1 == 0.0:
        return 2**62
    k = 1.0 + np.log(budget / (gamma * sup_1)) / np.log1p(-gap)
    # a safety margin: the limit only ends runs that rounding has already doomed
    return int(min(2**62, 2 * max(1.0, np.ceil(k)) + 10))


def _entry_rounding(mdp: TabularMDP, V: FloatArray) -> FloatArray:
    r"""Per entry, a bound on the rounding of the plain :math:`R + \gamma P V`.

    :math:`1.01\, u (n + 3)(|R(s, a)| + \gamma (P |V|)(s, a))`, the bound of
    ``rounding_bound`` taken entry by entry.
    """
    scale = np.abs(mdp.R) + mdp.gamma * expected_next(mdp, np.abs(V))
    out: FloatArray = 1.01 * UNIT_ROUNDOFF * (mdp.max_branching + 3) * scale
    return out


def as_values(name: str, V: Any, n_states: int) -> FloatArray:
    """Validate a finite state-value vector of shape ``(n_states,)``."""
    out: FloatArray = as_array(name, V, shape=(n_states,))
    return out


def policy_iteration(
    mdp: TabularMDP,
    *,
    tol: float = 1e-8,
    pi0: Any = None,
    max_iterations: int = 10_000,
) -> PlanningResult:
    r"""Howard's policy iteration with certified policy evaluation.

    Repeats :math:`V_k = V^{\pi_k}` (solved by :func:`~rlnotes.dp.bellman.policy_evaluation`'s
    solver to a certified :math:`\mathrm{tol}/2`, dense or sparse) and the greedy improvement

    .. math::

        \pi_{k+1}(s) \in \arg\max_a \; R(s, a) + \gamma \sum_{s'} P(s' \mid s, a) V_k(s'),

    switching :math:`\pi_k(s)` wherever another action has a positive advantage (one larger
    than the rounding error of the two computed entries of ``Q`` compared, each bounded
    relative to its own size, so that advantages that decay by many orders of magnitude
    along a chain still count). Exact policy iteration never revisits a policy, so a
    repeated policy means the "improvements" are evaluation or rounding noise; only then is
    the threshold raised to :math:`\delta = \mathrm{tol}(1 - \gamma)/4`, and if a policy
    repeats even so, the
    policies are evaluated more accurately. It stops when the policy is stable and the
    Bellman-residual bound

    .. math::

        \|V_k - V^*\|_\infty \le \frac{\|T^* V_k - V_k\|_\infty + \rho}{1 - \gamma}
        \le \mathrm{tol}

    holds (Puterman 1994, sec. 6.6; :math:`\rho` is the rounding of the computed residual).
    Without rounding it terminates after finitely many improvements with an optimal policy
    (Howard 1960; Puterman 1994, sec. 6.4). The returned ``Q`` is :math:`R + \gamma P V_k`
    and ``policy`` is :math:`\pi_k` (one-hot), greedy with respect to ``Q`` up to the
    threshold in force. Book: eq-bell-pi-rate. Source: Howard (1960).

    Parameters
    ----------
    mdp : TabularMDP
        The model (dense or sparse).
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^*\|_\infty` (default 1e-8), rounding included.
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
    OverflowError
        If the values overflow float64.
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
    n = mdp.max_branching
    gap = contraction_gap(gamma, n, row_error=mdp.row_sum_error) if gamma > 0.0 else 1.0
    delta = t * (1.0 - gamma) / 4.0
    cautious = False  # True once a repeated policy has shown that noise drives the switches
    eval_tol = t / 2.0
    V: FloatArray | None = None
    residuals: list[float] = []
    bound = np.inf
    seen: set[bytes] = set()  # policies evaluated since the last change of the rules

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
            V, eval_bound, _ = solve_policy_values(
                P_pi, r_pi, gamma, eval_tol, V0=V, n_terms=n, row_error=mdp.row_sum_error
            )
        at_floor = eval_bound > eval_tol  # even the refined direct solve missed eval_tol
        # The certificate uses the centered product (accurate relative to the values' spread)
        Q, rho = certified_lookahead(mdp, V)
        check_finite_result("policy iteration", Q)
        residual = float(np.max(np.abs(Q.max(axis=1) - V)))
        residuals.append(residual)
        bound = (residual + rho) / gap * (1.0 + 8.0 * UNIT_ROUNDOFF) if gamma > 0.0 else 0.0
        # ... the improvement the plain one, accurate relative to each entry's own size, so
        # that advantages far below max |V| (values that decay along a chain) still count.
        Q_plain = lookahead(mdp, V)
        best = np.argmax(Q_plain, axis=1)
        advantage = Q_plain[rows, best] - Q_plain[rows, actions]
        key = actions.tobytes()
        cycling = key in seen
        seen.add(key)
        if cycling and not cautious:
            cautious, cycling = True, False
            seen = {key}
        if cautious:
            improve = advantage > delta
        else:  # any advantage above the rounding of the two entries compared
            noise = _entry_rounding(mdp, V)
            improve = advantage > noise[rows, best] + noise[rows, actions]
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
