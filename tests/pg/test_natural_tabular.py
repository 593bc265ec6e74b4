"""The tabular natural policy gradient in closed form (rlnotes.pg.natural_tabular)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.pg.natural_tabular import npg_update, softmax_fisher, softmax_policy_gradient


def softmax(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max(axis=1, keepdims=True))
    pi: np.ndarray = z / z.sum(axis=1, keepdims=True)
    return pi


def soft_values(
    mdp: TabularMDP, pi: np.ndarray, tau: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V_tau, Q_tau and the normalized discounted state distribution d, by linear solves."""
    S = mdp.n_states
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = (pi * (mdp.R - tau * np.log(pi))).sum(axis=1)
    V = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, r_pi)
    Q = mdp.R + mdp.gamma * mdp.P @ V
    d = (1 - mdp.gamma) * np.linalg.solve((np.eye(S) - mdp.gamma * P_pi).T, mdp.mu0)
    return V, Q, d


def objective(mdp: TabularMDP, theta: np.ndarray, tau: float) -> float:
    V, _, _ = soft_values(mdp, softmax(theta), tau)
    return float(mdp.mu0 @ V)


@pytest.fixture
def setup() -> tuple[TabularMDP, np.ndarray]:
    mdp = random_mdp(5, 3, gamma=0.9, seed=0)
    theta = np.random.default_rng(1).normal(size=(5, 3))
    return mdp, theta


def test_fisher_is_the_expected_outer_product_of_scores(
    setup: tuple[TabularMDP, np.ndarray],
) -> None:
    mdp, theta = setup
    pi = softmax(theta)
    d = np.random.default_rng(2).dirichlet(np.ones(5))
    S, A = pi.shape
    F = np.zeros((S * A, S * A))
    for s in range(S):
        for a in range(A):
            score = np.zeros((S, A))
            score[s] = -pi[s]
            score[s, a] += 1.0
            F += d[s] * pi[s, a] * np.outer(score.ravel(), score.ravel())
    assert np.allclose(softmax_fisher(pi, d), F, atol=1e-14)
    assert np.linalg.matrix_rank(F) == S * (A - 1)


@pytest.mark.parametrize("tau", [0.0, 0.3])
def test_policy_gradient_matches_finite_differences(
    setup: tuple[TabularMDP, np.ndarray], tau: float
) -> None:
    mdp, theta = setup
    pi = softmax(theta)
    _, Q, d = soft_values(mdp, pi, tau)
    g = softmax_policy_gradient(pi, Q, d, mdp.gamma, tau=tau)
    h = 1e-6
    fd = np.zeros_like(theta)
    for idx in np.ndindex(*theta.shape):
        e = np.zeros_like(theta)
        e[idx] = h
        fd[idx] = (objective(mdp, theta + e, tau) - objective(mdp, theta - e, tau)) / (2 * h)
    assert np.allclose(g, fd, atol=1e-7)


@pytest.mark.parametrize("tau", [0.0, 0.3])
def test_natural_gradient_is_the_soft_advantage(
    setup: tuple[TabularMDP, np.ndarray], tau: float
) -> None:
    mdp, theta = setup
    pi = softmax(theta)
    V, Q, d = soft_values(mdp, pi, tau)
    F = softmax_fisher(pi, d)
    g = softmax_policy_gradient(pi, Q, d, mdp.gamma, tau=tau).ravel()
    adv = (Q - tau * np.log(pi) - V[:, None]) / (1 - mdp.gamma)
    assert np.allclose(F @ adv.ravel(), g, atol=1e-12)
    w = np.linalg.lstsq(F, g, rcond=None)[0].reshape(pi.shape)
    assert np.allclose(w, adv - adv.mean(axis=1, keepdims=True), atol=1e-8)


@pytest.mark.parametrize("tau", [0.0, 0.3])
def test_npg_update_is_the_logit_step(setup: tuple[TabularMDP, np.ndarray], tau: float) -> None:
    mdp, theta = setup
    pi = softmax(theta)
    _, Q, d = soft_values(mdp, pi, tau)
    F = softmax_fisher(pi, d)
    g = softmax_policy_gradient(pi, Q, d, mdp.gamma, tau=tau).ravel()
    eta = 0.2
    w = np.linalg.lstsq(F, g, rcond=None)[0].reshape(pi.shape)
    assert np.allclose(npg_update(pi, Q, eta, mdp.gamma, tau=tau), softmax(theta + eta * w))


def test_npg_with_step_one_minus_gamma_over_tau_is_soft_policy_iteration(
    setup: tuple[TabularMDP, np.ndarray],
) -> None:
    mdp, theta = setup
    tau = 0.5
    pi = softmax(theta)
    _, Q, _ = soft_values(mdp, pi, tau)
    new = npg_update(pi, Q, (1 - mdp.gamma) / tau, mdp.gamma, tau=tau)
    assert np.allclose(new, softmax(Q / tau), atol=1e-12)
    with pytest.raises(ValueError, match="^step_size must be <="):
        npg_update(pi, Q, 2 * (1 - mdp.gamma) / tau, mdp.gamma, tau=tau)


def test_large_step_is_greedy_and_does_not_overflow(setup: tuple[TabularMDP, np.ndarray]) -> None:
    mdp, theta = setup
    pi = softmax(theta)
    _, Q, _ = soft_values(mdp, pi, 0.0)
    new = npg_update(pi, Q, 1e6, mdp.gamma)
    greedy = np.zeros_like(pi)
    greedy[np.arange(5), Q.argmax(axis=1)] = 1.0
    assert np.isfinite(new).all()
    assert np.allclose(new, greedy, atol=1e-12)


def test_zero_probability_actions_stay_zero() -> None:
    pi = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    Q = np.array([[0.0, 1.0, 100.0], [1.0, 0.0, 0.0]])
    new = npg_update(pi, Q, 1.0, 0.5)
    assert new[0, 2] == 0.0
    assert np.allclose(new.sum(axis=1), 1.0)


def test_hostile_inputs() -> None:
    pi = np.full((2, 3), 1 / 3)
    Q = np.zeros((2, 3))
    d = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="^pi must sum"):
        softmax_fisher(np.ones((2, 3)), d)
    with pytest.raises(ValueError, match="^state_weights must have shape"):
        softmax_fisher(pi, np.ones(3) / 3)
    with pytest.raises(ValueError, match="^state_weights must sum"):
        softmax_fisher(pi, np.ones(2))
    with pytest.raises(ValueError, match="^q_values must have shape"):
        softmax_policy_gradient(pi, np.zeros((3, 3)), d, 0.9)
    with pytest.raises(ValueError, match="^q_values (contains inf|must be finite)"):
        npg_update(pi, np.full((2, 3), math.inf), 1.0, 0.9)
    with pytest.raises(ValueError, match="^q_values (contains NaN|must be finite)"):
        npg_update(pi, np.full((2, 3), math.nan), 1.0, 0.9)
    with pytest.raises(ValueError, match="^gamma"):
        npg_update(pi, Q, 1.0, 1.0)
    with pytest.raises(ValueError, match="^step_size"):
        npg_update(pi, Q, 0.0, 0.9)
    with pytest.raises(TypeError, match="^step_size"):
        npg_update(pi, Q, True, 0.9)
    with pytest.raises(ValueError, match="^tau"):
        npg_update(pi, Q, 0.1, 0.9, tau=-1.0)
    with pytest.raises(TypeError, match="^tau"):
        npg_update(pi, Q, 0.1, 0.9, tau="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^pi must have strictly positive"):
        npg_update(np.array([[1.0, 0.0, 0.0]] * 2), Q, 0.01, 0.9, tau=0.1)
