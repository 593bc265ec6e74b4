"""Tests of rlnotes.dp.occupancy: occupancy measures, the flow polytope, the bijection with
policies, and the performance-difference lemma."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sps
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes.core.markov import policy_model
from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.dp.bellman import policy_evaluation
from rlnotes.dp.occupancy import (
    flow_constraints,
    occupancy,
    occupancy_bound,
    performance_difference,
    policy_from_occupancy,
    surrogate_objective,
)

SETTINGS = settings(max_examples=40, deadline=None)
# An MDP and two policies on it, drawn by mdp_and_policies.
Case = tuple[TabularMDP, np.ndarray, np.ndarray]


@st.composite
def mdp_and_policies(draw: st.DrawFn) -> Case:
    S = draw(st.integers(1, 7))
    A = draw(st.integers(1, 4))
    gamma = draw(st.floats(0.0, 0.97))
    seed = draw(st.integers(0, 2**31 - 1))
    sparse = draw(st.booleans())
    mdp = random_mdp(S, A, gamma, seed=seed, branching=min(2, S) if sparse else None)
    rng = np.random.default_rng(seed + 1)
    return mdp, rng.dirichlet(np.ones(A), size=S), rng.dirichlet(np.ones(A), size=S)


def _power_series(mdp: TabularMDP, pi: np.ndarray, n_terms: int) -> np.ndarray:
    """sum_t gamma^t mu0^T P_pi^t by repeated products (an independent route)."""
    P_pi, _ = policy_model(mdp, pi)
    P = P_pi.toarray() if sps.issparse(P_pi) else np.asarray(P_pi)
    d = np.array(mdp.mu0, dtype=float)
    total = np.zeros_like(d)
    for t in range(n_terms):
        total += mdp.gamma**t * d
        d = d @ P
    return total


# -- occupancy ------------------------------------------------------------------------------


@SETTINGS
@given(mdp_and_policies())
def test_occupancy_matches_power_series_and_mass(case: Case) -> None:
    mdp, pi, _ = case
    rho_s, rho_sa = occupancy(mdp, pi)
    n = 1 + int(np.ceil(np.log(1e-14) / np.log(mdp.gamma))) if mdp.gamma > 0 else 1
    ref = _power_series(mdp, pi, n)
    assert np.abs(rho_s - ref).sum() < 1e-8
    assert rho_s.sum() == pytest.approx(1.0 / (1.0 - mdp.gamma), rel=1e-12)
    np.testing.assert_allclose(rho_sa, pi * rho_s[:, None], rtol=1e-15, atol=0)


@SETTINGS
@given(mdp_and_policies())
def test_return_is_linear_in_occupancy(case: Case) -> None:
    mdp, pi, _ = case
    V, _ = policy_evaluation(mdp, pi)
    _, rho_sa = occupancy(mdp, pi)
    assert float(np.sum(rho_sa * mdp.R)) == pytest.approx(float(mdp.mu0 @ V), abs=1e-8)


def test_occupancy_certificate_bounds_the_l1_error() -> None:
    mdp = random_mdp(30, 3, 0.95, seed=3)
    pi = np.random.default_rng(4).dirichlet(np.ones(3), size=30)
    rho, _ = occupancy(mdp, pi)
    P_pi, _ = policy_model(mdp, pi)
    rng = np.random.default_rng(5)
    for scale in (1e-3, 1e-6, 1e-9):
        rho_hat = rho + scale * rng.normal(size=rho.shape)
        err = np.abs(rho_hat - rho).sum()
        bound = occupancy_bound(P_pi, mdp.mu0, mdp.gamma, rho_hat)
        assert err <= bound
        assert bound < 100 * err / (1 - mdp.gamma)  # and not absurdly loose


def test_occupancy_large_dense_and_sparse_agree_with_direct_solve() -> None:
    for branching in (None, 5):
        mdp = random_mdp(600, 3, 0.99, seed=7, branching=branching)
        pi = np.random.default_rng(8).dirichlet(np.ones(3), size=600)
        rho, _ = occupancy(mdp, pi)
        P_pi, _ = policy_model(mdp, pi)
        P = P_pi.toarray() if sps.issparse(P_pi) else P_pi
        ref = np.linalg.solve(np.eye(600) - 0.99 * P.T, mdp.mu0)
        assert np.abs(rho - ref).sum() < 1e-8


def test_occupancy_gamma_zero_is_mu0() -> None:
    mdp = random_mdp(5, 2, 0.0, seed=1)
    rho, _ = occupancy(mdp, np.full((5, 2), 0.5))
    np.testing.assert_array_equal(rho, mdp.mu0)


# -- the flow polytope and the bijection ------------------------------------------------------


@SETTINGS
@given(mdp_and_policies())
def test_occupancy_lies_in_the_flow_polytope(case: Case) -> None:
    mdp, pi, _ = case
    _, rho_sa = occupancy(mdp, pi)
    M, b = flow_constraints(mdp)
    assert sps.issparse(M) and M.shape == (mdp.n_states, mdp.n_states * mdp.n_actions)
    assert np.abs(M @ rho_sa.ravel() - b).sum() < 1e-9
    assert (rho_sa >= 0).all()


def test_flow_constraints_match_a_loop() -> None:
    mdp = random_mdp(4, 3, 0.8, seed=2)
    M, _ = flow_constraints(mdp)
    S, A = 4, 3
    ref = np.zeros((S, S * A))
    for s2 in range(S):
        for s in range(S):
            for a in range(A):
                ref[s2, s * A + a] = (s == s2) - 0.8 * mdp.P[s, a, s2]
    np.testing.assert_allclose(M.toarray(), ref, atol=1e-15)


@SETTINGS
@given(mdp_and_policies())
def test_round_trip_policy_to_occupancy_to_policy(case: Case) -> None:
    mdp, pi, _ = case
    _, rho_sa = occupancy(mdp, pi)
    back = policy_from_occupancy(mdp, rho_sa)
    # mu0 is uniform, so every state is reached and the policy is recovered everywhere
    np.testing.assert_allclose(back, pi, atol=1e-9)


@SETTINGS
@given(mdp_and_policies(), st.floats(0.0, 1.0))
def test_round_trip_mixture_of_occupancies(case: Case, lam: float) -> None:
    mdp, pi1, pi2 = case
    _, r1 = occupancy(mdp, pi1)
    _, r2 = occupancy(mdp, pi2)
    rho = lam * r1 + (1 - lam) * r2
    pi = policy_from_occupancy(mdp, rho)
    _, back = occupancy(mdp, pi)
    assert np.abs(back - rho).sum() < 1e-8


def _mdp_with_unreachable_state() -> TabularMDP:
    """State 2 is reachable from nowhere and mu0(2) = 0."""
    P = np.zeros((3, 2, 3))
    P[0, 0] = [0.5, 0.5, 0.0]
    P[0, 1] = [0.0, 1.0, 0.0]
    P[1, :] = [1.0, 0.0, 0.0]
    P[2, 0] = [0.0, 0.0, 1.0]
    P[2, 1] = [1.0, 0.0, 0.0]
    R = np.arange(6.0).reshape(3, 2)
    return TabularMDP(P=P, R=R, gamma=0.9, mu0=np.array([1.0, 0.0, 0.0]))


def test_unreached_states_do_not_matter_and_are_filled_as_asked() -> None:
    mdp = _mdp_with_unreachable_state()
    pi_a = np.array([[0.3, 0.7], [1.0, 0.0], [1.0, 0.0]])
    pi_b = np.array([[0.3, 0.7], [1.0, 0.0], [0.0, 1.0]])
    rs_a, ra = occupancy(mdp, pi_a)
    _, rb = occupancy(mdp, pi_b)
    np.testing.assert_allclose(ra, rb, atol=1e-14)
    assert rs_a[2] == 0.0
    uniform = policy_from_occupancy(mdp, ra)
    np.testing.assert_allclose(uniform[:2], pi_a[:2], atol=1e-12)
    np.testing.assert_array_equal(uniform[2], [0.5, 0.5])
    filled = policy_from_occupancy(mdp, ra, unreached=pi_b)
    np.testing.assert_array_equal(filled[2], pi_b[2])
    with pytest.raises(ValueError, match="reaches no mass at 1 state"):
        policy_from_occupancy(mdp, ra, unreached="raise")


# -- the performance-difference lemma and the surrogate --------------------------------------


@SETTINGS
@given(mdp_and_policies())
def test_performance_difference_identity(case: Case) -> None:
    mdp, pi, pi_new = case
    V, _ = policy_evaluation(mdp, pi)
    V_new, _ = policy_evaluation(mdp, pi_new)
    exact = float(mdp.mu0 @ (V_new - V))
    assert performance_difference(mdp, pi, pi_new) == pytest.approx(exact, abs=1e-8)
    assert performance_difference(mdp, pi, pi) == pytest.approx(0.0, abs=1e-9)


@SETTINGS
@given(mdp_and_policies())
def test_surrogate_matches_eta_at_pi_and_to_first_order(case: Case) -> None:
    mdp, pi, pi_new = case
    V, _ = policy_evaluation(mdp, pi)
    assert surrogate_objective(mdp, pi, pi) == pytest.approx(float(mdp.mu0 @ V), abs=1e-8)
    gaps = []
    for eps in (1e-2, 5e-3):
        mix = (1 - eps) * pi + eps * pi_new
        V_mix, _ = policy_evaluation(mdp, mix)
        gaps.append(abs(float(mdp.mu0 @ V_mix) - surrogate_objective(mdp, pi, mix)))
    # second order: halving eps divides the gap by about 4 (allow 3, plus round-off)
    assert gaps[1] <= gaps[0] / 3 + 1e-9


# -- hostile inputs -------------------------------------------------------------------------


def test_rejects_points_outside_the_polytope_with_the_amount() -> None:
    mdp = random_mdp(4, 2, 0.9, seed=0)
    _, rho = occupancy(mdp, np.full((4, 2), 0.5))
    bad = rho.copy()
    bad[0, 0] += 0.25
    # the residual is 0.25 times column (0, 0) of M = E^T - gamma P^T, by a loop
    col = [(s2 == 0) - 0.9 * mdp.P[0, 0, s2] for s2 in range(4)]
    amount = 0.25 * sum(abs(x) for x in col)
    with pytest.raises(ValueError, match=rf"flow constraints.*l1 residual {amount:.3g} "):
        policy_from_occupancy(mdp, bad)
    neg = rho.copy()
    neg[1, 1] = -0.5
    with pytest.raises(ValueError, match=r"non-negative.*rho\[1, 1\] = -0\.5"):
        policy_from_occupancy(mdp, neg)
    scaled = 2 * rho
    with pytest.raises(ValueError, match="flow constraints"):
        policy_from_occupancy(mdp, scaled)
    # tiny rounding is accepted
    policy_from_occupancy(mdp, rho * (1 + 1e-13))


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"rho": "abc"}, TypeError),
        ({"rho": np.ones((4, 3))}, ValueError),
        ({"rho": np.full((4, 2), np.nan)}, ValueError),
        ({"rho": np.full((4, 2), np.inf)}, ValueError),
        ({"rho": np.ones((4, 2), dtype=complex)}, TypeError),
        ({"unreached": "whatever"}, ValueError),
        ({"unreached": None}, TypeError),
        ({"unreached": np.ones((4, 2))}, ValueError),
        ({"tol": -1.0}, ValueError),
        ({"tol": "1e-9"}, TypeError),
    ],
)
def test_policy_from_occupancy_hostile_arguments(
    kwargs: dict[str, Any], exc: type[Exception]
) -> None:
    mdp = random_mdp(4, 2, 0.9, seed=0)
    _, rho = occupancy(mdp, np.full((4, 2), 0.5))
    args = {"rho": rho, **kwargs}
    rho_arg = args.pop("rho")
    with pytest.raises(exc):
        policy_from_occupancy(mdp, rho_arg, **args)


def test_other_functions_reject_junk() -> None:
    mdp = random_mdp(4, 2, 0.9, seed=0)
    pi = np.full((4, 2), 0.5)
    with pytest.raises(TypeError, match="mdp"):
        occupancy("mdp", pi)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mdp"):
        flow_constraints(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pi"):
        occupancy(mdp, np.ones((4, 2)))
    with pytest.raises(ValueError, match="tol"):
        occupancy(mdp, pi, tol=0.0)
    with pytest.raises(TypeError, match="tol"):
        occupancy(mdp, pi, tol=True)
    with pytest.raises(ValueError, match="pi_new"):
        performance_difference(mdp, pi, np.ones((4, 3)) / 3)
    with pytest.raises(ValueError, match="pi_new"):
        surrogate_objective(mdp, pi, -pi)


def test_occupancy_bound_validates_and_accepts_sparse() -> None:
    mdp = random_mdp(5, 2, 0.9, seed=0, branching=2)
    pi = np.full((5, 2), 0.5)
    rho, _ = occupancy(mdp, pi)
    P_pi, _ = policy_model(mdp, pi)
    dense = P_pi.toarray() if sps.issparse(P_pi) else P_pi
    b_dense = occupancy_bound(dense, mdp.mu0, 0.9, rho)
    b_sparse = occupancy_bound(sps.csr_array(dense), mdp.mu0, 0.9, rho)
    assert b_dense == pytest.approx(b_sparse, rel=1e-6) and b_dense < 1e-8
    with pytest.raises(TypeError, match="P_pi"):
        occupancy_bound("P", mdp.mu0, 0.9, rho)
    with pytest.raises(ValueError, match="P_pi"):
        occupancy_bound(np.ones((5, 4)), mdp.mu0, 0.9, rho)
    with pytest.raises(ValueError, match="P_pi"):
        occupancy_bound(-dense, mdp.mu0, 0.9, rho)
    with pytest.raises(ValueError, match="gamma"):
        occupancy_bound(dense, mdp.mu0, 1.0, rho)
    with pytest.raises(ValueError, match="rho"):
        occupancy_bound(dense, mdp.mu0, 0.9, rho[:3])
    with pytest.raises(TypeError, match="n_terms"):
        occupancy_bound(dense, mdp.mu0, 0.9, rho, n_terms=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row sums"):
        occupancy_bound(2 * dense, mdp.mu0, 0.9, rho)


def test_occupancy_of_a_star_chain_where_the_sup_norm_certificate_fails() -> None:
    # every state moves to state 0: the column sums of (I - gamma P_pi)^{-1} reach about
    # S gamma / (1 - gamma), so only an l1 certificate is honest; closed form below
    S, gamma = 500, 0.95  # above DIRECT_SOLVE_MAX_STATES: the iterative path
    P = np.zeros((S, 2, S))
    P[:, :, 0] = 1.0
    mu0 = np.full(S, 1.0 / S)
    exact = mu0.copy()
    exact[0] = 1.0 / (1.0 - gamma) - (1.0 - mu0[0])  # s != 0 is visited only at t = 0
    pi = np.random.default_rng(0).dirichlet(np.ones(2), size=S)
    for model in (P, sps.csr_array(P.reshape(2 * S, S))):
        mdp = TabularMDP(P=model, R=np.zeros((S, 2)), gamma=gamma, mu0=mu0)
        rho, _ = occupancy(mdp, pi, tol=1e-9)
        assert np.abs(rho - exact).sum() <= 1e-9


def test_occupancy_warns_when_tol_is_below_the_rounding_floor() -> None:
    mdp = random_mdp(20, 3, 0.99, seed=1)
    pi = np.random.default_rng(2).dirichlet(np.ones(3), size=20)
    with pytest.warns(RuntimeWarning, match="floor"):
        rho, _ = occupancy(mdp, pi, tol=1e-17)
    ref, _ = occupancy(mdp, pi)
    assert np.abs(rho - ref).sum() < 1e-8


def test_occupancy_of_a_sparse_chain_uses_the_banded_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.sparse.linalg import spsolve

    from rlnotes.dp import bellman

    S, gamma = 3000, 0.99
    rows, cols = [], []
    for s in range(S):  # action 0 steps left, action 1 steps right (walls at the ends)
        rows += [2 * s, 2 * s + 1]
        cols += [max(s - 1, 0), min(s + 1, S - 1)]
    P = sps.csr_array((np.ones(2 * S), (rows, cols)), shape=(2 * S, S))
    mdp = TabularMDP(P=P, R=np.zeros((S, 2)), gamma=gamma, mu0=np.full(S, 1.0 / S))
    pi = np.random.default_rng(3).dirichlet(np.ones(2), size=S)

    def no_gmres(*args: object, **kwargs: object) -> None:
        raise AssertionError("a narrow-band sparse chain must be factored in the band")

    monkeypatch.setattr(bellman, "_gmres_values", no_gmres)
    rho, _ = occupancy(mdp, pi, tol=1e-9)
    P_pi, _ = policy_model(mdp, pi)
    ref = spsolve(sps.csc_array(sps.eye_array(S) - gamma * P_pi.T), mdp.mu0)
    assert np.abs(rho - ref).sum() < 1e-9
    assert occupancy_bound(P_pi, mdp.mu0, gamma, rho) <= 1e-9
