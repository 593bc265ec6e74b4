"""Tests of rlnotes.pg.baselines against independent computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.pg.baselines import (
    exact_gradient_variance,
    finite_horizon_values,
    optimal_baseline_coefficients,
    optimal_constant_baseline,
)


def _random_case(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d))
    p = rng.dirichlet(np.ones(n))
    return g, p


# -- exact_gradient_variance -----------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30), d=st.integers(1, 6))
def test_variance_matches_weighted_covariance_trace(seed: int, n: int, d: int) -> None:
    g, p = _random_case(seed, n, d)
    expected = np.trace(np.atleast_2d(np.cov(g.T, aweights=p, bias=True)))
    assert exact_gradient_variance(g, p) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_variance_uniform_matches_population_variance_per_coordinate() -> None:
    g, _ = _random_case(3, 50, 4)
    expected = sum(np.var(g[:, j]) for j in range(4))  # ddof=0, coordinate by coordinate
    assert exact_gradient_variance(g) == pytest.approx(expected, rel=1e-12)


def test_variance_flattens_trailing_axes_and_is_zero_for_constant() -> None:
    g, p = _random_case(4, 12, 6)
    assert exact_gradient_variance(g.reshape(12, 2, 3), p) == pytest.approx(
        exact_gradient_variance(g, p), rel=1e-12
    )
    const = np.tile(np.arange(6.0), (12, 1))
    assert exact_gradient_variance(const, p) == pytest.approx(0.0, abs=1e-12)


def test_variance_two_point_closed_form() -> None:
    # g = +1 with prob q, -1 with prob 1 - q: Var = 1 - (2q - 1)^2 = 4 q (1 - q).
    q = 0.3
    g = np.array([[1.0], [-1.0]])
    assert exact_gradient_variance(g, [q, 1 - q]) == pytest.approx(4 * q * (1 - q), rel=1e-12)


def test_variance_errors() -> None:
    g, p = _random_case(0, 5, 2)
    with pytest.raises(ValueError, match=r"^grads contains NaN"):
        exact_gradient_variance(np.full((5, 2), np.nan), p)
    with pytest.raises(ValueError, match=r"^grads must be finite"):
        exact_gradient_variance(np.full((5, 2), np.inf), p)
    with pytest.raises(ValueError, match=r"^grads must have shape \(N, \.\.\.\) with N >= 1"):
        exact_gradient_variance(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"^prob must have shape \(5,\)"):
        exact_gradient_variance(g, p[:4])
    with pytest.raises(ValueError, match=r"^prob must sum to 1"):
        exact_gradient_variance(g, 2 * p)
    with pytest.raises(TypeError, match=r"^grads must be an array of numbers"):
        exact_gradient_variance("abc", p)
    with pytest.raises(TypeError, match=r"^grads must hold real numbers"):
        exact_gradient_variance(np.ones((5, 2)) * 1j, p)


def test_variance_and_baseline_of_huge_gradients_do_not_overflow() -> None:
    # |g|^2 overflows float64 at 1e200; the rescaled computation is exact up to round-off
    g, p = _random_case(3, 6, 2)
    h = g[::-1] - p @ g[::-1]
    scale = 1e200
    b = optimal_constant_baseline(g, h, p)
    assert optimal_constant_baseline(scale * g, h, p) == pytest.approx(scale * b, rel=1e-12)
    assert optimal_constant_baseline(scale * g, scale * h, p) == pytest.approx(b, rel=1e-12)
    v = exact_gradient_variance(g, p)
    assert exact_gradient_variance(1e150 * g, p) == pytest.approx(1e300 * v, rel=1e-12)
    with pytest.raises(OverflowError, match=r"^the total variance overflowed float64"):
        exact_gradient_variance(scale * g, p)
    with pytest.raises(OverflowError, match=r"^the optimal constant baseline overflowed"):
        optimal_constant_baseline(1e200 * g, 1e-200 * h, p)


# -- optimal_constant_baseline ----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 25), d=st.integers(1, 5))
def test_optimal_baseline_minimizes_variance(seed: int, n: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n))
    h = rng.standard_normal((n, d))
    h -= p @ h  # a zero-mean control variate under p
    g = rng.standard_normal(n)[:, None] * h + 0.3 * rng.standard_normal((n, d))
    b_star = optimal_constant_baseline(g, h, p)
    # independent route: numerical 1-d minimization of the trace of the covariance
    res = minimize_scalar(
        lambda b: float(np.trace(np.atleast_2d(np.cov((g - b * h).T, aweights=p, bias=True))))
    )
    assert b_star == pytest.approx(res.x, rel=1e-5, abs=1e-6)


def test_optimal_baseline_total_return_form() -> None:
    # g = R h gives b* = E[|h|^2 R] / E[|h|^2]: a closed form in plain sums.
    rng = np.random.default_rng(7)
    n = 8
    p = rng.dirichlet(np.ones(n))
    h = rng.standard_normal((n, 3))
    R = rng.standard_normal(n)
    sq = (h**2).sum(1)
    expected = sum(p[k] * sq[k] * R[k] for k in range(n)) / sum(p[k] * sq[k] for k in range(n))
    assert optimal_constant_baseline(R[:, None] * h, h, p) == pytest.approx(expected, rel=1e-12)


def test_optimal_baseline_errors() -> None:
    g, p = _random_case(1, 6, 2)
    with pytest.raises(ValueError, match=r"^control must have the shape of grads"):
        optimal_constant_baseline(g, g[:, :1], p)
    with pytest.raises(ValueError, match=r"^control must be non-zero on some trajectory"):
        optimal_constant_baseline(g, np.zeros_like(g), p)
    with pytest.raises(ValueError, match=r"^prob must be non-negative"):
        optimal_constant_baseline(g, g, -p)
    with pytest.raises(TypeError, match=r"^control must hold real numbers"):
        optimal_constant_baseline(g, g.astype(bool), p)


# -- optimal_baseline_coefficients ------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(6, 25), k=st.integers(1, 4), d=st.integers(1, 4))
def test_coefficients_minimize_variance(seed: int, n: int, k: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n))
    h = rng.standard_normal((n, k, d))
    h -= np.einsum("n,nkd->kd", p, h)  # zero-mean controls
    g = rng.standard_normal((n, d)) + np.einsum("nk,nkd->nd", rng.standard_normal((n, k)), h)
    beta = optimal_baseline_coefficients(g, h, p)

    def var(b: np.ndarray) -> float:
        return exact_gradient_variance(g - np.einsum("k,nkd->nd", b, h), p)

    # independent route: the gradient of the quadratic vanishes (finite differences) ...
    eps = 1e-5
    for j in range(k):
        e = np.zeros(k)
        e[j] = eps
        assert abs(var(beta + e) - var(beta - e)) / (2 * eps) < 1e-5 * max(1.0, var(beta))
    # ... and random perturbations never do better
    for _ in range(5):
        assert var(beta + 0.1 * rng.standard_normal(k)) >= var(beta) - 1e-12


def test_coefficients_one_control_equals_constant_baseline() -> None:
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(10))
    h = rng.standard_normal((10, 3))
    h -= p @ h
    g = rng.standard_normal(10)[:, None] * h
    beta = optimal_baseline_coefficients(g, h[:, None, :], p)
    assert beta.shape == (1,)
    assert beta[0] == pytest.approx(optimal_constant_baseline(g, h, p), rel=1e-10)


def test_coefficients_zero_control_gets_zero() -> None:
    rng = np.random.default_rng(10)
    h = np.zeros((8, 2, 3))
    h[:, 0] = rng.standard_normal((8, 3))
    g = rng.standard_normal((8, 3))
    beta = optimal_baseline_coefficients(g, h)
    assert beta[1] == 0.0 and np.isfinite(beta[0])


def test_coefficients_errors() -> None:
    g = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"^controls must have trailing size 3 as grads"):
        optimal_baseline_coefficients(g, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"^controls must have trailing size 3 as grads"):
        optimal_baseline_coefficients(g, np.zeros((4, 2, 5)))
    with pytest.raises(ValueError, match=r"^controls must have shape \(N=4, K >= 1"):
        optimal_baseline_coefficients(g, np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"^controls must be finite"):
        optimal_baseline_coefficients(g, np.full((4, 2, 3), np.inf))
    with pytest.raises(ValueError, match=r"^prob must have shape \(4,\)"):
        optimal_baseline_coefficients(g, np.ones((4, 2, 3)), [0.5, 0.5])
    with pytest.raises(TypeError, match=r"^controls must be an array of numbers"):
        optimal_baseline_coefficients(g, "h")


# -- finite_horizon_values --------------------------------------------------------------------


def _brute_value(mdp: TabularMDP, pi: np.ndarray, s: int, steps: int, gamma: float) -> float:
    """Expected discounted reward of ``steps`` steps from s, by summing over every path."""
    total = 0.0
    S, A = mdp.n_states, mdp.n_actions
    for path in itertools.product(range(A), range(S), repeat=steps):
        prob, ret, state = 1.0, 0.0, s
        for k in range(steps):
            a, nxt = path[2 * k], path[2 * k + 1]
            prob *= pi[state, a] * mdp.P[state, a, nxt]
            ret += gamma**k * mdp.R[state, a]
            state = nxt
        total += prob * ret
    return total


@pytest.mark.parametrize("gamma_arg", [None, 1.0, 0.0])
def test_values_match_path_enumeration(gamma_arg: float | None) -> None:
    mdp = random_mdp(3, 2, 0.8, seed=11)
    pi = np.random.default_rng(2).dirichlet(np.ones(2), size=3)
    H = 3
    V, Q = finite_horizon_values(mdp, pi, H, gamma_arg)
    gamma = mdp.gamma if gamma_arg is None else gamma_arg
    assert V.shape == (H + 1, 3) and Q.shape == (H, 3, 2)
    assert np.all(V[H] == 0.0)
    for t in range(H + 1):
        for s in range(3):
            assert V[t, s] == pytest.approx(_brute_value(mdp, pi, s, H - t, gamma), rel=1e-10)
    # Q is one step of the model followed by V: check against the path sum too
    for s, a in itertools.product(range(3), range(2)):
        tail = sum(mdp.P[s, a, s2] * _brute_value(mdp, pi, s2, H - 1, gamma) for s2 in range(3))
        assert Q[0, s, a] == pytest.approx(mdp.R[s, a] + gamma * tail, rel=1e-10)


def test_values_long_horizon_approach_discounted_fixed_point() -> None:
    mdp = random_mdp(4, 3, 0.7, seed=5)
    pi = np.full((4, 3), 1 / 3)
    V, _ = finite_horizon_values(mdp, pi, 200)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = (pi * mdp.R).sum(1)
    v_inf = np.linalg.solve(np.eye(4) - mdp.gamma * P_pi, r_pi)
    np.testing.assert_allclose(V[0], v_inf, rtol=1e-10, atol=1e-10)


def test_values_errors() -> None:
    mdp = random_mdp(2, 2, 0.9, seed=0)
    pi = np.full((2, 2), 0.5)
    with pytest.raises(TypeError, match=r"^mdp must be a TabularMDP"):
        finite_horizon_values("mdp", pi, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^pi must sum to 1"):
        finite_horizon_values(mdp, np.full((2, 2), 0.6), 2)
    with pytest.raises(ValueError, match=r"^horizon must be an integer >= 1"):
        finite_horizon_values(mdp, pi, 0)
    with pytest.raises(TypeError, match=r"^horizon must be an integer"):
        finite_horizon_values(mdp, pi, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^gamma must lie in \[0, 1\]"):
        finite_horizon_values(mdp, pi, 2, gamma=1.5)
    with pytest.raises(TypeError, match=r"^gamma must be a real number"):
        finite_horizon_values(mdp, pi, 2, gamma="0.5")  # type: ignore[arg-type]
