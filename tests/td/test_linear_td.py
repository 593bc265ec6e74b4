"""Tests of rlnotes.td.linear: linear TD(0), residual gradients and Baird's counterexample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes.core.markov import policy_chain, stationary_distribution
from rlnotes.core.mdp import random_mdp
from rlnotes.td.linear import (
    baird_counterexample,
    expected_residual_gradient,
    expected_semi_gradient_td,
    residual_gradient_update,
    semi_gradient_td0_update,
    td_fixed_point,
    td_lambda_linear,
    td_matrices,
)


def _chain(seed: int, n: int = 5, k: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n), size=n)
    r = rng.standard_normal(n)
    phi = rng.standard_normal((n, k))
    d = rng.dirichlet(np.ones(n))
    return phi, P, r, d


def test_policy_chain_matches_loops() -> None:
    mdp = random_mdp(4, 3, 0.9, seed=1)
    pi = np.random.default_rng(2).dirichlet(np.ones(3), size=4)
    P_pi, r_pi = policy_chain(mdp, pi)
    for s in range(4):
        assert r_pi[s] == pytest.approx(sum(pi[s, a] * mdp.R[s, a] for a in range(3)))
        for t in range(4):
            ref = sum(pi[s, a] * mdp.P[s, a, t] for a in range(3))
            assert P_pi[s, t] == pytest.approx(ref)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 7))
def test_stationary_distribution_is_left_eigenvector(seed: int, n: int) -> None:
    P = np.random.default_rng(seed).dirichlet(np.ones(n), size=n)
    d = stationary_distribution(P)
    vals, vecs = np.linalg.eig(P.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    v = v / v.sum()
    np.testing.assert_allclose(d, v, atol=1e-10)
    assert d.min() >= 0 and d.sum() == pytest.approx(1.0)


def test_stationary_distribution_rejects_reducible_chain() -> None:
    with pytest.raises(ValueError, match="P_pi"):
        stationary_distribution(np.eye(3))


def test_td_matrices_match_plain_loops() -> None:
    phi, P, r, d = _chain(0)
    gamma = 0.8
    A, b = td_matrices(phi, P, r, d, gamma)
    n, k = phi.shape
    A_ref = np.zeros((k, k))
    b_ref = np.zeros(k)
    for s in range(n):
        for t in range(n):
            A_ref += d[s] * P[s, t] * np.outer(phi[s], gamma * phi[t] - phi[s])
            b_ref += d[s] * P[s, t] * r[s] * phi[s]
    np.testing.assert_allclose(A, A_ref, atol=1e-12)
    np.testing.assert_allclose(b, b_ref, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_expected_td_step_is_average_of_sampled_steps(seed: int) -> None:
    phi, P, r, d = _chain(seed)
    gamma, alpha = 0.9, 0.1
    w = np.random.default_rng(seed + 1).standard_normal(phi.shape[1])
    W = expected_semi_gradient_td(phi, P, r, d, gamma, w, alpha, 1)
    avg = sum(
        d[s] * P[s, t] * semi_gradient_td0_update(w, phi[s], r[s], phi[t], gamma, alpha)
        for s in range(len(d))
        for t in range(len(d))
    )
    np.testing.assert_allclose(W[1], avg, atol=1e-12)
    np.testing.assert_allclose(W[0], w)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_residual_gradient_double_sampling(seed: int) -> None:
    phi, P, r, d = _chain(seed, n=4, k=2)
    gamma, alpha = 0.9, 0.1
    n = len(d)
    w = np.random.default_rng(seed + 1).standard_normal(int(phi.shape[1]))
    W = expected_residual_gradient(phi, P, r, d, gamma, w, alpha, 1)

    # independent route: central finite differences of the mean squared Bellman error
    def msbe(v: np.ndarray) -> float:
        delta = r + gamma * P @ phi @ v - phi @ v
        return 0.5 * float(delta @ (d * delta))

    eps = 1e-6
    grad = np.array([(msbe(w + eps * e) - msbe(w - eps * e)) / (2 * eps) for e in np.eye(len(w))])
    np.testing.assert_allclose(W[1], w - alpha * grad, atol=1e-7)
    # two independent next states: the average sampled update is the true gradient step
    double = sum(
        d[s]
        * P[s, t]
        * P[s, u]
        * residual_gradient_update(w, phi[s], r[s], phi[t], gamma, alpha, x_next_independent=phi[u])
        for s in range(n)
        for t in range(n)
        for u in range(n)
    )
    np.testing.assert_allclose(double, W[1], atol=1e-10)
    # one next state used twice: biased by gamma^2 * Var-type term (positive semidefinite)
    single = sum(
        d[s] * P[s, t] * residual_gradient_update(w, phi[s], r[s], phi[t], gamma, alpha)
        for s in range(n)
        for t in range(n)
    )
    bias = (w - single) / alpha - grad
    ref_bias = (
        sum(
            d[s]
            * gamma**2
            * (
                sum(P[s, t] * np.outer(phi[t], phi[t]) for t in range(n))
                - np.outer(P[s] @ phi, P[s] @ phi)
            )
            for s in range(n)
        )
        @ w
    )
    np.testing.assert_allclose(bias, ref_bias, atol=1e-10)
    assert np.linalg.norm(bias) > 1e-6


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.99))
def test_on_policy_td_matrix_is_negative_definite(seed: int, gamma: float) -> None:
    phi, P, r, _ = _chain(seed, n=6, k=3)
    d = stationary_distribution(P)
    A, _ = td_matrices(phi, P, r, d, gamma)
    assert np.linalg.eigvalsh(0.5 * (A + A.T)).max() < 0


def test_td_fixed_point_solves_projected_bellman_equation() -> None:
    phi, P, r, _ = _chain(3, n=6, k=3)
    gamma = 0.9
    d = stationary_distribution(P)
    w = td_fixed_point(phi, P, r, d, gamma)
    D = np.diag(d)
    proj = phi @ np.linalg.solve(phi.T @ D @ phi, phi.T @ D)
    np.testing.assert_allclose(phi @ w, proj @ (r + gamma * P @ phi @ w), atol=1e-10)
    W = expected_semi_gradient_td(phi, P, r, d, gamma, np.zeros(3), 0.5, 3000)
    np.testing.assert_allclose(W[-1], w, atol=1e-8)


def test_td_fixed_point_rejects_singular_features() -> None:
    phi, P, r, d = _chain(4, n=5, k=2)
    phi = np.column_stack([phi[:, 0], 2 * phi[:, 0]])
    with pytest.raises(ValueError, match="phi"):
        td_fixed_point(phi, P, r, d, 0.9)


def test_terminated_steps_do_not_bootstrap() -> None:
    w = np.array([1.0, 2.0])
    x = np.array([1.0, 0.0])
    xn = np.array([0.0, 5.0])
    out = semi_gradient_td0_update(w, x, 3.0, xn, 0.9, 0.5, terminated=True)
    np.testing.assert_allclose(out, w + 0.5 * (3.0 - 1.0) * x)
    out = residual_gradient_update(w, x, 3.0, xn, 0.9, 0.5, terminated=True)
    np.testing.assert_allclose(out, w + 0.5 * (3.0 - 1.0) * x)
    out = semi_gradient_td0_update(w, x, 3.0, xn, 0.9, 0.5, rho=2.0)
    np.testing.assert_allclose(out, w + 0.5 * 2.0 * (3.0 + 0.9 * 10.0 - 1.0) * x)


def test_baird_counterexample_structure() -> None:
    b = baird_counterexample()
    assert b.phi.shape == (7, 8) and np.linalg.matrix_rank(b.phi) == 7
    np.testing.assert_allclose(b.phi[:6] @ np.arange(1.0, 9.0), 2 * np.arange(1, 7) + 8)
    assert b.phi[6] @ np.arange(1.0, 9.0) == 7 + 16
    P_mu, _ = policy_chain(b.mdp, b.behaviour)
    np.testing.assert_allclose(stationary_distribution(P_mu), np.full(7, 1 / 7), atol=1e-12)
    P_pi, r_pi = policy_chain(b.mdp, b.target)
    np.testing.assert_allclose(P_pi[:, 6], 1.0)
    assert not r_pi.any() and not b.mdp.R.any()
    with pytest.raises(ValueError):
        b.phi[0, 0] = 3.0


def test_baird_off_policy_diverges_on_policy_does_not() -> None:
    b = baird_counterexample(0.99)
    d = np.full(7, 1 / 7)
    P_pi, r_pi = policy_chain(b.mdp, b.target)
    A, _ = td_matrices(b.phi, P_pi, r_pi, d, 0.99)
    assert np.linalg.eigvals(A).real.max() > 0.1
    W = expected_semi_gradient_td(b.phi, P_pi, r_pi, d, 0.99, b.w0, 0.01, 5000)
    assert np.linalg.norm(W[-1]) > 1e3 * np.linalg.norm(W[0])
    # on-policy (target = behaviour): values go to the true values, zero
    P_mu, r_mu = policy_chain(b.mdp, b.behaviour)
    W = expected_semi_gradient_td(b.phi, P_mu, r_mu, d, 0.99, b.w0, 0.5, 5000)
    assert np.abs(b.phi @ W[-1]).max() < 1e-6


@pytest.mark.parametrize(("gamma", "diverges"), [(0.85, False), (0.88, False), (0.885, True)])
def test_baird_diverges_exactly_above_gamma_15_over_17(gamma: float, diverges: bool) -> None:
    """The moving eigenvalues solve 49 l^2 - (119 gamma - 105) l + 26 (1 - gamma) = 0."""
    b = baird_counterexample(gamma)
    P_pi, r_pi = policy_chain(b.mdp, b.target)
    A, _ = td_matrices(b.phi, P_pi, r_pi, np.full(7, 1 / 7), gamma)
    ev = np.linalg.eigvals(A)
    quad = np.roots([49.0, -(119 * gamma - 105), 26 * (1 - gamma)])
    for root in quad:  # the quadratic's roots are eigenvalues of A
        assert np.abs(ev - root).min() < 1e-9
    assert (ev.real.max() > 1e-9) == diverges
    assert (quad.real.max() > 0) == (gamma > 15 / 17)


def test_diverging_runs_raise_overflow() -> None:
    b = baird_counterexample(0.99)
    d = np.full(7, 1 / 7)
    P_pi, r_pi = policy_chain(b.mdp, b.target)
    with pytest.raises(OverflowError, match="overflowed"):
        expected_semi_gradient_td(b.phi, P_pi, r_pi, d, 0.99, b.w0, 1.0, 100_000)
    with pytest.raises(OverflowError, match="overflowed"):
        expected_residual_gradient(b.phi, P_pi, r_pi, d, 0.99, [1e306] * 8, 1e3, 10)
    # sampled TD(lambda) with a huge step on a two-state cycle blows up too
    phi = np.array([[1.0], [3.0]])
    states = np.array([0, 1] * 400 + [0])
    with pytest.raises(OverflowError, match="overflowed"):
        td_lambda_linear(phi, states, np.ones(800), 0.9, 0.5, 10.0)


def _td_lambda_operator(
    P: np.ndarray, r: np.ndarray, gamma: float, lam: float, V: np.ndarray
) -> np.ndarray:
    """T^(lambda) V = (1 - lam) sum_m lam^m (T^pi)^(m+1) V, by the series (independent route)."""
    out = np.zeros_like(V)
    TV = V.copy()
    for m in range(3000):
        TV = r + gamma * P @ TV
        out += (1 - lam) * lam**m * TV
    return out


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
def test_td_lambda_fixed_point_solves_projected_lambda_equation(lam: float) -> None:
    phi, P, r, _ = _chain(8, n=6, k=2)
    gamma = 0.9
    d = stationary_distribution(P)
    w = td_fixed_point(phi, P, r, d, gamma, lam=lam)
    D = np.diag(d)
    proj = phi @ np.linalg.solve(phi.T @ D @ phi, phi.T @ D)
    np.testing.assert_allclose(
        phi @ w, proj @ _td_lambda_operator(P, r, gamma, lam, phi @ w), atol=1e-9
    )
    A, b = td_matrices(phi, P, r, d, gamma, lam=lam)
    np.testing.assert_allclose(A @ w + b, 0.0, atol=1e-12)
    assert np.linalg.eigvalsh(0.5 * (A + A.T)).max() < 0  # on-policy: negative definite


def test_td_lambda_one_is_the_projection_of_the_true_values() -> None:
    phi, P, r, _ = _chain(9, n=6, k=2)
    gamma = 0.9
    d = stationary_distribution(P)
    v = np.linalg.solve(np.eye(6) - gamma * P, r)
    D = np.diag(d)
    w_ls = np.linalg.solve(phi.T @ D @ phi, phi.T @ D @ v)
    np.testing.assert_allclose(td_fixed_point(phi, P, r, d, gamma, lam=1.0), w_ls, atol=1e-10)
    w0 = td_fixed_point(phi, P, r, d, gamma)
    assert np.abs(w0 - w_ls).max() > 1e-2  # TD(0) has a different limit


def test_sampled_td_lambda_update_by_hand() -> None:
    phi = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    states = np.array([0, 2, 1])
    rewards = np.array([1.0, -1.0])
    g, lam, a = 0.9, 0.5, 0.1
    W = td_lambda_linear(phi, states, rewards, g, lam, a, w0=[0.5, -0.5])
    w, z = np.array([0.5, -0.5]), np.zeros(2)
    for t in range(2):
        z = g * lam * z + phi[states[t]]
        delta = rewards[t] + g * phi[states[t + 1]] @ w - phi[states[t]] @ w
        w = w + a * delta * z
        np.testing.assert_allclose(W[t + 1], w, atol=1e-14)
    W0 = td_lambda_linear(phi, states, rewards, g, 0.0, [a, a], w0=[0.5, -0.5])
    w = np.array([0.5, -0.5])
    for t in range(2):
        w = semi_gradient_td0_update(w, phi[states[t]], rewards[t], phi[states[t + 1]], g, a)
    np.testing.assert_allclose(W0[-1], w, atol=1e-14)


def test_sampled_td_lambda_converges_to_the_lambda_fixed_point() -> None:
    phi, P, r, _ = _chain(12, n=4, k=2)
    gamma, lam, T = 0.8, 0.8, 40_000
    rng = np.random.default_rng(0)
    states = np.zeros(T + 1, dtype=np.int64)
    cum = P.cumsum(axis=1)
    u = rng.random(T)
    for t in range(T):
        states[t + 1] = min(int(np.searchsorted(cum[states[t]], u[t])), 3)
    steps = 0.1 * (1 + np.arange(T) / 100) ** -0.7
    W = td_lambda_linear(phi, states, r[states[:-1]], gamma, lam, steps)
    d = stationary_distribution(P)
    w_lam = td_fixed_point(phi, P, r, d, gamma, lam=lam)
    w_0 = td_fixed_point(phi, P, r, d, gamma)
    avg = W[T // 2 :].mean(axis=0)
    assert np.linalg.norm(avg - w_lam) < 0.2 * np.linalg.norm(w_lam - w_0)


def test_validation_errors() -> None:
    phi, P, r, d = _chain(5)
    with pytest.raises(ValueError, match="phi"):
        td_matrices(phi[:, 0], P, r, d, 0.9)
    with pytest.raises(ValueError, match="phi"):
        td_matrices(np.zeros((5, 0)), P, r, d, 0.9)
    with pytest.raises(TypeError, match="phi"):
        td_matrices("junk", P, r, d, 0.9)
    with pytest.raises(TypeError, match="phi"):
        td_matrices(phi.astype(complex), P, r, d, 0.9)
    with pytest.raises(TypeError, match="phi"):
        td_matrices(phi > 0, P, r, d, 0.9)
    with pytest.raises(ValueError, match="P_pi"):
        td_matrices(phi, P * 2, r, d, 0.9)
    with pytest.raises(ValueError, match="r_pi"):
        td_matrices(phi, P, r[:3], d, 0.9)
    with pytest.raises(ValueError, match="r_pi"):
        td_matrices(phi, P, np.full(5, np.nan), d, 0.9)
    with pytest.raises(ValueError, match=r"^d\b"):
        td_matrices(phi, P, r, d * 2, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        td_matrices(phi, P, r, d, 1.0)
    with pytest.raises(TypeError, match="gamma"):
        td_matrices(phi, P, r, d, "0.9")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gamma"):
        td_matrices(phi, P, r, d, True)
    with pytest.raises(ValueError, match="lam"):
        td_matrices(phi, P, r, d, 0.9, lam=1.5)
    with pytest.raises(TypeError, match="lam"):
        td_fixed_point(phi, P, r, d, 0.9, lam="0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="w0"):
        expected_semi_gradient_td(phi, P, r, d, 0.9, np.zeros(2), 0.1, 3)
    with pytest.raises(ValueError, match="alpha"):
        expected_semi_gradient_td(phi, P, r, d, 0.9, np.zeros(3), -0.1, 3)
    with pytest.raises(TypeError, match="alpha"):
        expected_semi_gradient_td(phi, P, r, d, 0.9, np.zeros(3), "0.1", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_steps"):
        expected_residual_gradient(phi, P, r, d, 0.9, np.zeros(3), 0.1, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_steps"):
        expected_residual_gradient(phi, P, r, d, 0.9, np.zeros(3), 0.1, -1)
    w, x = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="x_next"):
        semi_gradient_td0_update(w, x, 0.0, np.ones(2), 0.9, 0.1)
    with pytest.raises(ValueError, match="rho"):
        semi_gradient_td0_update(w, x, 0.0, x, 0.9, 0.1, rho=-1.0)
    with pytest.raises(TypeError, match="rho"):
        semi_gradient_td0_update(w, x, 0.0, x, 0.9, 0.1, rho="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^r\b"):
        semi_gradient_td0_update(w, x, np.inf, x, 0.9, 0.1)
    with pytest.raises(TypeError, match=r"^r\b"):
        semi_gradient_td0_update(w, x, "1.0", x, 0.9, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="terminated"):
        semi_gradient_td0_update(w, x, 0.0, x, 0.9, 0.1, terminated="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="terminated"):
        residual_gradient_update(w, x, 0.0, x, 0.9, 0.1, terminated=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x_next_independent"):
        residual_gradient_update(w, x, 0.0, x, 0.9, 0.1, x_next_independent=np.ones(4))
    with pytest.raises(ValueError, match="gamma"):
        baird_counterexample(1.5)
    with pytest.raises(TypeError, match="gamma"):
        baird_counterexample("0.99")  # type: ignore[arg-type]
    states, rewards = np.array([0, 1, 2]), np.zeros(2)
    with pytest.raises(TypeError, match="states"):
        td_lambda_linear(phi, states.astype(float), rewards, 0.9, 0.5, 0.1)
    with pytest.raises(ValueError, match="states"):
        td_lambda_linear(phi, np.array([0, 9]), np.zeros(1), 0.9, 0.5, 0.1)
    with pytest.raises(ValueError, match="rewards"):
        td_lambda_linear(phi, states, np.zeros(3), 0.9, 0.5, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        td_lambda_linear(phi, states, rewards, 0.9, 0.5, np.array([0.1, 0.0]))
    with pytest.raises(ValueError, match="alpha"):
        td_lambda_linear(phi, states, rewards, 0.9, 0.5, np.ones(5))
    with pytest.raises(ValueError, match="lam"):
        td_lambda_linear(phi, states, rewards, 0.9, -0.5, 0.1)
    with pytest.raises(ValueError, match="w0"):
        td_lambda_linear(phi, states, rewards, 0.9, 0.5, 0.1, w0=np.zeros(2))
