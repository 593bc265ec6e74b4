"""Tests of rlnotes.td.linear_q: linear Q-learning and SARSA with the max."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlnotes.core.markov import stationary_distribution
from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.td.linear import td_fixed_point
from rlnotes.td.linear_q import (
    epsilon_greedy_policy,
    expected_linear_q_learning,
    expected_linear_sarsa,
    linear_q_learning_field,
    linear_q_learning_update,
    linear_q_td_error,
    q_loss_directional_derivative,
)


def _instance(
    seed: int, S: int = 4, A: int = 3, K: int = 2
) -> tuple[TabularMDP, np.ndarray, np.ndarray]:
    mdp = random_mdp(S, A, 0.9, seed=seed)
    rng = np.random.default_rng(seed + 100)
    phi = rng.standard_normal((S, A, K))
    d = rng.dirichlet(np.ones(S * A)).reshape(S, A)
    return mdp, phi, d


def _diverging_mdp(q: float = 0.1, gamma: float = 0.9) -> tuple[TabularMDP, np.ndarray, np.ndarray]:
    P = np.zeros((2, 2, 2))
    P[0, :, 1] = 1.0
    P[1, :, 0] = 1.0
    mdp = TabularMDP(P, np.zeros((2, 2)), gamma)
    phi = np.zeros((2, 2, 1))
    phi[0, :, 0] = 1.0
    phi[1, 0, 0] = 2.0
    mu = np.array([[0.5, 0.5], [q, 1 - q]])
    d_s = stationary_distribution(np.einsum("sa,sat->st", mu, P))
    return mdp, phi, d_s[:, None] * mu


@pytest.mark.parametrize("seed", range(5))
def test_field_is_the_average_of_sampled_updates(seed: int) -> None:
    mdp, phi, d = _instance(seed)
    w = np.random.default_rng(seed).standard_normal(2)
    alpha = 0.1
    avg = np.zeros(2)
    for s, a, t in itertools.product(range(4), range(3), range(4)):
        new = linear_q_learning_update(w, phi[s, a], mdp.R[s, a], phi[t], mdp.gamma, alpha)
        avg += d[s, a] * mdp.P[s, a, t] * (new - w) / alpha
    np.testing.assert_allclose(linear_q_learning_field(mdp, phi, d, w), avg, atol=1e-12)
    W = expected_linear_q_learning(mdp, phi, d, w, alpha, 1)
    np.testing.assert_allclose(W[1], w + alpha * avg, atol=1e-12)


def test_td_error_by_hand_and_terminated() -> None:
    w = np.array([1.0, -2.0])
    x = np.array([0.5, 1.0])
    Xn = np.array([[1.0, 0.0], [0.0, -1.0], [2.0, 2.0]])  # values 1, 2, -2: max 2
    assert linear_q_td_error(w, x, 3.0, Xn, 0.5) == pytest.approx(3.0 + 0.5 * 2.0 - (0.5 - 2.0))
    assert linear_q_td_error(w, x, 3.0, Xn, 0.5, terminated=True) == pytest.approx(4.5)
    new = linear_q_learning_update(w, x, 3.0, Xn, 0.5, 0.1, terminated=True)
    np.testing.assert_allclose(new, w + 0.1 * 4.5 * x)


def test_tabular_features_converge_to_q_star() -> None:
    mdp = random_mdp(3, 2, 0.8, seed=3)
    phi = np.eye(6).reshape(3, 2, 6)
    d = np.full((3, 2), 1 / 6)
    W = expected_linear_q_learning(mdp, phi, d, np.zeros(6), 1.0, 3000)
    Q = np.zeros((3, 2))
    for _ in range(2000):  # value iteration by hand
        Q = mdp.R + mdp.gamma * mdp.P @ Q.max(axis=1)
    np.testing.assert_allclose(W[-1].reshape(3, 2), Q, atol=1e-9)


def test_realizable_instance_diverges_for_positive_weights_only() -> None:
    mdp, phi, d = _diverging_mdp()
    c = 0.5 * ((2 * 0.9 - 1) + 2 * 0.1 * (0.9 - 2))
    for w in (0.5, 3.0):
        assert linear_q_learning_field(mdp, phi, d, [w])[0] == pytest.approx(c * w)
    assert linear_q_learning_field(mdp, phi, d, [-1.0])[0] > 0  # back towards 0
    W = expected_linear_q_learning(mdp, phi, d, [1.0], 0.1, 300)
    assert W[-1, 0] > 1e3
    W = expected_linear_q_learning(mdp, phi, d, [-1.0], 0.1, 300)
    assert abs(W[-1, 0]) < 1e-6
    with pytest.raises(OverflowError, match="overflow"):
        expected_linear_q_learning(mdp, phi, d, [1.0], 1.0, 10_000)


def test_directional_derivative_matches_one_sided_differences() -> None:
    rng = np.random.default_rng(7)
    x = np.array([1.0, 0.5])
    Xn = np.array([[1.0, 0.0], [0.0, 1.0]])
    w = np.array([0.7, 0.7])  # a tie at s': both next actions have value 0.7
    r, g = 2.0, 0.9

    def loss(v: np.ndarray) -> float:
        return 0.5 * linear_q_td_error(v, x, r, Xn, g) ** 2

    for _ in range(10):
        u = rng.standard_normal(2)
        h = 1e-7
        fd = (loss(w + h * u) - loss(w)) / h
        assert q_loss_directional_derivative(w, x, r, Xn, g, u) == pytest.approx(fd, abs=1e-5)
    u = np.array([1.0, -1.0])
    plus = q_loss_directional_derivative(w, x, r, Xn, g, u)
    minus = q_loss_directional_derivative(w, x, r, Xn, g, -u)
    assert plus + minus > 0.1  # a kink: no gradient at the tie
    off_tie = np.array([0.9, 0.7])
    plus = q_loss_directional_derivative(off_tie, x, r, Xn, g, u)
    minus = q_loss_directional_derivative(off_tie, x, r, Xn, g, -u)
    assert plus + minus == pytest.approx(0.0, abs=1e-12)
    # with gamma = 0 the max drops out: no kink at the tie although delta != 0
    assert linear_q_td_error(w, x, r, Xn, 0.0) != 0
    plus = q_loss_directional_derivative(w, x, r, Xn, 0.0, u)
    minus = q_loss_directional_derivative(w, x, r, Xn, 0.0, -u)
    assert plus + minus == pytest.approx(0.0, abs=1e-12)


def test_expected_sarsa_band_is_proportional_to_alpha() -> None:
    """Near the tie each expected step moves by about alpha |b|: the band scales with alpha."""
    one = TabularMDP(np.ones((1, 2, 1)), np.array([[1.0, -1.0]]), 0.9)
    phi = np.array([[[1.0], [2.0]]])
    bands = [
        np.abs(expected_linear_sarsa(one, phi, [1.0], al, 2000, epsilon=0.1)[1000:, 0]).max()
        for al in (0.05, 0.025)
    ]
    assert 0.4 < bands[1] / bands[0] < 0.6


def test_epsilon_greedy_splits_ties() -> None:
    pi = epsilon_greedy_policy([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]], 0.3)
    np.testing.assert_allclose(pi, [[0.1 + 0.35, 0.1 + 0.35, 0.1], [0.1, 0.8, 0.1]])
    np.testing.assert_allclose(epsilon_greedy_policy([[0.0, 1.0]], 1.0), [[0.5, 0.5]])


def test_sarsa_chatters_on_the_one_state_instance() -> None:
    mdp = TabularMDP(np.ones((1, 2, 1)), np.array([[1.0, -1.0]]), 0.9)
    phi = np.array([[[1.0], [2.0]]])
    eps = 0.1
    W = expected_linear_sarsa(mdp, phi, [1.0], 0.05, 2000, epsilon=eps)
    tail = W[1000:, 0]
    assert np.abs(tail).max() < 0.2  # stays in a band around 0 ...
    assert (np.diff(np.sign(tail)) != 0).sum() > 100  # ... and crosses it again and again
    # each greedy policy's TD fixed point lies on the other side of w = 0
    for sign in (1.0, -1.0):
        pi = epsilon_greedy_policy(phi[:, :, 0] * sign, eps)
        P_sa = (mdp.P[0, :, 0][:, None] * pi).reshape(2, 2)  # (s, a) -> (s', a') chain
        d_sa = pi.reshape(-1)
        w_pi = td_fixed_point(phi.reshape(2, 1), P_sa, mdp.R.reshape(-1), d_sa, 0.9)
        assert np.sign(w_pi[0]) == -sign


def test_expected_sarsa_is_on_policy_td_for_a_fixed_greedy_region() -> None:
    mdp, phi, _ = _instance(11)
    w = np.array([0.3, -0.2])
    eps = 0.2
    pi = epsilon_greedy_policy(phi @ w, eps)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    d = stationary_distribution(P_pi)[:, None] * pi
    P_sa = np.einsum("sat,tb->satb", mdp.P, pi).reshape(12, 12)
    step = expected_linear_sarsa(mdp, phi, w, 0.1, 1, epsilon=eps)[1]
    from rlnotes.td.linear import td_matrices

    A, b = td_matrices(phi.reshape(12, 2), P_sa, mdp.R.reshape(-1), d.reshape(-1), mdp.gamma)
    np.testing.assert_allclose(step, w + 0.1 * (A @ w + b), atol=1e-12)


def test_validation() -> None:
    mdp, phi, d = _instance(0)
    w = np.zeros(2)
    with pytest.raises(TypeError, match="mdp|phi"):
        linear_q_learning_field("junk", phi, d, w)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="phi"):
        linear_q_learning_field(mdp, "junk", d, w)
    with pytest.raises(ValueError, match="phi"):
        linear_q_learning_field(mdp, phi[:, :2], d, w)
    with pytest.raises(ValueError, match=r"^d\b"):
        linear_q_learning_field(mdp, phi, d * 2, w)
    with pytest.raises(ValueError, match=r"^w\b"):
        linear_q_learning_field(mdp, phi, d, np.zeros(3))
    with pytest.raises(TypeError, match=r"^w\b"):
        linear_q_learning_field(mdp, phi, d, np.zeros(2, dtype=complex))
    with pytest.raises(TypeError, match="alpha"):
        expected_linear_q_learning(mdp, phi, d, w, "0.1", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        expected_linear_q_learning(mdp, phi, d, w, -0.1, 3)
    with pytest.raises(TypeError, match="n_steps"):
        expected_linear_q_learning(mdp, phi, d, w, 0.1, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_steps"):
        expected_linear_q_learning(mdp, phi, d, w, 0.1, -1)
    with pytest.raises(ValueError, match="epsilon"):
        expected_linear_sarsa(mdp, phi, w, 0.1, 3, epsilon=1.5)
    with pytest.raises(TypeError, match="epsilon"):
        epsilon_greedy_policy(np.zeros((2, 2)), True)
    with pytest.raises(ValueError, match=r"^Q\b"):
        epsilon_greedy_policy(np.zeros((2, 0)), 0.1)
    x, Xn = np.ones(2), np.ones((3, 2))
    with pytest.raises(TypeError, match="gamma"):
        linear_q_td_error(w, x, 0.0, Xn, "0.9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gamma"):
        linear_q_td_error(w, x, 0.0, Xn, 1.0)
    with pytest.raises(TypeError, match="terminated"):
        linear_q_td_error(w, x, 0.0, Xn, 0.9, terminated=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="X_next"):
        linear_q_td_error(w, x, 0.0, np.ones((3, 3)), 0.9)
    with pytest.raises(ValueError, match="X_next"):
        linear_q_td_error(w, x, 0.0, np.ones((0, 2)), 0.9)
    with pytest.raises(ValueError, match=r"^x\b"):
        linear_q_td_error(w, np.ones(3), 0.0, Xn, 0.9)
    with pytest.raises(ValueError, match=r"^r\b"):
        linear_q_td_error(w, x, np.inf, Xn, 0.9)
    with pytest.raises(TypeError, match=r"^r\b"):
        linear_q_td_error(w, x, None, Xn, 0.9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^w\b"):
        linear_q_td_error(np.zeros(0), np.zeros(0), 0.0, np.zeros((1, 0)), 0.9)
    with pytest.raises(ValueError, match=r"^u\b"):
        q_loss_directional_derivative(w, x, 0.0, Xn, 0.9, np.ones(3))
    with pytest.raises(ValueError, match="tol"):
        q_loss_directional_derivative(w, x, 0.0, Xn, 0.9, np.ones(2), tol=-1.0)
