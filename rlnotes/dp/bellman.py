r"""Bellman operators and exact policy evaluation on a :class:`~rlnotes.core.mdp.TabularMDP`.

The operators act on action-value tables ``Q[s, a]``; a policy is ``pi[s, a]``. Everything is
vectorized over the model: one product of the ``(S A) x S`` matrix ``mdp.P_matrix`` (dense or
scipy.sparse) with a vector per application.

Policy evaluation solves :math:`(I - \gamma P_\pi) V = r_\pi` with a certified error bound
that includes floating-point rounding (``residual_bound``, computed centered). Small dense
models use a direct LU solve; banded sparse ones a sparse LU in the band; large dense ones and
other sparse ones GMRES (Saad and Schultz 1986), which only multiplies vectors by
:math:`P_\pi`, with a dense or sparse (SuperLU) LU factorization as fallback when GMRES does
not certify the tolerance quickly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as scipy_sparse
from numpy.typing import NDArray
from scipy.linalg import lu_factor, lu_solve
from scipy.sparse.linalg import LinearOperator, gmres, splu

from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, check_mdp, is_sparse_matrix, row_sum_error
from rlnotes.core.validation import FloatArray, check_finite_result, check_positive_real

__all__ = [
    "DIRECT_SOLVE_MAX_STATES",
    "UNIT_ROUNDOFF",
    "bellman_operator",
    "bellman_optimality_operator",
    "centered_product",
    "centered_rounding_bound",
    "certified_lookahead",
    "certified_solve",
    "contraction_gap",
    "expected_next",
    "higham_gamma",
    "lookahead",
    "max_row_nnz",
    "policy_evaluation",
    "residual_bound",
    "rounding_bound",
    "solve_policy_values",
]

#: Dense models with at most this many states are evaluated by a direct dense solve.
DIRECT_SOLVE_MAX_STATES = 400

#: The unit roundoff u = 2**-53 of float64: a rounded operation errs by at most u relatively.
UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2.0

IntArray = NDArray[np.int64]


def higham_gamma(n: int) -> float:
    r"""Higham's :math:`\gamma_n = n u / (1 - n u)`, the rounding factor of an n-term sum.

    With :math:`u` = ``UNIT_ROUNDOFF``, a sum of :math:`n` rounded terms errs by at most
    :math:`\gamma_n` times the sum of their absolute values (Higham 2002, sec. 3.1).
    Unchecked: for the certificates of rlnotes.
    """
    nu = n * UNIT_ROUNDOFF
    return nu / (1.0 - nu)


def expected_next(mdp: TabularMDP, v: FloatArray) -> FloatArray:
    """:math:`(P v)(s, a) = \\sum_{s'} P(s' \\mid s, a) v(s')` as an ``(S, A)`` array.

    Works on dense and sparse models alike (one product with ``mdp.P_matrix``). Unchecked:
    for the algorithms of rlnotes, which validate their inputs first.
    """
    S, A = mdp.n_states, mdp.n_actions
    with np.errstate(over="ignore", invalid="ignore"):
        out: FloatArray = np.asarray(mdp.P_matrix @ v, dtype=np.float64).reshape(S, A)
    return out


def lookahead(mdp: TabularMDP, v: FloatArray) -> FloatArray:
    """:math:`Q(s, a) = R(s, a) + \\gamma (P v)(s, a)` (unchecked, dense or sparse model).

    Overflow gives infinities silently; the callers check their results.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out: FloatArray = mdp.R + mdp.gamma * expected_next(mdp, v)
    return out


def max_row_nnz(M: Any) -> int:
    """The largest number of non-zero entries in a row of a dense or sparse matrix."""
    if is_sparse_matrix(M):
        csr = scipy_sparse.csr_array(M)
        return int(np.diff(csr.indptr).max()) if csr.shape[0] else 0
    arr = np.asarray(M)
    return int((arr != 0.0).sum(axis=-1).max()) if arr.size else 0


