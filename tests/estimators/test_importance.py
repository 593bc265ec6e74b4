"""Tests of rlnotes.estimators.importance against exact values of tabular MDPs."""

from __future__ import annotations

import numpy as np
import pytest

from rlnotes.core.mdp import random_mdp
from rlnotes.estimators.importance import (
    importance_ratios,
    ordinary_is_values,
    per_decision_is_values,
)
from rlnotes.pg.baselines import finite_horizon_values
from rlnotes.pg.trajectories import enumerate_trajectories, sample_trajectories


def _policies(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(2), size=3)
    b = rng.dirichlet(3 * np.ones(2), size=3)
    return pi, b


@pytest.mark.parametrize("gamma", [1.0, 0.8])
def test_both_estimators_are_unbiased_by_exact_enumeration(gamma: float) -> None:
    mdp = random_mdp(3, 2, 0.9, seed=4)
    pi, b = _policies(4)
    H = 4
    traj = enumerate_trajectories(mdp, b, H)  # trajectories of the behaviour policy
    assert traj.prob is not None
    p = pi[traj.states, traj.actions]
    q = b[traj.states, traj.actions]
    V, _ = finite_horizon_values(mdp, pi, H, gamma)  # exact V_t of the target policy
    exact = float(mdp.mu0 @ V[0])
    for f in (ordinary_is_values, per_decision_is_values):
        est = f(traj.rewards, p, q, gamma)
        assert est.shape == (traj.prob.shape[0],)
        assert abs(float(traj.prob @ est) - exact) < 1e-12
    var_is = float(traj.prob @ (ordinary_is_values(traj.rewards, p, q, gamma) - exact) ** 2)
    var_pd = float(traj.prob @ (per_decision_is_values(traj.rewards, p, q, gamma) - exact) ** 2)
    assert var_pd > 0 and var_is > 0


@pytest.mark.parametrize("gamma", [1.0, 0.7])
def test_per_decision_variance_matches_the_second_moment_recursion(gamma: float) -> None:
    # V_t = rho_t (r_t + gamma V_{t+1}) gives E[V_0^2] by a backward recursion over states,
    # a route independent of the enumeration of trajectories
    mdp = random_mdp(3, 2, 0.9, seed=6)
    pi, b = _policies(6)
    H = 4
    V, _ = finite_horizon_values(mdp, pi, H, gamma)
    S = np.zeros(3)
    for t in reversed(range(H)):
        EV, ES = mdp.P @ V[t + 1], mdp.P @ S
        S = (pi**2 / b * (mdp.R**2 + 2 * gamma * mdp.R * EV + gamma**2 * ES)).sum(1)
    var_dp = float(mdp.mu0 @ S) - float(mdp.mu0 @ V[0]) ** 2
    traj = enumerate_trajectories(mdp, b, H)
    assert traj.prob is not None
    est = per_decision_is_values(
        traj.rewards, pi[traj.states, traj.actions], b[traj.states, traj.actions], gamma
    )
    mean = float(traj.prob @ est)
    assert abs(float(traj.prob @ (est - mean) ** 2) - var_dp) < 1e-10
    assert var_dp > 0


def test_on_policy_both_reduce_to_the_discounted_return() -> None:
    mdp = random_mdp(3, 2, 0.9, seed=1)
    pi, _ = _policies(1)
    tr = sample_trajectories(mdp, pi, 5, 20, seed=2)
    p = pi[tr.states, tr.actions]
    ret = (0.9 ** np.arange(5)) @ tr.rewards
    np.testing.assert_allclose(ordinary_is_values(tr.rewards, p, p, 0.9), ret, atol=1e-12)
    np.testing.assert_allclose(per_decision_is_values(tr.rewards, p, p, 0.9), ret, atol=1e-12)


def test_hand_computed_episode() -> None:
    r = np.array([[1.0], [2.0], [3.0]])
    p = np.array([[0.5], [1.0], [0.2]])
    q = np.array([[0.25], [0.5], [0.4]])  # ratios 2, 2, 0.5; products 2, 4, 2
    np.testing.assert_allclose(importance_ratios(p, q)[:, 0], [2.0, 4.0, 2.0])
    assert per_decision_is_values(r, p, q, 0.5)[0] == pytest.approx(
        2 * 1 + 0.5 * 4 * 2 + 0.25 * 2 * 3
    )
    assert ordinary_is_values(r, p, q, 0.5)[0] == pytest.approx(2 * (1 + 0.5 * 2 + 0.25 * 3))


def test_invalid_inputs_name_the_argument() -> None:
    r = np.ones((3, 2))
    p = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="rewards"):
        per_decision_is_values(np.ones(3), p, p, 0.9)
    with pytest.raises(ValueError, match="target_probs"):
        per_decision_is_values(r, np.ones((2, 2)), p, 0.9)
    with pytest.raises(ValueError, match="target_probs"):
        ordinary_is_values(r, p * 3, p, 0.9)
    with pytest.raises(ValueError, match="behaviour_probs"):
        per_decision_is_values(r, p, np.zeros((3, 2)), 0.9)
    with pytest.raises(ValueError, match="behaviour_probs"):
        importance_ratios(p, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="rewards"):
        per_decision_is_values(np.full((3, 2), np.inf), p, p, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        ordinary_is_values(r, p, p, 1.5)
    with pytest.raises(TypeError, match="gamma"):
        per_decision_is_values(r, p, p, "0.9")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rewards"):
        per_decision_is_values([["a", "b"]] * 3, p, p, 0.9)
    with pytest.raises(ValueError, match="rewards"):
        per_decision_is_values(np.ones((0, 2)), np.ones((0, 2)), np.ones((0, 2)), 0.9)
    with pytest.raises(ValueError, match="^target_probs"):
        importance_ratios(np.ones((0, 2)), np.ones((0, 2)))
    with pytest.raises(ValueError, match="got values in"):
        per_decision_is_values(r, p, np.full((3, 2), 1.5), 0.9)


def test_overflow_raises() -> None:
    H = 1200
    p = np.ones((H, 1))
    q = np.full((H, 1), 0.5)  # ratio 2 per step: 2**1200 overflows
    with pytest.raises(OverflowError):
        per_decision_is_values(np.ones((H, 1)), p, q, 1.0)
    with pytest.raises(OverflowError):
        importance_ratios(p, q)
