"""Tests of rlnotes.dp.bellman: the operators T^pi and T*, and exact policy evaluation."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlnotes.dp.bellman as bellman
from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, random_mdp, slip_chain
from rlnotes.dp.bellman import bellman_operator, bellman_optimality_operator, policy_evaluation

SETTINGS = settings(max_examples=60, deadline=None)
Case = tuple[TabularMDP, np.ndarray, np.ndarray, np.ndarray]


@st.composite
def mdp_policy_and_tables(draw: st.DrawFn) -> tuple[TabularMDP, np.ndarray, np.ndarray, np.ndarray]:
    S = draw(st.integers(1, 6))
    A = draw(st.integers(1, 4))
    gamma = draw(st.floats(0.0, 0.97))
    seed = draw(st.integers(0, 2**31 - 1))
    sparse = draw(st.booleans())
    mdp = random_mdp(S, A, gamma, seed=seed, branching=min(2, S) if sparse else None)
    rng = np.random.default_rng(seed + 1)
    pi = rng.dirichlet(np.ones(A), size=S)
    Q1 = rng.normal(scale=10.0, size=(S, A))
    Q2 = rng.normal(scale=10.0, size=(S, A))
    return mdp, pi, Q1, Q2


def _loop_T_pi(mdp: TabularMDP, Q: np.ndarray, pi: np.ndarray) -> np.ndarray:
    S, A = mdp.n_states, mdp.n_actions
    out = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            total = mdp.R[s, a]
            for t in range(S):
                total += mdp.gamma * mdp.P[s, a, t] * sum(pi[t, b] * Q[t, b] for b in range(A))
            out[s, a] = total
    return out


def _loop_T_star(mdp: TabularMDP, Q: np.ndarray) -> np.ndarray:
    S, A = mdp.n_states, mdp.n_actions
    out = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            out[s, a] = mdp.R[s, a] + mdp.gamma * sum(
                mdp.P[s, a, t] * max(Q[t, b] for b in range(A)) for t in range(S)
            )
    return out


def _sup(x: np.ndarray) -> float:
    return float(np.max(np.abs(x)))


# -- the operators against plain loops ----------------------------------------------------


@SETTINGS
@given(mdp_policy_and_tables())
def test_operators_match_loops(case: Case) -> None:
    mdp, pi, Q1, _ = case
    np.testing.assert_allclose(bellman_operator(mdp, Q1, pi), _loop_T_pi(mdp, Q1, pi), atol=1e-10)
    np.testing.assert_allclose(
        bellman_optimality_operator(mdp, Q1), _loop_T_star(mdp, Q1), atol=1e-10
    )


# -- contraction (eq-bellman-expectation-op, eq-bellman-optimality-op) ------------------------


@SETTINGS
@given(mdp_policy_and_tables())
def test_contraction_ratio_at_most_gamma(case: Case) -> None:
    mdp, pi, Q1, Q2 = case
    d = _sup(Q1 - Q2)
    slack = 1e-12 * (1.0 + d)
    assert (
        _sup(bellman_operator(mdp, Q1, pi) - bellman_operator(mdp, Q2, pi)) <= mdp.gamma * d + slack
    )
    assert (
        _sup(bellman_optimality_operator(mdp, Q1) - bellman_optimality_operator(mdp, Q2))
        <= mdp.gamma * d + slack
    )


def test_contraction_ratio_is_attained_for_constant_shifts() -> None:
    """A constant shift c gives T Q + gamma c: the bound gamma is tight, so gamma/2 would fail."""
    mdp = random_mdp(5, 3, 0.9, seed=4)
    Q = np.random.default_rng(0).normal(size=(5, 3))
    pi = np.full((5, 3), 1 / 3)
    ratio = _sup(bellman_operator(mdp, Q + 1.0, pi) - bellman_operator(mdp, Q, pi))
    assert ratio == pytest.approx(0.9, abs=1e-12)
    ratio_star = _sup(
        bellman_optimality_operator(mdp, Q + 1.0) - bellman_optimality_operator(mdp, Q)
    )
    assert ratio_star == pytest.approx(0.9, abs=1e-12)


# -- policy evaluation ------------------------------------------------------------------------


@SETTINGS
@given(mdp_policy_and_tables())
def test_policy_evaluation_is_the_fixed_point(case: Case) -> None:
    mdp, pi, _, _ = case
    V, Q = policy_evaluation(mdp, pi)
    np.testing.assert_allclose(bellman_operator(mdp, Q, pi), Q, atol=1e-9)
    np.testing.assert_allclose(V, np.einsum("sa,sa->s", pi, Q), atol=1e-9)


@SETTINGS
@given(mdp_policy_and_tables())
def test_policy_evaluation_agrees_with_iterating_T_pi(case: Case) -> None:
    mdp, pi, Q1, _ = case
    V, Q = policy_evaluation(mdp, pi)
    Qk = Q1
    k = 0
    # ||T^k Q1 - Q^pi|| <= gamma^k ||Q1 - Q^pi||; iterate until that bound is 1e-9.
    start = _sup(Q1 - Q) + 1.0
    while mdp.gamma**k * start > 1e-9:
        Qk = bellman_operator(mdp, Qk, pi)
        k += 1
    np.testing.assert_allclose(Qk, Q, atol=2e-9)


def test_policy_evaluation_closed_form_two_states() -> None:
    # A two-state chain under a fixed action: V = (I - gamma P)^{-1} r by hand.
    P = np.array([[[0.2, 0.8]], [[0.6, 0.4]]])
    R = np.array([[1.0], [-2.0]])
    gamma = 0.5
    mdp = TabularMDP(P=P, R=R, gamma=gamma)
    V, Q = policy_evaluation(mdp, np.ones((2, 1)))
    # (1 - 0.1) V0 - 0.4 V1 = 1 ; -0.3 V0 + (1 - 0.2) V1 = -2
    det = 0.9 * 0.8 - 0.4 * 0.3
    V0 = (1.0 * 0.8 + 0.4 * (-2.0)) / det
    V1 = (0.9 * (-2.0) + 0.3 * 1.0) / det
    np.testing.assert_allclose(V, [V0, V1], atol=1e-14)
    np.testing.assert_allclose(Q[:, 0], [V0, V1], atol=1e-14)


@pytest.mark.parametrize("branching", [None, 3])
@pytest.mark.parametrize("deterministic", [False, True])
def test_policy_evaluation_large_model_uses_certified_krylov(
    branching: int | None, deterministic: bool
) -> None:
    S, A, gamma = bellman.DIRECT_SOLVE_MAX_STATES + 100, 3, 0.99
    mdp = random_mdp(S, A, gamma, seed=5, branching=branching)
    rng = np.random.default_rng(6)
    if deterministic:
        pi = np.eye(A)[rng.integers(0, A, size=S)]
    else:
        pi = rng.dirichlet(np.ones(A), size=S)
    V, Q = policy_evaluation(mdp, pi, tol=1e-10)
    _, bound, method = bellman.solve_policy_values(
        *policy_model(mdp, mdp.check_policy(pi)), gamma, 1e-10
    )
    assert bound <= 1e-10
    if branching is None:  # fast mixing: GMRES succeeds; otherwise it may hand over to LU
        assert method == "gmres"
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.R)
    V_ref = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
    assert _sup(V - V_ref) <= 1e-10 + 1e-12
    np.testing.assert_allclose(Q, mdp.R + gamma * mdp.P @ V_ref, atol=1e-10)


def test_policy_evaluation_falls_back_to_direct_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    S = bellman.DIRECT_SOLVE_MAX_STATES + 10
    mdp = random_mdp(S, 2, 0.95, seed=8)
    pi = np.full((S, 2), 0.5)

    def bad_gmres(*args: object, **kwargs: object) -> np.ndarray:
        return np.zeros(S)  # a wrong answer: the certificate must reject it

    monkeypatch.setattr(bellman, "_gmres_values", bad_gmres)
    V, _ = policy_evaluation(mdp, pi)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    V_ref = np.linalg.solve(np.eye(S) - 0.95 * P_pi, (pi * mdp.R).sum(1))
    assert _sup(V - V_ref) < 1e-10


def test_policy_evaluation_warns_below_the_rounding_floor() -> None:
    mdp = random_mdp(4, 2, 0.9, seed=0)
    with pytest.warns(RuntimeWarning, match="bound"):
        policy_evaluation(mdp, np.full((4, 2), 0.5), tol=1e-300)


def test_gamma_zero_is_immediate_reward() -> None:
    mdp = random_mdp(3, 2, 0.0, seed=2)
    pi = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    V, Q = policy_evaluation(mdp, pi)
    np.testing.assert_array_equal(Q, mdp.R)
    np.testing.assert_allclose(V, (pi * mdp.R).sum(1), atol=1e-15)


# -- validation -------------------------------------------------------------------------------


def test_validation_errors() -> None:
    mdp = random_mdp(3, 2, 0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    Q = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"^Q\b"):
        bellman_operator(mdp, np.zeros((2, 2)), pi)
    with pytest.raises(ValueError, match=r"^Q\b"):
        bellman_optimality_operator(mdp, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match=r"^Q\b"):
        bellman_optimality_operator(mdp, np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="pi"):
        bellman_operator(mdp, Q, np.full((3, 2), 0.7))
    with pytest.raises(ValueError, match="pi"):
        bellman_operator(mdp, Q, np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="pi"):
        policy_evaluation(mdp, np.full((3, 3), 1 / 3))
    for tol in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^tol must"):
            policy_evaluation(mdp, pi, tol=tol)
    for bad in ("a", "1e-3", True, 1e-3 + 0j, None):
        with pytest.raises(TypeError, match="^tol must be a real number"):
            policy_evaluation(mdp, pi, tol=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^pi must hold real numbers"):
        policy_evaluation(mdp, pi.astype(complex))
    with pytest.raises(TypeError, match="^Q must hold real numbers"):
        bellman_optimality_operator(mdp, Q + 1j)
    with pytest.raises(TypeError, match="^mdp must be a TabularMDP"):
        policy_evaluation("mdp", pi)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        policy_evaluation(mdp, pi, 1e-8)  # type: ignore[call-arg]  # tol is keyword-only


# -- the defects of the review (issue 8), each with its exact case ----------------------------


def test_rows_near_one_are_renormalized_before_evaluation() -> None:
    """Rows within 1e-8 of 1 were accepted but kept: with gamma = 1 - 1e-9 a row sum of
    1 + 9e-9 makes gamma * ||P|| > 1, and the values changed sign and size. Renormalized,
    the values are those of the exact chain."""
    gamma = 1.0 - 1e-9
    base = random_mdp(4, 2, 0.5, seed=0)
    P_off = base.P * (1.0 + 9e-9)  # every row sums to 1 + 9e-9, within PROB_ATOL
    mdp = TabularMDP(P=P_off, R=np.abs(base.R), gamma=gamma)
    pi = np.full((4, 2), 0.5)
    V, _ = policy_evaluation(mdp, pi, tol=1e4)  # values ~1e9 at gamma = 1 - 1e-9: a floor
    P_pi = np.einsum("sa,sat->st", pi, base.P)
    r_pi = np.einsum("sa,sa->s", pi, np.abs(base.R))
    V_exact = np.linalg.solve(np.eye(4) - gamma * P_pi, r_pi)
    assert V_exact.min() > 1e8  # positive rewards: huge positive values
    np.testing.assert_allclose(V, V_exact, rtol=1e-6)
    # the unnormalized model, as it was kept before, gives a wrong sign
    V_old = np.linalg.solve(np.eye(4) - gamma * np.einsum("sa,sat->st", pi, P_off), r_pi)
    assert V_old.max() < 0


def test_certificate_includes_rounding_against_exact_arithmetic() -> None:
    """A one-state chain V = r / (1 - gamma): the computed residual is exactly 0 in floating
    point, so a certificate without the rounding term claims error 0 while the true error
    (exact rational arithmetic on the stored floats) is not 0. The certificate covers it."""
    cases = 0
    for gamma in (0.9, 0.99, 0.999, 0.9999, 0.7, 0.3):
        for r in (1.0, 3.0, -7.0, 0.1):
            P_pi, r_pi = np.ones((1, 1)), np.array([r])
            V, bound, _ = bellman.solve_policy_values(P_pi, r_pi, gamma, 1e-3)
            exact = Fraction(r) / (1 - Fraction(gamma))
            err = abs(Fraction(float(V[0])) - exact)
            naive = float(np.max(np.abs(r_pi + gamma * (P_pi @ V) - V))) / (1 - gamma)
            assert float(err) <= bound
            cases += naive == 0.0 and err > 0
    assert cases > 0  # the naive certificate is false somewhere here


def test_certificates_hold_in_exact_arithmetic_near_gamma_one() -> None:
    """A 5-state chain with gamma = 0.9999 and values near 1e4: the certified bound of
    policy_evaluation against V^pi solved exactly in rationals."""
    mdp = random_mdp(5, 2, 0.9999, seed=3)
    pi = np.random.default_rng(4).dirichlet(np.ones(2), size=5)
    V, bound, _ = bellman.solve_policy_values(
        *policy_model(mdp, mdp.check_policy(pi)), mdp.gamma, 1e-6
    )
    S = 5
    F = Fraction
    pi_r = mdp.check_policy(pi)
    A = [
        [
            F(int(i == j))
            - F(mdp.gamma) * sum(F(float(pi_r[i, a])) * F(float(mdp.P[i, a, j])) for a in range(2))
            for j in range(S)
        ]
        for i in range(S)
    ]
    b = [F(sum(F(float(pi_r[i, a])) * F(float(mdp.R[i, a])) for a in range(2))) for i in range(S)]
    x = _fraction_solve(A, b)
    err = max(abs(F(float(V[i])) - x[i]) for i in range(S))
    assert float(err) <= bound <= 1e-6


def _fraction_solve(A: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    n = len(b)
    M = [row[:] + [b[i]] for i, row in enumerate(A)]
    for k in range(n):
        piv = next(i for i in range(k, n) if M[i][k] != 0)
        M[k], M[piv] = M[piv], M[k]
        for i in range(n):
            if i != k and M[i][k] != 0:
                f = M[i][k] / M[k][k]
                M[i] = [x - f * y for x, y in zip(M[i], M[k], strict=True)]
    return [M[i][n] / M[i][i] for i in range(n)]


def test_overflow_raises() -> None:
    big = TabularMDP(P=np.full((2, 1, 2), 0.5), R=np.full((2, 1), 1e308), gamma=0.9)
    with pytest.raises(OverflowError, match="overflowed"):
        policy_evaluation(big, np.ones((2, 1)))
    with pytest.raises(OverflowError, match="overflowed"):
        bellman_optimality_operator(big, np.full((2, 1), 1e308))
    with pytest.raises(OverflowError, match="overflowed"):
        bellman_operator(big, np.full((2, 1), 1e308), np.ones((2, 1)))
    sparse = big.to_sparse()
    with pytest.raises(OverflowError, match="overflowed"):
        policy_evaluation(sparse, np.ones((2, 1)))


# -- sparse models ------------------------------------------------------------------------------


@SETTINGS
@given(mdp_policy_and_tables())
def test_sparse_and_dense_agree(case: Case) -> None:
    mdp, pi, Q1, _ = case
    sp = mdp.to_sparse()
    np.testing.assert_allclose(
        bellman_operator(sp, Q1, pi), bellman_operator(mdp, Q1, pi), atol=1e-12
    )
    np.testing.assert_allclose(
        bellman_optimality_operator(sp, Q1), bellman_optimality_operator(mdp, Q1), atol=1e-12
    )
    V_s, Q_s = policy_evaluation(sp, pi)
    V_d, Q_d = policy_evaluation(mdp, pi)
    np.testing.assert_allclose(V_s, V_d, rtol=0, atol=1e-10)
    np.testing.assert_allclose(Q_s, Q_d, rtol=0, atol=1e-10)


@pytest.mark.parametrize("deterministic", [True, False])
def test_sparse_policy_evaluation_large(deterministic: bool) -> None:
    """A banded chain is factored (SuperLU in the band), a random sparse graph goes to GMRES;
    both agree with the dense solve to 1e-10."""
    rng = np.random.default_rng(0)
    for mdp, method in (
        (slip_chain(1500, 0.99), "splu"),
        (random_mdp(1500, 2, 0.99, seed=1, branching=3, sparse=True), "gmres"),
    ):
        S = mdp.n_states
        pi = np.eye(2)[rng.integers(0, 2, S)] if deterministic else rng.dirichlet([1, 1], S)
        V, Q = policy_evaluation(mdp, pi, tol=1e-10)
        P_pi, r_pi = policy_model(mdp, mdp.check_policy(pi))
        _, bound, used = bellman.solve_policy_values(P_pi, r_pi, mdp.gamma, 1e-10)
        assert used == method and bound <= 1e-10
        dense = mdp.to_dense()
        P_d = np.einsum("sa,sat->st", mdp.check_policy(pi), dense.P)
        V_ref = np.linalg.solve(np.eye(S) - mdp.gamma * P_d, r_pi)
        assert _sup(V - V_ref) <= 1e-10
        V_dense, _ = policy_evaluation(dense, pi, tol=1e-10)
        assert _sup(V - V_dense) <= 1e-10


def test_rounding_bounds_are_documented_quantities() -> None:
    u = 2.0**-53
    assert bellman.UNIT_ROUNDOFF == u
    assert bellman.rounding_bound(3, 0.9, 10.0, 1.0) == pytest.approx(1.01 * u * (6 * 10.0 + 10.0))
    assert bellman.contraction_gap(0.9, 3) == pytest.approx(0.1 - 0.9 * 4 * u, rel=1e-15)
    assert bellman.contraction_gap(0.9, 3, row_error=0.0) == pytest.approx(0.1, rel=1e-15)
    mdp = random_mdp(6, 2, 0.9, seed=0)
    v = np.random.default_rng(1).normal(size=6) + 100.0
    Q, rho = bellman.certified_lookahead(mdp, v)
    np.testing.assert_allclose(Q, mdp.R + 0.9 * mdp.P @ v, rtol=0, atol=rho)
    # centered: rho scales with the spread of v, not with its size 100
    assert rho < bellman.rounding_bound(6, 0.9, float(np.abs(v).max()), 1.0)
