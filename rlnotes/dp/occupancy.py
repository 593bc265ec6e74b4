r"""Occupancy measures of stationary policies, the Bellman flow polytope, and the
performance-difference lemma.

The discounted state occupancy of a policy is :math:`\rho_\pi(s) = \sum_{t \ge 0} \gamma^t
\Pr(s_t = s)`, the solution of the *transposed* policy-evaluation system
:math:`(I - \gamma P_\pi^\top) \rho_\pi = \mu_0`; its state-action form is
:math:`\rho_\pi(s, a) = \pi(a \mid s) \rho_\pi(s)` (Puterman 1994, sec. 6.9). The occupancies
of all stationary policies are exactly the points of the Bellman flow polytope

.. math::

    \mathcal{D} = \{\rho \in \mathbb{R}^{S \times A}_{\ge 0} :
    \textstyle\sum_a \rho(s', a) = \mu_0(s') + \gamma \sum_{s, a} P(s' \mid s, a) \rho(s, a)\},

whose constraint matrix :func:`flow_constraints` builds as a sparse matrix; a point of
:math:`\mathcal{D}` gives back its policy through :func:`policy_from_occupancy`.

Accuracy is measured in the :math:`\ell_1` norm, the natural norm of measures: because
:math:`\|(I - \gamma P_\pi^\top)^{-1}\|_1 = \|(I - \gamma P_\pi)^{-1}\|_\infty = 1/(1 - \gamma)`,
a residual certifies :math:`\|\hat\rho - \rho_\pi\|_1 \le \|\mu_0 - (I - \gamma P_\pi^\top)
\hat\rho\|_1 / (1 - \gamma)`. The sup-norm certificate of policy evaluation does not carry over
to the transposed system (its sup norm can be close to :math:`S/(1 - \gamma)`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray

from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_finite_result,
    check_gamma,
    check_positive_int,
    check_positive_real,
)
from rlnotes.dp.bellman import (
    certified_solve,
    higham_gamma,
    max_row_nnz,
    policy_evaluation,
)

__all__ = [
    "flow_constraints",
    "occupancy",
    "occupancy_bound",
    "performance_difference",
    "policy_and_reached",
    "policy_from_occupancy",
    "surrogate_objective",
]


def _transitions(mdp: TabularMDP) -> sps.csr_array:
    """``P`` as a sparse ``(S A) x S`` matrix, row ``s A + a`` holding ``P(. | s, a)``."""
    return sps.csr_array(mdp.P_matrix)


def flow_constraints(mdp: TabularMDP) -> tuple[sps.csr_array, FloatArray]:
    r"""The Bellman flow constraints :math:`M \rho = \mu_0` of the polytope :math:`\mathcal{D}`.

    .. math::

        M = E^\top - \gamma P^\top \in \mathbb{R}^{S \times SA}, \qquad
        (M \rho)(s') = \sum_a \rho(s', a) - \gamma \sum_{s, a} P(s' \mid s, a) \rho(s, a),

    where :math:`E[(s, a), s] = 1` sums over actions and :math:`P \in \mathbb{R}^{SA \times S}`
    holds the rows :math:`P(\cdot \mid s, a)`. A vector ``rho.ravel()`` of a table ``rho[s, a]``
    (row-major, index ``s A + a``) lies in :math:`\mathcal{D}` iff it is non-negative and
    ``M @ rho.ravel() == mu0``. The transpose gives the dual constraints
    :math:`M^\top V \ge R`, i.e. :math:`V(s) \ge R(s, a) + \gamma \sum_{s'} P(s' \mid s, a) V(s')`.
    Book: def-occ-polytope, thm-occ-lp.
    Source: Puterman (1994), sec. 6.9.

    Parameters
    ----------
    mdp : TabularMDP
        The model, dense or sparse.

    Returns
    -------
    M : scipy.sparse.csr_array, shape (S, S A)
        As many non-zeros as ``P`` has, plus at most ``S A`` (the diagonal blocks).
    mu0 : array, shape (S,)
        The right-hand side, a copy of ``mdp.mu0``.
    """
    mdp = check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    E = sps.csr_array(
        (np.ones(S * A), (np.arange(S * A), np.repeat(np.arange(S), A))), shape=(S * A, S)
    )
    M = sps.csr_array((E - mdp.gamma * _transitions(mdp)).T)
    M.sum_duplicates()
    M.eliminate_zeros()
    return M, np.array(mdp.mu0, dtype=np.float64)


def occupancy_bound(
    P_pi: Any,
    mu0: FloatArray,
    gamma: float,
    rho: FloatArray,
    *,
    n_terms: int | None = None,
) -> float:
    r"""A certified bound on :math:`\|\rho - \rho_\pi\|_1` from the residual of ``rho``.

    .. math::

        \|\rho - \rho_\pi\|_1 \le \frac{(1 + \gamma_S)\,
        \|\mu_0 - \rho + \gamma P_\pi^\top \rho\|_1 + e}{1 - \gamma},

    since :math:`(I - \gamma P_\pi^\top)(\rho - \rho_\pi) = \rho - \gamma P_\pi^\top \rho - \mu_0`
    and :math:`\|(I - \gamma P_\pi^\top)^{-1}\|_1 = \|(I - \gamma P_\pi)^{-1}\|_\infty
    = 1/(1 - \gamma)` (the largest column sum of a transpose is the largest row sum of the
    matrix). Rounding is included, so the bound holds for the computed residual: with
    :math:`u = 2^{-53}`, :math:`\gamma_n = nu/(1 - nu)` and :math:`n` = ``n_terms`` (default:
    the most non-zeros in a column of :math:`P_\pi`; callers add :math:`A` for a stochastic
    policy, whose :math:`P_\pi` is itself rounded), each residual entry errs by at most
    :math:`\gamma_{n+3}(\mu_0 + |\rho| + \gamma |P_\pi^\top| |\rho|)`, whose :math:`\ell_1`
    norm is :math:`e = \gamma_{n+3}(\|\mu_0\|_1 + (1 + \gamma)\|\rho\|_1)`; the factor
    :math:`1 + \gamma_S` covers the rounding of the norm's own sum (Higham 2002, sec. 3.1);
    and :math:`1 - \gamma` is replaced by :math:`1 - \gamma \max_s \sum_{s'} P_\pi(s, s')
    (1 + \gamma_n)`, the stored rows summing to one only up to rounding.
    Book: lem-occ-l1-certificate.

    Parameters
    ----------
    P_pi : array or sparse matrix, shape (S, S)
        The policy's transition matrix (not transposed).
    mu0 : array, shape (S,)
        The initial distribution.
    gamma : float
        In [0, 1).
    rho : array, shape (S,)
        A candidate state occupancy.
    n_terms : int, optional
        The term count of the rounding bound.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``P_pi`` is not a square matrix with finite non-negative entries, the vectors do
        not match it, or ``gamma`` times its largest row sum is not below 1 (the bound needs
        :math:`\|\gamma P_\pi\|_\infty < 1`; it holds as stated for any such matrix, with
        :math:`1 - \gamma` replaced by :math:`1 - \gamma \|P_\pi\|_\infty`).
    """
    if sps.issparse(P_pi):
        if np.dtype(P_pi.dtype).kind not in "iuf":
            raise TypeError(f"P_pi must hold real numbers, got a sparse matrix of {P_pi.dtype}")
        P = sps.csr_array(P_pi, dtype=np.float64)
        entries = P.data
    else:
        P = as_array("P_pi", P_pi, ndim=2)
        entries = P
    S = P.shape[0]
    if P.shape != (S, S) or S == 0:
        raise ValueError(f"P_pi must be a non-empty square matrix, got shape {P.shape}")
    if not np.isfinite(entries).all() or (entries < 0).any():
        raise ValueError("P_pi must have finite, non-negative entries")
    g = check_gamma(gamma)
    m = as_array("mu0", mu0, shape=(S,))
    r = as_array("rho", rho, shape=(S,))
    n = None if n_terms is None else check_positive_int("n_terms", n_terms)
    return _occupancy_bound(P, m, g, r, n)


def _occupancy_bound(
    P_pi: Any, mu0: FloatArray, gamma: float, rho: FloatArray, n_terms: int | None
) -> float:
    """:func:`occupancy_bound` without argument checks."""
    PT = P_pi.T
    res = mu0 - rho + gamma * np.asarray(PT @ rho, dtype=np.float64)
    check_finite_result("the flow residual of rho", res)
    n = max_row_nnz(PT) if n_terms is None else n_terms
    l1 = (1.0 + higham_gamma(rho.shape[0])) * float(np.abs(res).sum())
    # rounding of the residual, entry by entry, summed: gamma_{n+3} (|mu0| + |rho| + gamma
    # |P_pi^T| |rho|), whose l1 norm is gamma_{n+3} (||mu0||_1 + (1 + gamma) ||rho||_1)
    e = higham_gamma(n + 3) * (float(np.abs(mu0).sum()) + (1.0 + gamma) * float(np.abs(rho).sum()))
    return (l1 + e) / _contraction_gap(gamma, P_pi)


def _contraction_gap(gamma: float, P_pi: Any) -> float:
    """A lower bound on 1 - gamma ||P_pi||_inf from the stored row sums of P_pi."""
    sums = np.asarray(abs(P_pi).sum(axis=1), dtype=np.float64).ravel()
    n = max_row_nnz(P_pi)
    gap = 1.0 - gamma * float(sums.max()) * (1.0 + higham_gamma(n))
    if gap <= 0.0:
        raise ValueError(f"P_pi has row sums up to {sums.max():.17g}: not a stochastic matrix")
    return gap


def occupancy(mdp: TabularMDP, pi: Any, *, tol: float = 1e-8) -> tuple[FloatArray, FloatArray]:
    r"""The discounted state and state-action occupancy of a stationary policy.

    .. math::

        \rho_\pi(s) = \sum_{t=0}^\infty \gamma^t \Pr(s_t = s)
        = \big[(I - \gamma P_\pi^\top)^{-1} \mu_0\big](s), \qquad
        \rho_\pi(s, a) = \pi(a \mid s)\, \rho_\pi(s),

    solved by the solver of :func:`~rlnotes.dp.bellman.policy_evaluation` applied to the
    transposed system (a banded sparse LU on narrow-band sparse models, GMRES on other sparse
    or large models, accepted only when certified; else a dense or sparse LU with iterative
    refinement), and certified in the :math:`\ell_1` norm by
    :func:`occupancy_bound`:
    :math:`\|\hat\rho - \rho_\pi\|_1 \le` ``tol``, rounding included. Since
    :math:`\sum_s \rho_\pi(s) = 1/(1 - \gamma)`, ``tol`` is an absolute error on a total mass
    of :math:`1/(1 - \gamma)`. The state-action table inherits the same :math:`\ell_1` bound
    (plus one rounding per entry of the products :math:`\pi(a \mid s)\rho(s)`).
    If rounding makes ``tol`` unreachable, a ``RuntimeWarning`` states the bound achieved.
    Book: eq-occ-closed-form, eq-occ-state-action.
    Source: Puterman (1994), sec. 6.9; Syed, Bowling and Schapire (2008).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    pi : array, shape (S, A)
        Policy ``pi[s, a]``; rows sum to 1.
    tol : float, optional
        Guaranteed bound on :math:`\|\hat\rho - \rho_\pi\|_1` (default 1e-8).

    Returns
    -------
    rho_s : array, shape (S,)
        :math:`\rho_\pi(s)`.
    rho_sa : array, shape (S, A)
        :math:`\rho_\pi(s, a) = \pi(a \mid s) \rho_\pi(s)`.
    """
    mdp = check_mdp(mdp)
    pia = mdp.check_policy(pi)
    t = check_positive_real("tol", tol)
    P_pi, _ = policy_model(mdp, pia)
    stochastic = not np.array_equal(pia.max(axis=1), np.ones(mdp.n_states))
    n = max_row_nnz(P_pi.T) + (mdp.n_actions if stochastic else 0)
    mu0 = np.asarray(mdp.mu0, dtype=np.float64)
    gamma = mdp.gamma
    PT = sps.csr_array(P_pi.T) if sps.issparse(P_pi) else np.asarray(P_pi).T

    def certify(rho: FloatArray) -> float:
        return _occupancy_bound(P_pi, mu0, gamma, rho, n)

    def residual(rho: FloatArray) -> FloatArray:
        out: FloatArray = mu0 - rho + gamma * np.asarray(PT @ rho, dtype=np.float64)
        return out

    # ||res||_1 <= sqrt(S) ||res||_2: a GMRES 2-norm residual below tol (1 - gamma) / (4 sqrt(S))
    # leaves more than half of tol for rounding.
    rho, _, _ = certified_solve(
        PT,
        mu0,
        gamma,
        t,
        bound=certify,
        residual=residual,
        gmres_atol=0.25 * t * (1.0 - gamma) / np.sqrt(mdp.n_states),
        what="l1 error bound of the occupancy",
        stacklevel=3,
    )
    rho_sa: FloatArray = pia * rho[:, None]
    return rho, rho_sa


def _check_fallback(mdp: TabularMDP, unreached: Any) -> FloatArray | str:
    if isinstance(unreached, str):
        if unreached not in ("uniform", "raise"):
            raise ValueError(
                f"unreached must be 'uniform', 'raise' or a policy array, got {unreached!r}"
            )
        return unreached
    if isinstance(unreached, bool) or unreached is None:
        raise TypeError(
            f"unreached must be 'uniform', 'raise' or a policy array, got {unreached!r}"
        )
    return mdp.check_policy(unreached, "unreached")


def policy_from_occupancy(
    mdp: TabularMDP, rho: Any, *, unreached: Any = "uniform", tol: float = 1e-9
) -> FloatArray:
    r"""The stationary policy whose occupancy is ``rho``: :math:`\pi_\rho(a|s) = \rho(s, a) /
    \sum_{a'} \rho(s, a')`.

    ``rho`` must lie in the flow polytope :math:`\mathcal{D}` (:func:`flow_constraints`). Then
    :math:`\rho_{\pi_\rho} = \rho` whatever :math:`\pi_\rho` does on the states that ``rho``
    does not reach (:math:`\rho(s) = 0`), and every policy with occupancy ``rho`` agrees with
    :math:`\pi_\rho` on the reached states; so the policy is unique exactly on those. On the
    unreached states the argument ``unreached`` chooses it.

    In floating point, a state counts as unreached when :math:`\rho(s) \le`
    ``tol`` :math:`\cdot \|\rho\|_1`; entries down to ``-tol`` :math:`/ (1 - \gamma)` (the
    total mass of a point of :math:`\mathcal{D}`) are read as rounding and clipped to 0.
    Book: thm-occ-bijection.
    Source: Puterman (1994), sec. 6.9; Syed, Bowling and Schapire (2008), thm. 2;
    Ho and Ermon (2016), prop. 3.1.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    rho : array, shape (S, A)
        A state-action occupancy ``rho[s, a]``.
    unreached : {"uniform", "raise"} or array of shape (S, A), optional
        The policy on unreached states: uniform over actions (default), a ``ValueError``
        if there is any unreached state, or the rows of the given policy.
    tol : float, optional
        Relative tolerance (default 1e-9) of the membership test: the :math:`\ell_1` norm of
        the flow residual :math:`M \rho - \mu_0` must be at most ``tol`` times the total mass
        :math:`\|\rho\|_1` (which is :math:`1/(1 - \gamma)` on :math:`\mathcal{D}`).

    Returns
    -------
    pi : array, shape (S, A)

    Raises
    ------
    ValueError
        If ``rho`` has a negative entry below the tolerance or violates the flow constraints
        beyond it (the message gives the amount), or ``unreached="raise"`` and a state is
        unreached.
    """
    mdp = check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    arr = as_array("rho", rho, shape=(S, A))
    t = check_positive_real("tol", tol)
    fallback = _check_fallback(mdp, unreached)
    pi, _ = policy_and_reached(mdp, arr, np.asarray(mdp.mu0, dtype=np.float64), t, fallback)
    return pi


def policy_and_reached(
    mdp: TabularMDP, arr: FloatArray, mu0: FloatArray, t: float, fallback: FloatArray | str
) -> tuple[FloatArray, NDArray[np.bool_]]:
    r"""``(pi_rho, reached)``: :func:`policy_from_occupancy` without argument checks.

    Checks the state-action table ``arr`` against the flow polytope :math:`\mathcal{D}` of the
    initial weights ``mu0`` with relative tolerance ``t`` (a ``ValueError`` when it is not a
    point of it) and returns :math:`\pi_\rho` on the reached states, ``fallback``
    (``"uniform"``, ``"raise"`` or a policy array) elsewhere, with the boolean mask of the
    reached states. For callers inside rlnotes (the LP solvers) that validated their inputs.
    """
    S, A = mdp.n_states, mdp.n_actions
    mass_scale = 1.0 / (1.0 - mdp.gamma)
    worst = float(arr.min())
    if worst < -t * mass_scale:
        s_bad, a_bad = np.unravel_index(int(np.argmin(arr)), arr.shape)
        raise ValueError(
            f"rho must be non-negative (an occupancy), got rho[{s_bad}, {a_bad}] = {worst:.3g}"
            f" (allowed rounding: {t * mass_scale:.1e})"
        )
    M, _ = flow_constraints(mdp)
    res = M @ arr.ravel() - mu0
    viol = float(np.abs(res).sum())
    mass = float(np.abs(arr).sum())
    scale = max(mass, mass_scale)
    if viol > t * scale:
        s_worst = int(np.argmax(np.abs(res)))
        raise ValueError(
            "rho violates the Bellman flow constraints sum_a rho(s', a) = mu0(s') + "
            f"gamma sum_(s,a) P(s'|s,a) rho(s, a): l1 residual {viol:.3g} on a total mass "
            f"{mass:.6g} (relative {viol / scale:.3g} > tol={t:.1e}); "
            f"worst at state {s_worst}, off by {float(res[s_worst]):.3g}"
        )
    clipped = np.clip(arr, 0.0, None)
    rho_s = clipped.sum(axis=1)
    reached: NDArray[np.bool_] = rho_s > t * mass
    if isinstance(fallback, str) and fallback == "raise" and not reached.all():
        missing = np.flatnonzero(~reached)
        raise ValueError(
            f"rho reaches no mass at {missing.size} state(s) (first: {missing[:5].tolist()}); "
            "the policy there is not determined by rho (pass unreached='uniform' or a policy)"
        )
    if isinstance(fallback, str):
        pi = np.full((S, A), 1.0 / A)
    else:
        pi = np.array(fallback, dtype=np.float64)
    pi[reached] = clipped[reached] / rho_s[reached, None]
    return pi, reached


def _advantage_and_occupancy(
    mdp: Any, pi: Any, pi_new: Any, tol: Any, *, of_new: bool
) -> tuple[TabularMDP, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Checked ``(mdp, pi, pi_new, V_pi, Q_pi, rho_s, rho_sa)``, the occupancy of ``pi_new``
    (``of_new``) or of ``pi``, its rounding-floor warning silenced.
    """
    mdp = check_mdp(mdp)
    pia = mdp.check_policy(pi)
    pib = mdp.check_policy(pi_new, "pi_new")
    t = check_positive_real("tol", tol)
    V, Q = policy_evaluation(mdp, pia, tol=t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rho_s, rho_sa = occupancy(mdp, pib if of_new else pia, tol=t)
    return mdp, pia, pib, V, Q, rho_s, rho_sa


def performance_difference(mdp: TabularMDP, pi: Any, pi_new: Any, *, tol: float = 1e-10) -> float:
    r"""The performance difference :math:`\eta(\pi') - \eta(\pi)` through the advantage of
    :math:`\pi`.

    .. math::

        \eta(\pi') - \eta(\pi) = \sum_{s, a} \rho_{\pi'}(s, a) A_\pi(s, a)
        = \frac{1}{1 - \gamma} \mathbb{E}_{s \sim d_{\pi'},\, a \sim \pi'(\cdot|s)}
        [A_\pi(s, a)],

    with :math:`A_\pi = Q_\pi - V_\pi` and :math:`d_{\pi'} = (1 - \gamma) \rho_{\pi'}`, computed
    from :func:`occupancy` of ``pi_new`` and :func:`~rlnotes.dp.bellman.policy_evaluation` of
    ``pi``. Book: lem-occ-pdl, eq-occ-pdl-d.
    Source: Kakade and Langford (2002), lemma 6.1.

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    pi : array, shape (S, A)
        The reference policy :math:`\pi`, whose advantage is used.
    pi_new : array, shape (S, A)
        The new policy :math:`\pi'`, whose occupancy weighs it.
    tol : float, optional
        Tolerance of the two linear solves (default 1e-10; the occupancy uses ``tol`` as its
        :math:`\ell_1` bound, policy evaluation as its sup-norm bound). The occupancy's
        ``RuntimeWarning`` (``tol`` below the rounding floor) is silenced: the result is an
        accurate float, not a certified one.

    Returns
    -------
    float
    """
    mdp, _, _, V, Q, _, rho_sa = _advantage_and_occupancy(mdp, pi, pi_new, tol, of_new=True)
    return float(np.sum(rho_sa * (Q - V[:, None])))


def surrogate_objective(mdp: TabularMDP, pi: Any, pi_new: Any, *, tol: float = 1e-10) -> float:
    r"""TRPO's local approximation :math:`L_\pi(\pi')` of :math:`\eta(\pi')`.

    .. math::

        L_\pi(\pi') = \eta(\pi) + \sum_s \rho_\pi(s) \sum_a \pi'(a \mid s) A_\pi(s, a),

    the performance-difference identity with the occupancy of the *old* policy in place of
    the new one's. It matches :math:`\eta` to first order at :math:`\pi' = \pi`.
    Book: eq-occ-surrogate, thm-occ-trpo-bound.
    Source: Kakade and Langford (2002); Schulman et al. (2015), eq. (3).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    pi : array, shape (S, A)
        The current policy :math:`\pi`.
    pi_new : array, shape (S, A)
        The candidate :math:`\pi'`.
    tol : float, optional
        Tolerance of the linear solves (default 1e-10; as in :func:`performance_difference`,
        the occupancy's rounding-floor warning is silenced and no certificate is returned).

    Returns
    -------
    float
    """
    mdp, _, pib, V, Q, rho_s, _ = _advantage_and_occupancy(mdp, pi, pi_new, tol, of_new=False)
    eta = float(np.dot(mdp.mu0, V))
    return eta + float(np.dot(rho_s, np.sum(pib * (Q - V[:, None]), axis=1)))
