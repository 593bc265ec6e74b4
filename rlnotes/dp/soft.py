r"""Entropy-regularized ("soft") Bellman operators and certified soft planners.

With a temperature :math:`\alpha > 0` every reward is paid together with an entropy bonus
:math:`\alpha H(\pi(\cdot \mid s))`; the hard maximum of the Bellman optimality operator becomes
the log-sum-exp :math:`\alpha \log \sum_a \exp(Q(s, a) / \alpha)` (Ziebart 2010; Fox, Pakman and
Tishby 2016; Haarnoja et al. 2017). Everything here works on a
:class:`~rlnotes.core.mdp.TabularMDP` through the helpers of :mod:`rlnotes.dp.bellman`.

The log-sum-exp is scipy's (``scipy.special.logsumexp``) applied to rows shifted by their
maximum, so it is exact to rounding for every :math:`\alpha > 0` and every scale of ``Q``
(no overflow at :math:`\alpha = 10^{-6}` with :math:`|Q| = 10^3`, none at
:math:`\alpha = 10^{6}`).

The planners return a :class:`~rlnotes.dp.planning.PlanningResult` whose ``error_bound``
certifies :math:`\|V - V^*_\alpha\|_\infty` *including* the floating-point error of the last
backup (see :func:`soft_value_iteration`). The module also has the two "soft maxima" of the
book's second pitfall: the Boltzmann-weighted average, which is not a non-expansion, and
mellowmax (Asadi and Littman 2017), which is.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import entr, logsumexp, softmax

from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, check_mdp, row_sum_error
from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_finite,
    check_finite_result,
    check_positive_int,
    check_positive_real,
    check_real,
)
from rlnotes.dp.bellman import (
    UNIT_ROUNDOFF,
    contraction_gap,
    lookahead,
    rounding_bound,
    solve_policy_values,
)
from rlnotes.dp.planning import PlanningResult, as_values

__all__ = [
    "boltzmann_average",
    "boltzmann_policy",
    "mellowmax",
    "soft_bellman_operator",
    "soft_policy_evaluation",
    "soft_policy_iteration",
    "soft_value_iteration",
]

# --------------------------------------------------------------------------- argument checks


def _check_temperature(name: str, value: Any, *, zero_hint: str = "") -> float:
    """A finite real number > 0; TypeError for str, bool, complex and objects."""
    x = check_real(name, value)
    if x <= 0.0:
        msg = f"{name} must be a finite number > 0, got {x}"
        if x == 0.0 and zero_hint:
            msg += f"; {zero_hint}"
        raise ValueError(msg)
    return x


def _check_alpha(alpha: Any) -> float:
    return _check_temperature(
        "alpha",
        alpha,
        zero_hint="alpha = 0 is the unregularized problem: use value_iteration or policy_iteration",
    )


def _check_rows(name: str, Q: Any) -> FloatArray:
    arr = check_finite(name, as_float_array(name, Q, ndim=(1, 2)))
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one action (last axis), got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------- soft maxima


def _soft_max_rows(Q: FloatArray, alpha: float) -> FloatArray:
    r""":math:`\alpha \log \sum_a \exp(Q[..., a] / \alpha)` along the last axis (unchecked).

    Rows are shifted by their maximum first, so scipy's log-sum-exp sees arguments
    :math:`\le 0` with one of them 0: no overflow, no underflow of the result.
    """
    m = Q.max(axis=-1)
    z = (Q - m[..., None]) / alpha
    with np.errstate(over="ignore"):  # reported as an OverflowError just below
        raw = m + alpha * logsumexp(z, axis=-1)
    out: FloatArray = check_finite_result("the soft maximum alpha * logsumexp(Q / alpha)", raw)
    return out


def _boltzmann(Q: FloatArray, alpha: float) -> FloatArray:
    m = Q.max(axis=-1, keepdims=True)
    out: FloatArray = softmax((Q - m) / alpha, axis=-1)
    return out


def boltzmann_policy(Q: Any, alpha: Any) -> FloatArray:
    r"""The Boltzmann (softmax) policy of an action-value table at temperature ``alpha``.

    .. math::

        \pi(a \mid s) = \frac{\exp(Q(s, a) / \alpha)}{\sum_b \exp(Q(s, b) / \alpha)}
        = \exp\Bigl(\frac{Q(s, a) - V(s)}{\alpha}\Bigr), \qquad
        V(s) = \alpha \log \sum_b \exp(Q(s, b) / \alpha).

    At :math:`Q = Q^*_\alpha` this is the soft-optimal policy :math:`\pi^*_\alpha`; it is the
    unique maximiser of :math:`p^\top q + \alpha H(p)` (the Gibbs variational principle).
    Computed from rows shifted by their maximum, so it never overflows.
    Book: eq-soft-gibbs, eq-soft-optimal-policy. Source: Ziebart (2010); Haarnoja et al. (2017).

    Parameters
    ----------
    Q : array, shape (S, A) or (A,)
        Action values (finite).
    alpha : float
        Temperature, a finite number > 0.

    Returns
    -------
    array, same shape as ``Q``
        Rows are probability distributions.
    """
    Qa = _check_rows("Q", Q)
    return _boltzmann(Qa, _check_alpha(alpha))


def boltzmann_average(q: Any, beta: Any) -> FloatArray:
    r"""The Boltzmann-weighted average :math:`\sum_a \mathrm{softmax}(\beta q)_a\, q_a`.

    A common "soft max" in code. It lies between the mean and the maximum of ``q`` but is
    **not** a non-expansion in the sup norm, so generalized value iteration with it can have
    several fixed points (Asadi and Littman 2017). Book: pit-soft-boltzmann.

    Parameters
    ----------
    q : array, shape (..., A)
        Values; the average is taken along the last axis.
    beta : float
        Inverse temperature, a finite number > 0.

    Returns
    -------
    array, shape (...)
    """
    qa = _check_rows("q", q)
    b = _check_temperature("beta", beta)
    w = _boltzmann(qa, 1.0 / b)
    out: FloatArray = np.asarray((w * qa).sum(axis=-1), dtype=np.float64)
    return out


def mellowmax(q: Any, omega: Any) -> FloatArray:
    r"""Mellowmax, :math:`\mathrm{mm}_\omega(q) = \omega^{-1} \log (A^{-1} \sum_a e^{\omega q_a})`.

    A non-expansion in the sup norm (it is a log-sum-exp at temperature :math:`1/\omega` minus
    the constant :math:`\log A / \omega`), between the mean (:math:`\omega \to 0`) and the
    maximum (:math:`\omega \to \infty`) of ``q`` (Asadi and Littman 2017). Computed with
    scipy's log-sum-exp on shifted rows. Book: pit-soft-boltzmann.

    Parameters
    ----------
    q : array, shape (..., A)
        Values; taken along the last axis.
    omega : float
        A finite number > 0.

    Returns
    -------
    array, shape (...)
    """
    qa = _check_rows("q", q)
    w = _check_temperature("omega", omega)
    alpha = 1.0 / w
    out: FloatArray = _soft_max_rows(qa, alpha) - alpha * math.log(qa.shape[-1])
    return out


# --------------------------------------------------------------------------- operators


def _policy_entropy(pi: FloatArray) -> FloatArray:
    out: FloatArray = entr(pi).sum(axis=1)
    return out


def soft_bellman_operator(mdp: TabularMDP, Q: Any, alpha: Any) -> FloatArray:
    r"""The soft Bellman optimality operator :math:`T_\alpha` applied to ``Q``.

    .. math::

        (T_\alpha Q)(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\,
        \alpha \log \sum_{a'} \exp\bigl(Q(s', a') / \alpha\bigr).

    A monotone :math:`\gamma`-contraction in the sup norm whose fixed point is
    :math:`Q^*_\alpha`; as :math:`\alpha \to 0` it tends to :math:`T^*`.
    Book: eq-soft-optimality-op, thm-soft-contraction.
    Source: Fox, Pakman and Tishby (2016); Haarnoja et al. (2017).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    Q : array, shape (S, A)
        Action values.
    alpha : float
        Temperature, a finite number > 0.

    Returns
    -------
    array, shape (S, A)
    """
    mdp = check_mdp(mdp)
    Qa = mdp.check_q(Q)
    a = _check_alpha(alpha)
    return lookahead(mdp, _soft_max_rows(Qa, a))


def soft_policy_evaluation(
    mdp: TabularMDP, pi: Any, alpha: Any, *, tol: float = 1e-10
) -> tuple[FloatArray, FloatArray]:
    r"""Soft values :math:`V^\pi_\alpha` and :math:`Q^\pi_\alpha` of a policy.

    .. math::

        V^\pi_\alpha = (I - \gamma P_\pi)^{-1} (r_\pi + \alpha H_\pi), \qquad
        Q^\pi_\alpha = R + \gamma P V^\pi_\alpha,

    with :math:`H_\pi(s) = -\sum_a \pi(a \mid s) \log \pi(a \mid s)` (:math:`0 \log 0 = 0`): the
    solution of the soft Bellman expectation equations
    :math:`V(s) = \sum_a \pi(a \mid s) (Q(s, a) - \alpha \log \pi(a \mid s))`,
    :math:`Q(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a) V(s')`. Solved by the
    certified solver of :func:`~rlnotes.dp.bellman.policy_evaluation`:
    :math:`\|V - V^\pi_\alpha\|_\infty \le` ``tol``. Book: eq-soft-bellman-expectation.
    Source: Haarnoja et al. (2017).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    pi : array, shape (S, A)
        Policy ``pi[s, a]``; rows sum to 1.
    alpha : float
        Temperature, a finite number > 0.
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^\pi_\alpha\|_\infty` (default 1e-10).

    Returns
    -------
    V : array, shape (S,)
    Q : array, shape (S, A)
    """
    mdp = check_mdp(mdp)
    pia = mdp.check_policy(pi)
    a = _check_alpha(alpha)
    t = check_positive_real("tol", tol)
    P_pi, r_pi = policy_model(mdp, pia)
    stochastic = not np.array_equal(pia.max(axis=1), np.ones(mdp.n_states))
    A = mdp.n_actions
    u = UNIT_ROUNDOFF
    # As in policy_evaluation: a mixed P_pi errs entrywise by at most A u relatively, a mixed
    # r_pi by A u |R|. The bonus fl(alpha H) errs by (A + 4) u alpha H <= (A + 4) u alpha log A
    # (A entr terms of relative error 3u, their sum, the product by alpha), and adding it to
    # r_pi by one more rounding. A deterministic policy has H = 0 exactly and rows of P.
    model_error = 1.01 * A * u if stochastic else 0.0
    r_sup = float(np.max(np.abs(mdp.R)))
    bonus_sup = a * math.log(A)
    r_error = model_error * r_sup + 1.01 * u * ((A + 5) * bonus_sup + r_sup) if stochastic else 0.0
    row_error = row_sum_error(P_pi) if stochastic else mdp.row_sum_error
    V, _, _ = solve_policy_values(
        P_pi,
        r_pi + a * _policy_entropy(pia),
        mdp.gamma,
        t,
        model_error=model_error,
        r_error=r_error,
        row_error=row_error,
    )
    out: FloatArray = check_finite_result("Q^pi_alpha", lookahead(mdp, V))
    return V, out


def _n_terms(mdp: TabularMDP) -> int:
    """Terms of a row of a stochastic policy's P_pi, plus the A products that formed it."""
    return min(mdp.n_states, mdp.n_actions * mdp.max_branching) + mdp.n_actions


# --------------------------------------------------------------------------- certificates


class _Backup:
    r"""One certified application of the soft state-value operator
    :math:`(T_\alpha V)(s) = \alpha \log \sum_a \exp((R(s, a) + \gamma (P V)(s, a)) / \alpha)`.

    :meth:`apply` returns the backup with a bound :math:`\rho` on its rounding error;
    :meth:`bound` turns a computed residual into a certified error bound.
    """

    def __init__(self, mdp: TabularMDP, alpha: float) -> None:
        self.mdp = mdp
        self.alpha = alpha
        self.n_terms = mdp.max_branching
        #: A lower bound on 1 - gamma ||P||_inf (stored rows sum to 1 only up to rounding).
        self.gap = contraction_gap(mdp.gamma, self.n_terms, row_error=mdp.row_sum_error)
        if mdp.gamma > 0.0 and self.gap <= 0.0:  # the bound below would be negative or inf
            raise RuntimeError(
                f"gamma={mdp.gamma!r} is too close to 1 to certify any bound in floating point"
            )
        self.r_sup = float(np.max(np.abs(mdp.R)))
        self.extra = 2.0 * UNIT_ROUNDOFF * alpha * (mdp.n_actions + 6.0)

    def rounding(self, v_sup: float, tv_sup: float) -> float:
        r"""A bound on the rounding error of one computed :math:`T_\alpha V - V`, per entry.

        ``v_sup`` is :math:`\|V\|_\infty`, ``tv_sup`` is :math:`\|T_\alpha V\|_\infty`. It is
        :func:`~rlnotes.dp.bellman.rounding_bound` for :math:`R + \gamma P V - V` (the dot
        products with at most ``max_branching`` terms), plus the shifted log-sum-exp of ``A``
        terms (:math:`2 \alpha u (A + 6)`: the exponentials, their sum and one logarithm of a
        number in :math:`[1, A]`), plus two roundings of :math:`\|T_\alpha V\|_\infty` (adding
        the row maximum back, subtracting ``V``).
        """
        g = self.mdp.gamma
        base = rounding_bound(self.n_terms, g, v_sup, self.r_sup)
        return base + self.extra + 2.0 * UNIT_ROUNDOFF * tv_sup

    def apply(self, V: FloatArray) -> tuple[FloatArray, FloatArray, float]:
        """``(Q, TV, rho)``: the backup of ``V`` and a bound on the rounding of ``TV - V``."""
        Q = lookahead(self.mdp, V)
        TV = _soft_max_rows(Q, self.alpha)
        rho = self.rounding(_sup(V), _sup(TV))
        return Q, TV, rho

    def bound(self, res: float, rho: float) -> float:
        r"""The certificate of :math:`\mathrm{fl}(T_\alpha V)` from the computed residual.

        .. math::

            \|\mathrm{fl}(T_\alpha V) - V^*_\alpha\|_\infty \le \rho
            + \frac{(1 - \kappa)(\|\mathrm{fl}(T_\alpha V) - V\|_\infty + \rho)}{\kappa},

        from :math:`\|V - V^*\| \le \|T V - V\| / \kappa` (contraction) and
        :math:`\|T V - V^*\| \le \gamma \|P\|_\infty \|V - V^*\|`, where :math:`\rho` bounds the
        rounding of the computed residual and :math:`\kappa \le 1 - \gamma \|P\|_\infty` is
        :func:`~rlnotes.dp.bellman.contraction_gap`.
        """
        k = 1.0 - self.gap  # >= gamma ||P||_inf
        # (1 + 8u): the few roundings of this formula itself, so the float returned is an
        # upper bound on the exact right-hand side.
        return (rho + k * (res + rho) / self.gap) * (1.0 + 8.0 * UNIT_ROUNDOFF)

    def certify(self, V: FloatArray) -> tuple[FloatArray, FloatArray, float, FloatArray]:
        """``(Q, V_out, bound, d)``: back ``V`` up once, ``V_out = fl(T V)``, ``d = V_out - V``."""
        Q, TV, rho = self.apply(V)
        d = TV - V
        return Q, TV, self.bound(_sup(d), rho), d

    def floor(self, V: FloatArray) -> float:
        """The certificate that rounding alone allows near ``V`` (zero residual)."""
        v = _sup(V)
        return self.bound(0.0, self.rounding(v, v))


def _sup(x: FloatArray) -> float:
    return float(np.max(np.abs(x)))


def _macqueen(V_next: FloatArray, d: FloatArray, gamma: float) -> tuple[FloatArray, float]:
    r"""The midpoint of MacQueen's bounds and its half-width.

    For any ``V`` with :math:`d = T V - V`, monotonicity and
    :math:`T(V + c\mathbf{1}) = T V + \gamma c \mathbf{1}` give
    :math:`T V + \gamma \min d / (1 - \gamma) \le V^* \le T V + \gamma \max d / (1 - \gamma)`.
    """
    d_max, d_min = float(d.max()), float(d.min())
    shift = gamma / (1.0 - gamma) * (d_max + d_min) / 2.0
    return V_next + shift, gamma / (1.0 - gamma) * (d_max - d_min) / 2.0


#: Soft policy iteration tries the sweeps of :func:`_polish` once its Newton iterate is
#: certified within this factor of ``tol``.
_POLISH_FACTOR = 1e3
_POLISH_SWEEPS = 3


def _polish(
    backup: _Backup, V_next: FloatArray, d: FloatArray, gamma: float, t: float
) -> tuple[FloatArray, FloatArray, float] | None:
    """Up to ``_POLISH_SWEEPS`` sweeps of value iteration from ``V_next = T V``
    (``d = T V - V``); once MacQueen's half-width is small, its midpoint is certified by one
    more backup. Returns ``(Q, V, bound)``, or None when the span does not shrink fast.
    """
    floor = backup.floor(V_next)
    span = float(d.max() - d.min())
    for _ in range(_POLISH_SWEEPS):
        candidate, predicted = _macqueen(V_next, d, gamma)
        if predicted + floor <= 0.5 * t:
            Q_c, V_c, bound_c, _ = backup.certify(candidate)
            if bound_c <= t:
                return Q_c, V_c, bound_c
        _, V_new, _ = backup.apply(V_next)
        d = V_new - V_next
        V_next = V_new
        new_span = float(d.max() - d.min())
        if new_span > 0.1 * span:  # contracting too slowly for a few sweeps to help
            return None
        span = new_span
    return None


def _soft_result(
    Q: FloatArray, V: FloatArray, alpha: float, iterations: int, bound: float, res: list[float]
) -> PlanningResult:
    return PlanningResult.frozen(Q, V, _boltzmann(Q, alpha), iterations, bound, res)


def _floor_error(name: str, t: float, floor: float) -> RuntimeError:
    return RuntimeError(
        f"{name}: tol={t:.3g} cannot be certified in floating point: the rounding of one backup "
        f"alone allows only an error bound of {floor:.3g} for values of this size; ask for a "
        "larger tol"
    )


# --------------------------------------------------------------------------- planners


def soft_value_iteration(
    mdp: TabularMDP,
    alpha: Any,
    *,
    tol: float = 1e-8,
    stopping: str = "span",
    V0: Any = None,
    max_iterations: int = 1_000_000,
) -> PlanningResult:
    r"""Soft value iteration :math:`V_{k+1} = T_\alpha V_k` with a certified result.

    .. math::

        (T_\alpha V)(s) = \alpha \log \sum_a \exp\Bigl(\frac{R(s, a) + \gamma \sum_{s'}
        P(s' \mid s, a) V(s')}{\alpha}\Bigr).

    :math:`T_\alpha` is monotone and shifts constants like :math:`T^*`
    (:math:`T_\alpha (V + c) = T_\alpha V + \gamma c`), so both stopping rules of
    :func:`~rlnotes.dp.planning.value_iteration` apply: ``"sup"`` proposes :math:`V_{k+1}` once
    :math:`\gamma \|V_{k+1} - V_k\|_\infty / (1 - \gamma) \le \mathrm{tol}`, ``"span"`` proposes
    the shifted :math:`V_{k+1} + \gamma (\max d + \min d) / (2 (1 - \gamma))`,
    :math:`d = V_{k+1} - V_k`, once :math:`\gamma\,\mathrm{sp}(d) / (2 (1 - \gamma)) \le
    \mathrm{tol}` (MacQueen 1966). Either proposal :math:`\tilde V` is then backed up once more
    and accepted only if the residual certificate

    .. math::

        \|V - V^*_\alpha\|_\infty \le \rho + \frac{(1 - \kappa) (\|T_\alpha \tilde V
        - \tilde V\|_\infty + \rho)}{\kappa} \le \mathrm{tol},
        \qquad V = \mathrm{fl}(T_\alpha \tilde V),

    holds, where :math:`\rho` bounds the floating-point error of the computed residual and
    :math:`\kappa \le 1 - \gamma \|P\|_\infty` (so :math:`1 - \kappa \ge \gamma \|P\|_\infty`) is
    ``contraction_gap`` of ``rlnotes.dp.bellman``
    (stored rows sum to 1 only up to rounding); otherwise the iteration goes on. The result
    holds ``V`` and ``Q`` :math:`= R + \gamma P \tilde V` (so ``V`` is the soft maximum of
    ``Q``), the Boltzmann policy :math:`\pi = \exp((Q - V)/\alpha)` as ``policy``, the
    certificate as ``error_bound`` and :math:`\|V_{k+1} - V_k\|_\infty` per sweep as
    ``residuals``. Book: thm-soft-contraction, eq-soft-optimal-policy.
    Source: Fox, Pakman and Tishby (2016); Puterman (1994), secs. 6.3 and 6.6.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    alpha : float
        Temperature, a finite number > 0 (for :math:`\alpha = 0` use
        :func:`~rlnotes.dp.planning.value_iteration`).
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^*_\alpha\|_\infty` (default 1e-8), rounding included.
    stopping : {"span", "sup"}, optional
        The rule that proposes a candidate (default ``"span"``).
    V0 : array, shape (S,), optional
        Starting values (default zeros).
    max_iterations : int, optional
        A ``RuntimeError`` is raised if ``tol`` is not certified within this many sweeps.

    Returns
    -------
    PlanningResult

    Raises
    ------
    RuntimeError
        If ``tol`` is below what rounding allows for values of this size, or is not certified
        within ``max_iterations`` sweeps.
    """
    mdp = check_mdp(mdp)
    a = _check_alpha(alpha)
    t = check_positive_real("tol", tol)
    if stopping not in ("sup", "span"):
        raise ValueError(f"stopping must be 'sup' or 'span', got {stopping!r}")
    n_max = check_positive_int("max_iterations", max_iterations)
    S = mdp.n_states
    V = np.zeros(S) if V0 is None else as_values("V0", V0, S)
    backup = _Backup(mdp, a)
    gamma = mdp.gamma
    residuals: list[float] = []
    target = t
    bound = math.inf
    for k in range(1, n_max + 1):
        _, V_new, rho = backup.apply(V)
        d = V_new - V
        residuals.append(float(np.max(np.abs(d))))
        if gamma == 0.0:
            Q, V_out, bound, _ = backup.certify(V_new)
            return _soft_result(Q, V_out, a, k, bound, residuals)
        if stopping == "sup":
            candidate, predicted = V_new, gamma / (1.0 - gamma) * residuals[-1]
        else:
            candidate, predicted = _macqueen(V_new, d, gamma)
        if predicted <= rho / (1.0 - gamma) and backup.floor(V_new) > t:
            raise _floor_error("soft_value_iteration", t, backup.floor(V_new))
        if predicted + rho / (1.0 - gamma) <= target:
            Q, V_out, bound, _ = backup.certify(candidate)
            if bound <= t:
                return _soft_result(Q, V_out, a, k, bound, residuals)
            floor = backup.floor(candidate)
            if floor > 0.5 * t:
                raise _floor_error("soft_value_iteration", t, max(floor, bound))
            # The prediction was optimistic: ask it for more, but never for less than the
            # rounding floor allows (the test above keeps the floor below tol / 2).
            target = max(target / 4.0, 0.5 * (floor + t))
        V = V_new
    raise RuntimeError(
        f"soft_value_iteration: tol={t:.3g} not certified within max_iterations={n_max} "
        f"(last bound {bound:.3g})"
    )


def soft_policy_iteration(
    mdp: TabularMDP,
    alpha: Any,
    *,
    tol: float = 1e-8,
    pi0: Any = None,
    max_iterations: int = 1_000,
) -> PlanningResult:
    r"""Soft policy iteration, which is Newton's method on :math:`T_\alpha V - V = 0`.

    Repeats the soft evaluation :math:`V_k = V^{\pi_k}_\alpha` (certified to
    :math:`\mathrm{tol}/4` by the solver of :func:`~rlnotes.dp.bellman.policy_evaluation`) and
    the Boltzmann improvement :math:`\pi_{k+1} = \exp((Q_k - T_\alpha V_k)/\alpha)`,
    :math:`Q_k = R + \gamma P V_k`. Since the Jacobian of :math:`T_\alpha` at :math:`V_k` is
    :math:`\gamma P_{\pi_{k+1}}`, the step
    :math:`V_{k+1} = V_k - (\gamma P_{\pi_{k+1}} - I)^{-1}(T_\alpha V_k - V_k)` is exactly the
    soft evaluation of :math:`\pi_{k+1}`: the iterates increase monotonically and converge
    quadratically, :math:`\|V_{k+1} - V^*_\alpha\|_\infty \le \gamma^2 \|V_k - V^*_\alpha\|_\infty^2
    / (2 \alpha (1 - \gamma))`. It stops at the first :math:`k` whose certificate (the
    residual bound of :func:`soft_value_iteration`, rounding included) is at most ``tol``.
    Once the certificate of :math:`V_k` is within a factor 1000 of ``tol``, up to three
    sweeps of :math:`T_\alpha` from :math:`T_\alpha V_k`, each proposing MacQueen's midpoint
    (see :func:`soft_value_iteration`) and certifying it by one more backup, are tried first:
    a sweep costs one product with ``P``, an evaluation several. It
    returns ``V`` :math:`= \mathrm{fl}(T_\alpha V_k)`, ``Q`` :math:`= Q_k`, the Boltzmann policy of
    ``Q`` and, as ``residuals``, :math:`\|T_\alpha V_k - V_k\|_\infty` per evaluation.
    Book: eq-soft-newton, thm-soft-newton, thm-soft-improvement.
    Source: Haarnoja et al. (2018) (soft policy iteration); Puterman and Brumelle (1979)
    (policy iteration as Newton's method).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    alpha : float
        Temperature, a finite number > 0 (for :math:`\alpha = 0` use
        :func:`~rlnotes.dp.planning.policy_iteration`).
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^*_\alpha\|_\infty` (default 1e-8), rounding included.
    pi0 : array, shape (S, A), optional
        Starting policy (default: the Boltzmann policy of ``R``).
    max_iterations : int, optional
        A ``RuntimeError`` is raised if ``tol`` is not certified within this many evaluations.

    Returns
    -------
    PlanningResult

    Raises
    ------
    RuntimeError
        If ``tol`` is below what rounding allows for values of this size (the residual stops
        falling), or is not certified within ``max_iterations`` evaluations.
    """
    mdp = check_mdp(mdp)
    a = _check_alpha(alpha)
    t = check_positive_real("tol", tol)
    n_max = check_positive_int("max_iterations", max_iterations)
    gamma = mdp.gamma
    backup = _Backup(mdp, a)
    pi = _boltzmann(np.asarray(mdp.R), a) if pi0 is None else mdp.check_policy(pi0, "pi0")
    eval_tol = t / 4.0
    n_terms = _n_terms(mdp)
    V: FloatArray | None = None
    residuals: list[float] = []
    bound = math.inf
    for k in range(1, n_max + 1):
        P_pi, r_pi = policy_model(mdp, pi)
        with warnings.catch_warnings():
            # A tolerance below the rounding floor is reported by the error raised below.
            warnings.simplefilter("ignore", RuntimeWarning)
            V, _, _ = solve_policy_values(
                P_pi, r_pi + a * _policy_entropy(pi), gamma, eval_tol, V0=V, n_terms=n_terms
            )
        Q, V_out, bound, d = backup.certify(V)
        res = float(np.max(np.abs(d)))
        residuals.append(res)
        if bound <= t:
            return _soft_result(Q, V_out, a, k, bound, residuals)
        # Close to the solution, a few value-iteration sweeps with MacQueen's midpoint (one
        # backup each) are much cheaper than another evaluation and often certify ``tol``.
        if gamma * res / (1.0 - gamma) <= _POLISH_FACTOR * t:
            polished = _polish(backup, V_out, d, gamma, t)
            if polished is not None:
                Q_c, V_c, bound_c = polished
                return _soft_result(Q_c, V_c, a, k, bound_c, residuals)
        if k >= 3 and res >= 0.5 * min(residuals[:-1]):
            # Newton has stopped gaining: either rounding or evaluation accuracy limits it.
            floor = backup.floor(V)
            if floor > 0.5 * t or eval_tol < 1e-6 * t:
                raise _floor_error("soft_policy_iteration", t, max(floor, bound))
            eval_tol /= 10.0
        pi = _boltzmann(Q, a)
    raise RuntimeError(
        f"soft_policy_iteration: tol={t:.3g} not certified within max_iterations={n_max} "
        f"(last bound {bound:.3g})"
    )