def rounding_bound(n_terms: int, gamma: float, v_sup: float, r_sup: float) -> float:
    r"""A bound on the rounding error of one computed :math:`r + \gamma P v - v`, per entry.

    Each entry of :math:`P v` is a sum of at most ``n_terms`` non-zero products (zero terms
    add exactly), so in any summation order its error is at most
    :math:`\gamma_n \sum_j p_j |v_j| \le n u \|v\|_\infty (1 + O(u))` with
    :math:`u = 2^{-53}` (Higham 2002, sec. 3.1); the product by :math:`\gamma`, the sum with
    :math:`r` and the subtraction of :math:`v` add one rounding each. The bound

    .. math::

        \rho = 1.01\, u \big((n + 3)(\gamma \|v\|_\infty + \|r\|_\infty)
        + \|v\|_\infty\big)

    covers these and the :math:`O(u^2)` terms, and (with ``n_terms`` raised by A) the
    rounding of a stochastic policy's :math:`P_\pi` and :math:`r_\pi`. Every certified
    bound of rlnotes adds :math:`\rho / (1 - \gamma)` for the residual it computed, so no
    certificate claims an accuracy that rounding can have destroyed.
    """
    return 1.01 * UNIT_ROUNDOFF * ((n_terms + 3) * (gamma * v_sup + r_sup) + v_sup)


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
    out: FloatArray = check_finite_result("T^pi Q", lookahead(mdp, np.einsum("sa,sa->s", pia, Qa)))
    return out


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
    out: FloatArray = check_finite_result("T* Q", lookahead(mdp, Qa.max(axis=1)))
    return out


def contraction_gap(gamma: float, n_terms: int, *, row_error: float | None = None) -> float:
    r"""A lower bound on :math:`1 - \gamma \|P\|_\infty` for a stored stochastic matrix.

    Rows renormalized in floating point sum to 1 only within about :math:`(n + 1) u`
    (``row_error``, when given, is a measured bound such as
    ``row_sum_error``), so
    :math:`\|(I - \gamma P)^{-1}\|_\infty \le 1 / \mathrm{gap}`; every certified bound
    divides by this gap instead of :math:`1 - \gamma`.
    """
    err = (n_terms + 1) * UNIT_ROUNDOFF if row_error is None else row_error
    return (1.0 - gamma) - gamma * err


def centered_rounding_bound(
    n_terms: int, gamma: float, spread: float, center: float, r_sup: float, row_error: float
) -> float:
    r"""The rounding bound of a *centered* product :math:`r + \gamma(P (v - c) + c) - v`.

    With :math:`c` a constant and :math:`s = \|v - c\|_\infty` (``spread``), the sum of
    ``n_terms`` products only sees :math:`v - c`, and :math:`c` itself enters through the
    row sums of :math:`P` (within ``row_error`` of 1) and four more roundings:

    .. math::

        \rho_c = 1.01 \big(u (n + 5) \gamma s + \gamma |c| (e_{\mathrm{row}} + 4u)
        + 2 u \|r\|_\infty + u (s + |c|)\big).

    When :math:`v` is nearly constant (as values are for :math:`\gamma` near 1), this is far
    below ``rounding_bound``, whose :math:`n u \|v\|_\infty` term it replaces.
    """
    u = UNIT_ROUNDOFF
    c = abs(center)
    return 1.01 * (
        u * (n_terms + 5) * gamma * spread
        + gamma * c * (row_error + 4.0 * u)
        + 2.0 * u * r_sup
        + u * (spread + c)
    )


def _center(v: FloatArray) -> float:
    return 0.5 * (float(v.max()) + float(v.min())) if v.size else 0.0


def centered_product(M: Any, v: FloatArray) -> tuple[FloatArray, float, float]:
    """``(M (v - c) + c, c, s)`` with ``c`` the midrange of ``v`` and ``s = max|v - c|``."""
    with np.errstate(over="ignore", invalid="ignore"):
        c = _center(v)
        x = v - c
        out: FloatArray = np.asarray(M @ x, dtype=np.float64) + c
    return out, c, _sup(x)


def certified_lookahead(mdp: TabularMDP, v: FloatArray) -> tuple[FloatArray, float]:
    r"""``(Q, rho)``: :math:`Q = R + \gamma P v` computed centered, and its rounding bound.

    ``rho`` bounds :math:`|Q(s, a) - (R + \gamma P v)(s, a)|` over all entries and the
    rounding of subtracting a vector of the size of ``v`` from ``Q``
    (``centered_rounding_bound`` with the model's ``max_branching`` and
    ``row_sum_error``). Unchecked; dense or sparse model.
    """
    y, c, s = centered_product(mdp.P_matrix, v)
    with np.errstate(over="ignore", invalid="ignore"):
        Q: FloatArray = mdp.R + mdp.gamma * y.reshape(mdp.n_states, mdp.n_actions)
    rho = centered_rounding_bound(
        mdp.max_branching, mdp.gamma, s, c, _sup(mdp.R), mdp.row_sum_error
    )
    return Q, rho


