"""Tests of rlnotes.dp.lp: the MDP as a linear program (HiGHS), and constrained MDPs."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sps

import rlnotes.dp.lp as lp
from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.dp.bellman import policy_evaluation
from rlnotes.dp.lp import solve_constrained_lp, solve_lp
from rlnotes.dp.occupancy import flow_constraints, occupancy, policy_from_occupancy
from rlnotes.dp.planning import PlanningResult, policy_iteration

ENVS = [("FrozenLake-v1", 0.95), ("CliffWalking-v1", 0.95), ("Taxi-v4", 0.95)]


@pytest.fixture(scope="module", params=ENVS, ids=[e[0] for e in ENVS])
def env_mdp(request: pytest.FixtureRequest) -> tuple[TabularMDP, PlanningResult]:
    name, gamma = request.param
    mdp = TabularMDP.from_gymnasium(gym.make(name), gamma)
    return mdp, policy_iteration(mdp, tol=1e-10)


@pytest.mark.parametrize("primal", [True, False])
def test_lp_agrees_with_policy_iteration(
    env_mdp: tuple[TabularMDP, PlanningResult], primal: bool
) -> None:
    mdp, ref = env_mdp
    uniform = np.full(mdp.n_states, 1.0 / mdp.n_states)
    res = solve_lp(mdp, primal=primal, weights=uniform)
    assert np.max(np.abs(res.V - ref.V)) < 1e-8
    assert res.error_bound < 1e-8
    assert res.objective == pytest.approx(float(uniform @ ref.V), abs=1e-8)
    # the LP's policy is optimal: its exact values are V*
    V_pi, _ = policy_evaluation(mdp, res.policy)
    assert np.max(np.abs(V_pi - ref.V)) < 1e-8


@pytest.mark.parametrize("primal", [True, False])
def test_lp_with_mu0_pins_values_on_reached_states(
    env_mdp: tuple[TabularMDP, PlanningResult], primal: bool
) -> None:
    mdp, ref = env_mdp
    res = solve_lp(mdp, primal=primal)
    assert res.objective == pytest.approx(float(mdp.mu0 @ ref.V), abs=1e-8)
    assert np.max(np.abs(res.V - ref.V)[res.reached]) < 1e-8
    assert (res.V >= ref.V - 1e-8).all()  # dual feasibility: V >= V* everywhere
    # the bound is honest: it covers the error on every state
    assert np.max(np.abs(res.V - ref.V)) <= res.error_bound
    # the policy is optimal from mu0, and its occupancy is the LP solution
    V_pi, _ = policy_evaluation(mdp, res.policy)
    assert float(mdp.mu0 @ V_pi) == pytest.approx(float(mdp.mu0 @ ref.V), abs=1e-8)
    _, rho = occupancy(mdp, res.policy)
    assert np.abs(rho - res.occupancy).sum() < 1e-8


def test_lp_vertices_are_deterministic_policies_and_round_trip() -> None:
    mdp = random_mdp(8, 3, 0.9, seed=11)
    rng = np.random.default_rng(12)
    M, b = flow_constraints(mdp)
    for _ in range(10):
        costs = rng.normal(size=(8, 3))
        res = solve_lp(TabularMDP(P=mdp.P, R=costs, gamma=0.9))
        rho = res.occupancy
        pi = policy_from_occupancy(mdp, rho)
        assert set(np.unique(np.round(pi, 12))) <= {0.0, 1.0}  # a vertex: deterministic
        _, back = occupancy(mdp, pi)
        assert np.abs(back - rho).sum() < 1e-9
        # a basic solution: its support columns of M are linearly independent
        support = np.flatnonzero(rho.ravel() > 1e-12)
        assert np.linalg.matrix_rank(M.toarray()[:, support]) == support.size
        assert np.abs(M @ rho.ravel() - b).sum() < 1e-9


def test_lp_dense_and_sparse_models_agree() -> None:
    sparse = random_mdp(30, 3, 0.9, seed=5, branching=3)
    dense = sparse.to_dense() if sparse.is_sparse else sparse
    a = solve_lp(sparse, weights=np.full(30, 1 / 30))
    b = solve_lp(dense, weights=np.full(30, 1 / 30))
    assert np.max(np.abs(a.V - b.V)) < 1e-10


def test_result_is_read_only() -> None:
    res = solve_lp(random_mdp(4, 2, 0.5, seed=0))
    with pytest.raises(ValueError):
        res.V[0] = 1.0
    with pytest.raises(ValueError):
        res.occupancy[0, 0] = 1.0


# -- constrained MDPs -----------------------------------------------------------------------


def _all_deterministic(mdp: TabularMDP, cost: np.ndarray) -> list[tuple[float, float]]:
    out = []
    S, A = mdp.n_states, mdp.n_actions
    for acts in itertools.product(range(A), repeat=S):
        pi = np.eye(A)[list(acts)]
        _, rho = occupancy(mdp, pi)
        out.append((float(np.sum(rho * mdp.R)), float(np.sum(rho * cost))))
    return out


def test_constrained_lp_beats_every_feasible_deterministic_policy() -> None:
    mdp = random_mdp(4, 2, 0.9, seed=21)
    rng = np.random.default_rng(22)
    cost = rng.uniform(0, 1, size=(4, 2))
    unconstrained = solve_lp(mdp)
    c_star = float(np.sum(unconstrained.occupancy * cost))
    det = _all_deterministic(mdp, cost)
    c_min = min(c for _, c in det)
    budget = 0.5 * (c_min + c_star) if c_star > c_min else c_min + 0.1
    res = solve_constrained_lp(mdp, cost, budget)
    assert res.costs[0] <= budget + 1e-9
    best_det = max(r for r, c in det if c <= budget)
    assert res.objective >= best_det - 1e-9
    # the policy realises the LP's numbers when evaluated independently
    V, _ = policy_evaluation(mdp, res.policy)
    assert float(mdp.mu0 @ V) == pytest.approx(res.objective, abs=1e-8)
    V_c, _ = policy_evaluation(TabularMDP(P=mdp.P, R=cost, gamma=0.9), res.policy)
    assert float(mdp.mu0 @ V_c) == pytest.approx(res.costs[0], abs=1e-8)
    # at most K = 1 state randomises
    randomised = np.sum(np.max(res.policy, axis=1) < 1 - 1e-9)
    assert randomised <= 1
    # strong duality with the multiplier: max_pi eta_{R - lam c} + lam B = optimum
    lam = res.multipliers[0]
    assert lam >= -1e-12
    lag = policy_iteration(TabularMDP(P=mdp.P, R=mdp.R - lam * cost, gamma=0.9), tol=1e-11)
    assert float(mdp.mu0 @ lag.V) + lam * budget == pytest.approx(res.objective, abs=1e-7)


def test_one_state_constrained_mdp_must_randomise() -> None:
    # one state, action 0: reward 1, cost 1; action 1: reward 0, cost 0; budget half the max
    mdp = TabularMDP(P=np.ones((1, 2, 1)), R=np.array([[1.0, 0.0]]), gamma=0.5)
    res = solve_constrained_lp(mdp, [[1.0, 0.0]], 1.0)  # max cost is 1 / (1 - 0.5) = 2
    np.testing.assert_allclose(res.policy, [[0.5, 0.5]], atol=1e-12)
    assert res.objective == pytest.approx(1.0, abs=1e-12)


def test_infeasible_budget_raises_with_highs_status() -> None:
    mdp = random_mdp(3, 2, 0.9, seed=1)
    with pytest.raises(ValueError, match=r"infeasible.*status 2"):
        solve_constrained_lp(mdp, np.ones((3, 2)), 1.0)  # every policy costs 10


def test_failed_lp_raises_with_highs_status(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_linprog(*args: object, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(status=4, message="Numerical difficulties encountered.")

    monkeypatch.setattr(lp, "linprog", fake_linprog)
    with pytest.raises(RuntimeError, match=r"status 4: Numerical difficulties"):
        solve_lp(random_mdp(3, 2, 0.9, seed=1))
    with pytest.raises(RuntimeError, match=r"status 4"):
        solve_lp(random_mdp(3, 2, 0.9, seed=1), primal=False)
    with pytest.raises(RuntimeError, match=r"status 4"):
        solve_constrained_lp(random_mdp(3, 2, 0.9, seed=1), np.ones((3, 2)), 100.0)


def test_a_solution_outside_the_polytope_is_not_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    mdp = random_mdp(3, 2, 0.9, seed=1)

    def fake_linprog(c: np.ndarray, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(
            status=0,
            message="Optimal",
            x=np.ones(6),
            fun=0.0,
            nit=1,
            eqlin=SimpleNamespace(marginals=np.zeros(3)),
        )

    monkeypatch.setattr(lp, "linprog", fake_linprog)
    with pytest.raises(RuntimeError, match="outside the flow polytope"):
        solve_lp(mdp)


# -- hostile inputs -------------------------------------------------------------------------


def test_hostile_arguments() -> None:
    mdp = random_mdp(3, 2, 0.9, seed=1)
    with pytest.raises(TypeError, match="mdp"):
        solve_lp("mdp")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="primal"):
        solve_lp(mdp, primal="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="primal"):
        solve_lp(mdp, primal=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights"):
        solve_lp(mdp, weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="weights"):
        solve_lp(mdp, weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="weights"):
        solve_lp(mdp, weights=[-1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="weights"):
        solve_lp(mdp, weights="uniform")
    with pytest.raises(ValueError, match="costs"):
        solve_constrained_lp(mdp, np.ones((2, 2)), 1.0)
    with pytest.raises(ValueError, match="costs"):
        solve_constrained_lp(mdp, np.full((3, 2), np.nan), 1.0)
    with pytest.raises(ValueError, match="budgets"):
        solve_constrained_lp(mdp, np.ones((3, 2)), [1.0, 2.0])
    with pytest.raises(ValueError, match="budgets"):
        solve_constrained_lp(mdp, np.ones((3, 2)), np.inf)
    with pytest.raises(TypeError, match="budgets"):
        solve_constrained_lp(mdp, np.ones((3, 2)), "ten")


def test_flow_constraints_are_sparse_for_sparse_models() -> None:
    mdp = TabularMDP.from_gymnasium(gym.make("Taxi-v4"), 0.9)
    M, _ = flow_constraints(mdp)
    assert sps.issparse(M)
    assert M.nnz <= 2 * mdp.n_states * mdp.n_actions
