"""Tests of rlnotes.dp.bellman: the operators T^pi and T*, and exact policy evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlnotes.dp.bellman as bellman
from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.dp.bellman import bellman_operator, bellman_optimality_operator, policy_evaluation

SETTINGS = settings(max_examples=60, deadline=None)


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
def test_operators_match_loops(case: tuple) -> None:
    mdp, pi, Q1, _ = case
    np.testing.assert_allclose(bellman_operator(mdp, Q1, pi), _loop_T_pi(mdp, Q1, pi), atol=1e-10)
    np.testing.assert_allclose(
        bellman_optimality_operator(mdp, Q1), _loop_T_star(mdp, Q1), atol=1e-10
    )


# -- contraction (eq-bellman-expectation-op, eq-bellman-optimality-op) ------------------------


@SETTINGS
@given(mdp_policy_and_tables())
def test_contraction_ratio_at_most_gamma(case: tuple) -> None:
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
def test_policy_evaluation_is_the_fixed_point(case: tuple) -> None:
    mdp, pi, _, _ = case
    V, Q = policy_evaluation(mdp, pi)
    np.testing.assert_allclose(bellman_operator(mdp, Q, pi), Q, atol=1e-9)
    np.testing.assert_allclose(V, np.einsum("sa,sa->s", pi, Q), atol=1e-9)


@SETTINGS
@given(mdp_policy_and_tables())
def test_policy_evaluation_agrees_with_iterating_T_pi(case: tuple) -> None:
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
    with pytest.raises(ValueError, match="Q"):
        bellman_operator(mdp, np.zeros((2, 2)), pi)
    with pytest.raises(ValueError, match="Q"):
        bellman_optimality_operator(mdp, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="Q"):
        bellman_optimality_operator(mdp, np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="pi"):
        bellman_operator(mdp, Q, np.full((3, 2), 0.7))
    with pytest.raises(ValueError, match="pi"):
        bellman_operator(mdp, Q, np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="pi"):
        policy_evaluation(mdp, np.full((3, 3), 1 / 3))
    for tol in (0.0, -1.0, float("nan"), float("inf"), "a"):
        with pytest.raises(ValueError, match="tol"):
            policy_evaluation(mdp, pi, tol=tol)  # type: ignore[arg-type]