def _sup(x: FloatArray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def residual_bound(
    P_pi: Any,
    r_pi: FloatArray,
    gamma: float,
    V: FloatArray,
    *,
    n_terms: int | None = None,
    model_error: float = 0.0,
    r_error: float = 0.0,
    row_error: float | None = None,
) -> float:
    r"""The certificate :math:`(\|T^\pi V - V\|_\infty + \rho) / (1 - \gamma)` on
    :math:`\|V - V^\pi\|_\infty`.

    It holds because :math:`(I - \gamma P_\pi)(V - V^\pi) = V - T^\pi V` and
    :math:`\|(I - \gamma P_\pi)^{-1}\|_\infty \le 1/(1 - \gamma \|P_\pi\|_\infty)`. The
    residual is computed centered (``centered_product``), :math:`\rho` is its
    ``centered_rounding_bound``, and the denominator is ``contraction_gap`` with the
    measured row sums of ``P_pi``. ``P_pi`` is dense or sparse; ``n_terms`` (default: the most
    non-zeros of a row of ``P_pi``) is the term count of the rounding bound. ``model_error``
    bounds the entrywise relative error of ``P_pi`` against the exact chain (for a stochastic
    policy mixed in floating point, about :math:`A u`) and ``r_error`` the absolute error of
    ``r_pi``; they widen :math:`\rho` by :math:`\gamma e \|V - c\|_\infty + e_r` and the
    row-sum error by :math:`e`. ``row_error`` is a known bound on the row sums' deviation from
    1 (default: measured by ``row_sum_error``).
    """
    n = max_row_nnz(P_pi) if n_terms is None else n_terms
    y, c, s = centered_product(P_pi, V)
    with np.errstate(over="ignore", invalid="ignore"):
        res = r_pi + gamma * y - V
    check_finite_result("the Bellman residual of V", res)
    r_sup = _sup(r_pi)
    row_error = (row_sum_error(P_pi) if row_error is None else row_error) + model_error
    rho = centered_rounding_bound(n, gamma, s, c, r_sup, row_error)
    rho += 1.01 * model_error * gamma * s + r_error
    gap = contraction_gap(gamma, n, row_error=row_error)
    if gap <= 0.0:
        return float("inf")
    return (_sup(res) + rho) / gap * (1.0 + 8.0 * UNIT_ROUNDOFF)


def solve_policy_values(
    P_pi: Any,
    r_pi: FloatArray,
    gamma: float,
    tol: float,
    V0: FloatArray | None = None,
    *,
    n_terms: int | None = None,
    model_error: float = 0.0,
    r_error: float = 0.0,
    row_error: float | None = None,
) -> tuple[FloatArray, float, str]:
    r"""Solve :math:`(I - \gamma P_\pi) V = r_\pi` to a certified sup-norm error ``tol``.

    Unchecked (the callers validate). ``P_pi`` is a dense ``(S, S)`` array or a scipy.sparse
    matrix. Returns ``(V, bound, method)`` where ``bound`` is the certificate of
    ``residual_bound`` (rounding included) and ``method`` is ``"exact"``
    (:math:`\gamma = 0`), ``"gmres"`` (restarted GMRES, Saad and Schultz 1986: only products
    with :math:`P_\pi`, accepted when the certificate holds), ``"direct"`` (dense LU) or
    ``"splu"`` (sparse LU, SuperLU). A direct solve is refined twice at most, reusing its
    factorization. If ``tol`` is below the floating-point floor even then, a
    ``RuntimeWarning`` states the bound achieved. ``n_terms``, ``model_error``, ``r_error`` and
    ``row_error`` as in ``residual_bound``.

    Raises
    ------
    OverflowError
        If the values overflow float64.
    """
    n = max_row_nnz(P_pi) if n_terms is None else n_terms
    e_row = row_sum_error(P_pi) if row_error is None else row_error

    def certify(V: FloatArray) -> float:
        check_finite_result("policy evaluation", V)
        return residual_bound(
            P_pi,
            r_pi,
            gamma,
            V,
            n_terms=n,
            model_error=model_error,
            r_error=r_error,
            row_error=e_row,
        )

    def residual(V: FloatArray) -> FloatArray:
        out: FloatArray = r_pi + gamma * centered_product(P_pi, V)[0] - V
        return out

    # ||res||_inf <= ||res||_2: a GMRES 2-norm residual below tol (1 - gamma) / 2 certifies
    # tol / 2 (plus rounding).
    return certified_solve(
        P_pi,
        r_pi,
        gamma,
        tol,
        bound=certify,
        residual=residual,
        gmres_atol=0.5 * tol * (1.0 - gamma),
        x0=V0,
        what="error bound",
        stacklevel=4,
    )


def certified_solve(
    A: Any,
    b: FloatArray,
    gamma: float,
    tol: float,
    *,
    bound: Callable[[FloatArray], float],
    residual: Callable[[FloatArray], FloatArray],
    gmres_atol: float,
    x0: FloatArray | None = None,
    what: str = "error bound",
    stacklevel: int = 3,
) -> tuple[FloatArray, float, str]:
    r"""Solve :math:`(I - \gamma A) x = b` until the caller's certificate ``bound(x) <= tol``.

    Shared by policy evaluation (``A = P_pi``, sup-norm certificate) and the occupancy
    (``A = P_pi^T``, :math:`\ell_1` certificate). The strategy: ``"exact"`` when
    :math:`\gamma = 0`; for a sparse ``A`` with a narrow band after reverse Cuthill-McKee, a
    banded SuperLU solve (``"splu"``); else, for a sparse or large dense ``A``, restarted GMRES
    to the 2-norm residual ``gmres_atol``, accepted only when ``bound`` certifies it
    (``"gmres"``); otherwise a sparse (``"splu"``) or dense (``"direct"``) LU, refined at most
    twice with ``residual(x)`` (the caller's computed :math:`b - (I - \gamma A) x`), reusing
    the factorization. If ``tol`` is still not met, a ``RuntimeWarning`` states the certified
    ``what`` achieved. Returns ``(x, bound(x), method)``.
    """
    S = b.shape[0]
    if gamma == 0.0:
        return b.copy(), 0.0, "exact"
    sparse_model = is_sparse_matrix(A)
    band_solve = _banded_solver(A, gamma) if sparse_model else None
    if band_solve is None and (sparse_model or S > DIRECT_SOLVE_MAX_STATES):
        x_it = _gmres_values(A, b, gamma, gmres_atol, x0, sparse_model)
        if x_it is not None:
            bound_it = bound(x_it)
            if bound_it <= tol:
                return x_it, bound_it, "gmres"
    if band_solve is not None:
        solve = band_solve
        method = "splu"
    elif sparse_model:
        M_sp = scipy_sparse.csc_array(scipy_sparse.eye_array(S, format="csc") - gamma * A)
        solve_sp = splu(M_sp).solve

        def solve(rhs: FloatArray) -> FloatArray:
            out: FloatArray = np.asarray(solve_sp(rhs), dtype=np.float64)
            return out

        method = "splu"
    else:
        lu = lu_factor(np.eye(S) - gamma * A, check_finite=False)

        def solve(rhs: FloatArray) -> FloatArray:
            out: FloatArray = np.asarray(lu_solve(lu, rhs, check_finite=False), dtype=np.float64)
            return out

        method = "direct"
    with np.errstate(over="ignore", invalid="ignore"):
        x = solve(b)
    achieved = bound(x)
    for _ in range(2):  # iterative refinement against rounding, rarely needed
        if achieved <= tol:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            x = x + solve(residual(x))
        achieved = bound(x)
    if achieved > tol:
        warnings.warn(
            f"tol={tol:.3g} is below the floating-point floor of this model; "
            f"the certified {what} is {achieved:.3g}",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
    return x, achieved, method


#: A sparse chain is factored directly (before GMRES is tried) when the band of width b it
#: has after a reverse Cuthill-McKee ordering costs at most this many flops (S b^2) ...
BANDED_FLOPS_MAX = 200_000_000
#: ... and holds at most this many entries (S (2 b + 1)).
BANDED_FILL_MAX = 20_000_000


def _banded_solver(P_pi: Any, gamma: float) -> Any:
    """A sparse-LU solve of ``(I - gamma P_pi) x = b`` if the factors are cheap, else ``None``.

    The matrix is reordered by reverse Cuthill-McKee; if the reordered band is narrow (chains,
    grids, gridworlds), the LU factors fit in the band and cost little, and a direct solve
    is accurate entry by entry (GMRES is accurate only in norm, which matters to policy
    iteration when values decay by many orders of magnitude along a chain).
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    S = P_pi.shape[0]
    M = scipy_sparse.csr_array(scipy_sparse.eye_array(S, format="csr") - gamma * P_pi)
    perm = reverse_cuthill_mckee(scipy_sparse.csr_array(M + M.T), symmetric_mode=True)
    Mp = scipy_sparse.csc_array(M[perm][:, perm])
    coo = Mp.tocoo()
    band = int(np.max(np.abs(coo.row - coo.col))) if coo.nnz else 0
    if S * (2 * band + 1) > BANDED_FILL_MAX or S * band * band > BANDED_FLOPS_MAX:
        return None
    lu = splu(Mp, permc_spec="NATURAL")
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(S)

    def solve(b: FloatArray) -> FloatArray:
        out: FloatArray = np.asarray(lu.solve(b[perm]), dtype=np.float64)[inverse]
        return out

    return solve


def _gmres_values(
    A: Any,
    b: FloatArray,
    gamma: float,
    atol: float,
    x0: FloatArray | None,
    sparse_model: bool = False,
) -> FloatArray | None:
    """Restarted GMRES on ``(I - gamma A) x = b`` to the 2-norm residual ``atol``; ``None``
    when the data are not finite or GMRES breaks down.
    """
    S = b.shape[0]
    if not np.all(np.isfinite(b)) or (x0 is not None and not np.all(np.isfinite(x0))):
        return None

    def matvec(v: FloatArray) -> FloatArray:
        x = np.ravel(v)
        out: FloatArray = x - gamma * np.asarray(A @ x)
        return out

    op = LinearOperator((S, S), matvec=matvec, dtype=np.float64)
    # The caller's atol turns a 2-norm residual into its certificate. Dense: an LU solve
    # takes about as long as S / 17 products with A
    # (BLAS-3 against memory-bound BLAS-2), so GMRES gives up after about S / 30 products.
    # Sparse: a product costs O(nnz) and SuperLU's fill-in is unknown, so allow 300 products.
    budget = 300 if sparse_model else max(30, S // 30)
    restart = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow shows up as a non-finite x
        x, info = gmres(
            op,
            b,
            x0=x0,
            rtol=0.0,
            atol=atol,
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

        \|V - V^\pi\|_\infty \le \frac{\|T^\pi V - V\|_\infty + \rho}{1 - \gamma}
        \le \mathrm{tol},

    which holds because :math:`(I - \gamma P_\pi)(V - V^\pi) = V - T^\pi V` and
    :math:`\|(I - \gamma P_\pi)^{-1}\|_\infty = 1/(1 - \gamma)`; :math:`\rho` bounds the
    rounding error of the computed residual (``rounding_bound``); then
    :math:`\|Q - Q^\pi\|_\infty \le \gamma\,\mathrm{tol}` up to the rounding of one more
    product. Sparse models whose chain has a narrow band after a reverse Cuthill-McKee
    ordering (chains, grids, gridworlds) are factored in the band by SuperLU; other sparse
    models are solved by GMRES (Saad and Schultz 1986), or by a sparse LU when GMRES does
    not certify ``tol`` within 300 products; dense models with more than
    ``DIRECT_SOLVE_MAX_STATES`` states by GMRES with a dense-LU fallback; smaller ones by
    dense LU. If rounding makes ``tol`` unreachable even by the refined direct solve, a
    ``RuntimeWarning`` states the bound achieved.
    Book: eq-bell-qpi-fixed.
    Source: Puterman (1994), sec. 6.1.

    Parameters
    ----------
    mdp : TabularMDP
        The model (dense or sparse).
    pi : array, shape (S, A)
        Policy ``pi[s, a]``; rows sum to 1 (within 1e-8; they are renormalized).
    tol : float, optional
        Guaranteed bound on :math:`\|V - V^\pi\|_\infty` (default 1e-10), rounding
        included. It cannot be met below the floor :math:`\rho / (1 - \gamma)`, of order
        :math:`n u \|V\|_\infty / (1 - \gamma)` with :math:`n` the largest number of next
        states of a row of :math:`P_\pi`.

    Returns
    -------
    V : array, shape (S,)
    Q : array, shape (S, A)

    Raises
    ------
    OverflowError
        If the values overflow float64 (rewards too large for this discount).
    """
    mdp = check_mdp(mdp)
    pia = mdp.check_policy(pi)
    t = check_positive_real("tol", tol)
    P_pi, r_pi = policy_model(mdp, pia)
    stochastic = not np.array_equal(pia.max(axis=1), np.ones(mdp.n_states))
    # a mixed P_pi carries a relative rounding error of at most A u, a mixed r_pi A u |R|
    model_error = 1.01 * mdp.n_actions * UNIT_ROUNDOFF if stochastic else 0.0
    r_error = model_error * _sup(mdp.R)
    # a deterministic policy's rows are rows of P, whose row sums the model knows
    row_error = row_sum_error(P_pi) if stochastic else mdp.row_sum_error
    V, _, _ = solve_policy_values(
        P_pi,
        r_pi,
        mdp.gamma,
        t,
        model_error=model_error,
        r_error=r_error,
        row_error=row_error,
    )
    Q = check_finite_result("Q^pi", lookahead(mdp, V))
    return V, Q
