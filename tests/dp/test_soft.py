"""Tests of rlnotes.dp.soft: soft Bellman operators and the certified soft planners.

The oracle is an independent implementation with plain Python loops (math.exp / math.log on
shifted rows), in float64 and, for the certificates, in numpy's extended precision.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.dp.planning import policy_iteration
from rlnotes.dp.soft import (
    boltzmann_average,
    boltzmann_policy,
    mellowmax,
    soft_bellman_operator,
    soft_policy_evaluation,
    soft_policy_iteration,
    soft_value_iteration,
)

# ----------------------------------------------------------------------------- the oracle


def loop_soft_max(row: list[float], alpha: float) -> float:
    m = max(row)
    return m + alpha * math.log(sum(math.exp((x - m) / alpha) for x in row))


def loop_soft_backup(mdp: TabularMDP, V: list[float], alpha: float) -> list[float]:
    """(T_alpha V)(s) by loops over (s, a, s')."""
    S, A, P, R, g = mdp.n_states, mdp.n_actions, dense_P(mdp), mdp.R, mdp.gamma
    out = []
    for s in range(S):
        row = [R[s, a] + g * sum(P[s, a, t] * V[t] for t in range(S)) for a in range(A)]
        out.append(loop_soft_max(row, alpha))
    return out


def loop_soft_vi(mdp: TabularMDP, alpha: float, sweeps: int) -> list[float]:
    V = [0.0] * mdp.n_states
    for _ in range(sweeps):
        V = loop_soft_backup(mdp, V, alpha)
    return V


def dense_P(mdp: TabularMDP) -> Any:
    return np.asarray(mdp.to_dense().P)


def longdouble_soft_vi(mdp: TabularMDP, alpha: float, sweeps: int) -> Any:
    """V*_alpha in numpy's extended precision (64-bit mantissa on x86), as a reference."""
    ld = np.longdouble
    P = dense_P(mdp).astype(ld)
    R = np.asarray(mdp.R).astype(ld)
    g, a = ld(mdp.gamma), ld(alpha)
    V = np.zeros(mdp.n_states, dtype=ld)
    for _ in range(sweeps):
        Q = R + g * np.einsum("sat,t->sa", P, V)
        m = Q.max(axis=1)
        V = m + a * np.log(np.exp((Q - m[:, None]) / a).sum(axis=1))
    return V


def sup(x: Any) -> float:
    return float(np.max(np.abs(x)))


@pytest.fixture(scope="module")
def small() -> TabularMDP:
    return random_mdp(7, 3, 0.9, seed=4)


# ----------------------------------------------------------------------------- operators


@pytest.mark.parametrize("alpha", [1e-3, 0.3, 5.0])
def test_operator_matches_loops(small: TabularMDP, alpha: float) -> None:
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(7, 3)) * 3
    V = [loop_soft_max(list(Q[s]), alpha) for s in range(7)]
    P, R, g = dense_P(small), small.R, small.gamma
    expected = np.array(
        [
            [R[s, a] + g * sum(P[s, a, t] * V[t] for t in range(7)) for a in range(3)]
            for s in range(7)
        ]
    )
    np.testing.assert_allclose(soft_bellman_operator(small, Q, alpha), expected, atol=1e-12)


def test_boltzmann_policy_is_the_gibbs_maximiser() -> None:
    rng = np.random.default_rng(1)
    q, alpha = rng.normal(size=5), 0.7
    p = boltzmann_policy(q, alpha)
    value = float(p @ q - alpha * np.sum(p * np.log(p)))
    assert value == pytest.approx(loop_soft_max(list(q), alpha), abs=1e-12)
    for _ in range(200):
        other = rng.dirichlet(np.ones(5))
        assert other @ q - alpha * np.sum(other * np.log(other)) <= value + 1e-12


def test_soft_max_is_exact_at_extreme_temperatures() -> None:
    Q = np.array([[1e3, -1e3, 999.0], [-1e3, -1e3, -1e3]])
    pi = boltzmann_policy(Q, 1e-6)
    np.testing.assert_array_equal(pi, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    mdp = TabularMDP(P=np.full((2, 3, 2), 0.5), R=np.zeros((2, 3)), gamma=0.5)
    TQ = soft_bellman_operator(mdp, Q, 1e-6)  # 0.5 * mean of the two soft maxima
    expected = 0.5 * (1e3 + (-1e3 + 1e-6 * math.log(3))) / 2
    np.testing.assert_allclose(TQ, expected, rtol=1e-15)
    pi_hot = boltzmann_policy(Q, 1e6)
    np.testing.assert_allclose(pi_hot[1], 1 / 3, rtol=1e-15)
    assert np.all(np.isfinite(pi_hot)) and abs(pi_hot[0].sum() - 1) < 1e-15
    V_hot = soft_bellman_operator(mdp, Q, 1e6)
    # alpha log sum exp(q / alpha) = mean(q) + alpha log A + O(var(q) / alpha)
    lse_row0 = 1e6 * math.log(sum(math.exp(x / 1e6) for x in Q[0]))
    lse_row1 = -1e3 + 1e6 * math.log(3)
    np.testing.assert_allclose(V_hot, 0.5 * (lse_row0 + lse_row1) / 2, rtol=1e-14)


def test_mellowmax_is_a_non_expansion_and_the_boltzmann_average_is_not() -> None:
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(2000):
        x, y = rng.normal(size=(2, 4)) * 3
        worst = max(worst, abs(float(mellowmax(x, 5.0) - mellowmax(y, 5.0))) / sup(x - y))
    assert worst <= 1 + 1e-12
    # d/dq1 of the Boltzmann average at q = (2, 0), beta = 1 is pi1 (1 + pi2 * 2) > 1
    x, y = np.array([2.0, 0.0]), np.array([2.001, 0.0])
    ratio = float(boltzmann_average(y, 1.0) - boltzmann_average(x, 1.0)) / 0.001
    p1 = math.exp(2) / (1 + math.exp(2))
    assert ratio > 1.05
    assert ratio == pytest.approx(p1 * (1 + 2 * (1 - p1)), rel=1e-3)
    # mellowmax lies between the mean and the max
    q = rng.normal(size=(50, 4))
    mm = mellowmax(q, 2.0)
    assert np.all(mm >= q.mean(axis=1) - 1e-12) and np.all(mm <= q.max(axis=1) + 1e-12)


def test_contraction_ratio_is_at_most_gamma_and_attained(small: TabularMDP) -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        alpha = 10.0 ** rng.uniform(-3, 1)
        Q1, Q2 = rng.normal(size=(2, 7, 3)) * 10.0 ** rng.uniform(-2, 2)
        ratio = sup(
            soft_bellman_operator(small, Q1, alpha) - soft_bellman_operator(small, Q2, alpha)
        ) / sup(Q1 - Q2)
        assert ratio <= small.gamma * (1 + 1e-10)
    shift = soft_bellman_operator(small, Q1 + 1.0, 0.5) - soft_bellman_operator(small, Q1, 0.5)
    np.testing.assert_allclose(shift, small.gamma, rtol=1e-12)


# ----------------------------------------------------------------------------- evaluation


def test_soft_policy_evaluation_matches_loop_iteration(small: TabularMDP) -> None:
    rng = np.random.default_rng(4)
    pi = rng.dirichlet(np.ones(3), size=7)
    pi[0] = [1.0, 0.0, 0.0]  # a deterministic row: 0 log 0 = 0
    alpha = 0.4
    V, Q = soft_policy_evaluation(small, pi, alpha)
    P, R, g = dense_P(small), small.R, small.gamma
    Vl = [0.0] * 7
    for _ in range(400):  # the soft Bellman expectation operator, by loops
        Ql = [
            [R[s, a] + g * sum(P[s, a, t] * Vl[t] for t in range(7)) for a in range(3)]
            for s in range(7)
        ]
        Vl = [
            sum(
                pi[s, a] * (Ql[s][a] - (alpha * math.log(pi[s, a]) if pi[s, a] > 0 else 0.0))
                for a in range(3)
            )
            for s in range(7)
        ]
    assert sup(V - np.array(Vl)) < 1e-12
    assert sup(Q - np.array(Ql)) < 1e-12


# ----------------------------------------------------------------------------- planners


@pytest.mark.parametrize("solver", [soft_value_iteration, soft_policy_iteration])
@pytest.mark.parametrize("alpha", [0.01, 0.5, 3.0])
def test_planners_match_the_loop_oracle(small: TabularMDP, solver: Any, alpha: float) -> None:
    res = solver(small, alpha, tol=1e-9)
    V_ref = np.array(loop_soft_vi(small, alpha, 400))  # 0.9^400 ~ 5e-19
    assert res.error_bound <= 1e-9
    assert sup(res.V - V_ref) <= res.error_bound + 1e-13
    # V is the soft maximum of Q, Q is the lookahead of (almost) V, policy is Boltzmann
    np.testing.assert_allclose(res.V, [loop_soft_max(list(r), alpha) for r in res.Q], atol=1e-12)
    np.testing.assert_allclose(res.policy, np.exp((res.Q - res.V[:, None]) / alpha), atol=1e-12)
    assert res.residuals.shape == (res.iterations,)
    assert not res.Q.flags.writeable and not res.policy.flags.writeable


@pytest.mark.parametrize("stopping", ["sup", "span"])
def test_certificate_holds_against_extended_precision(stopping: str) -> None:
    mdp = random_mdp(12, 4, 0.95, seed=8)
    V_ref = longdouble_soft_vi(mdp, 0.2, 1500)  # 0.95^1500 ~ 5e-34
    for tol in (1e-4, 1e-8, 1e-11):
        for res in (
            soft_value_iteration(mdp, 0.2, tol=tol, stopping=stopping),
            soft_policy_iteration(mdp, 0.2, tol=tol),
        ):
            err = float(np.max(np.abs(res.V.astype(np.longdouble) - V_ref)))
            assert err <= res.error_bound <= tol


def test_tol_below_the_rounding_floor_raises() -> None:
    mdp = random_mdp(5, 2, 0.99, seed=1)
    big = TabularMDP(P=mdp.P, R=mdp.R * 1e6, gamma=mdp.gamma)
    with pytest.raises(RuntimeError, match="tol"):
        soft_value_iteration(big, 0.1, tol=1e-9)
    with pytest.raises(RuntimeError, match="tol"):
        soft_policy_iteration(big, 0.1, tol=1e-9)
    assert soft_policy_iteration(big, 0.1, tol=1e-2).error_bound <= 1e-2


def test_policy_iteration_is_newton_quadratic_and_monotone() -> None:
    mdp = random_mdp(30, 4, 0.9, seed=5)
    alpha = 0.5
    V_star = soft_value_iteration(mdp, alpha, tol=1e-11).V
    C = mdp.gamma**2 / (2 * alpha * (1 - mdp.gamma))
    pi = boltzmann_policy(mdp.R, alpha)
    V_prev: np.ndarray | None = None
    err_prev = math.inf  # read only once V_prev is set
    for _ in range(6):
        V, Q = soft_policy_evaluation(mdp, pi, alpha, tol=1e-12)
        err = sup(V - V_star)
        assert np.all(V <= V_star + 1e-11)  # from below
        if V_prev is not None:
            assert np.all(V >= V_prev - 1e-11)  # soft policy improvement
            assert err <= min(mdp.gamma * err_prev, C * err_prev**2) + 1e-11
        V_prev, err_prev = V, err
        pi = boltzmann_policy(Q, alpha)
    assert err_prev < 1e-10
    assert soft_policy_iteration(mdp, alpha, tol=1e-10).iterations <= 6


def test_alpha_to_zero_bound() -> None:
    mdp = random_mdp(10, 3, 0.9, seed=6)
    hard = policy_iteration(mdp, tol=1e-12)
    for alpha in (1e-6, 1e-3, 0.1, 1.0, 10.0):
        soft = soft_policy_iteration(mdp, alpha, tol=1e-11)
        gap_V = soft.V - hard.V
        gap_Q = soft.Q - hard.Q
        scale = alpha * math.log(3) / (1 - mdp.gamma)
        assert np.all(gap_V >= -2e-11) and np.all(gap_V <= scale + 2e-11)
        assert np.all(gap_Q >= -2e-11) and np.all(gap_Q <= mdp.gamma * scale + 2e-11)
    assert sup(soft_value_iteration(mdp, 1e-6, tol=1e-11).V - hard.V) < 1e-4


def test_path_consistency(small: TabularMDP) -> None:
    alpha = 0.3
    res = soft_policy_iteration(small, alpha, tol=1e-12)
    P, R, g = dense_P(small), small.R, small.gamma

    def worst(V: Any, pi: Any) -> float:
        return float(
            max(
                abs(
                    V[s]
                    - (
                        R[s, a]
                        - alpha * math.log(pi[s, a])
                        + g * sum(P[s, a, t] * V[t] for t in range(7))
                    )
                )
                for s, a in itertools.product(range(7), range(3))
            )
        )

    assert worst(res.V, res.policy) < 1e-10
    rng = np.random.default_rng(7)
    pi_bad = res.policy * np.exp(0.05 * rng.normal(size=(7, 3)))
    pi_bad /= pi_bad.sum(axis=1, keepdims=True)
    V_bad, _ = soft_policy_evaluation(small, pi_bad, alpha)
    assert worst(V_bad, pi_bad) > 1e-3  # consistent on average, not per action
    assert worst(res.V + 0.01, res.policy) > 1e-3


def test_sparse_model_gives_the_same_result() -> None:
    mdp = random_mdp(40, 3, 0.9, seed=9, branching=5)
    dense, sparse = mdp.to_dense(), mdp.to_sparse()
    for solver in (soft_value_iteration, soft_policy_iteration):
        a, b = solver(dense, 0.2, tol=1e-10), solver(sparse, 0.2, tol=1e-10)
        assert sup(a.V - b.V) <= a.error_bound + b.error_bound
    np.testing.assert_allclose(
        soft_policy_evaluation(sparse, np.full((40, 3), 1 / 3), 0.2)[0],
        soft_policy_evaluation(dense, np.full((40, 3), 1 / 3), 0.2)[0],
        atol=1e-9,
    )


def test_gamma_zero_is_one_soft_max() -> None:
    mdp = TabularMDP(P=np.full((3, 2, 3), 1 / 3), R=np.arange(6.0).reshape(3, 2), gamma=0.0)
    res = soft_value_iteration(mdp, 0.5)
    np.testing.assert_allclose(res.V, [loop_soft_max(list(r), 0.5) for r in mdp.R], atol=1e-14)


# ----------------------------------------------------------------------------- hostile input


ENTRY_POINTS: dict[str, Callable[[TabularMDP, Any], object]] = {
    "soft_bellman_operator": lambda m, a: soft_bellman_operator(m, np.zeros((7, 3)), a),
    "soft_policy_evaluation": lambda m, a: soft_policy_evaluation(m, np.full((7, 3), 1 / 3), a),
    "soft_value_iteration": lambda m, a: soft_value_iteration(m, a),
    "soft_policy_iteration": lambda m, a: soft_policy_iteration(m, a),
    "boltzmann_policy": lambda m, a: boltzmann_policy(np.zeros((7, 3)), a),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_bad_alpha_values(small: TabularMDP, name: str, alpha: float) -> None:
    with pytest.raises(ValueError, match="^alpha") as err:
        ENTRY_POINTS[name](small, alpha)
    if alpha == 0.0:
        assert "value_iteration" in str(err.value)


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("alpha", ["0.1", True, np.True_, 0.1 + 0j, object(), None, [0.1]])
def test_bad_alpha_types(small: TabularMDP, name: str, alpha: Any) -> None:
    with pytest.raises(TypeError, match="^alpha"):
        ENTRY_POINTS[name](small, alpha)


def test_other_hostile_inputs(small: TabularMDP) -> None:
    assert soft_value_iteration(small, np.float32(0.5)).error_bound <= 1e-8
    assert soft_value_iteration(small, np.array(0.5)).error_bound <= 1e-8
    with pytest.raises(TypeError, match="^mdp"):
        soft_value_iteration("mdp", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^Q"):
        soft_bellman_operator(small, np.zeros((3, 3)), 0.1)
    with pytest.raises(ValueError, match="^Q"):
        soft_bellman_operator(small, np.full((7, 3), np.inf), 0.1)
    with pytest.raises(ValueError, match="^pi"):
        soft_policy_evaluation(small, np.full((7, 3), 0.5), 0.1)
    with pytest.raises(ValueError, match="^tol"):
        soft_policy_iteration(small, 0.1, tol=0.0)
    with pytest.raises(ValueError, match="^stopping"):
        soft_value_iteration(small, 0.1, stopping="max")
    with pytest.raises(ValueError, match="^V0"):
        soft_value_iteration(small, 0.1, V0=np.zeros(3))
    with pytest.raises(ValueError, match="^pi0"):
        soft_policy_iteration(small, 0.1, pi0=np.zeros((7, 3)))
    with pytest.raises(TypeError, match="^beta"):
        boltzmann_average(np.zeros(3), "1")
    with pytest.raises(ValueError, match="^omega"):
        mellowmax(np.zeros(3), -1.0)
    with pytest.raises(ValueError, match="^q"):
        mellowmax(np.zeros((2, 0)), 1.0)
    with pytest.raises(RuntimeError, match="max_iterations"):
        soft_value_iteration(small, 0.1, tol=1e-12, max_iterations=2)
    with pytest.raises(OverflowError):
        soft_bellman_operator(small, np.zeros((7, 3)), 1.7e308)


def test_gamma_too_close_to_one_raises_instead_of_a_negative_bound() -> None:
    # 1 - gamma = 2**-53 is below the row-sum rounding of P: no bound can be certified, and
    # the residual formula would divide by a non-positive gap.
    mdp = random_mdp(5, 2, 0.5, seed=0)
    near_one = TabularMDP(P=mdp.P, R=mdp.R, gamma=1.0 - 2.0**-53)
    for solver in (soft_value_iteration, soft_policy_iteration):
        with pytest.raises(RuntimeError, match="gamma"):
            solver(near_one, 0.1)


def test_soft_policy_evaluation_certificate_against_extended_precision() -> None:
    # V^pi_alpha in numpy's extended precision by iterating the soft expectation operator
    mdp = random_mdp(12, 4, 0.95, seed=11)
    rng = np.random.default_rng(12)
    pi = rng.dirichlet(np.ones(4) * 0.3, size=12)
    pi /= pi.sum(axis=1, keepdims=True)
    alpha = 2.0
    ld = np.longdouble
    P, R = dense_P(mdp).astype(ld), np.asarray(mdp.R).astype(ld)
    pil = np.asarray(mdp.check_policy(pi)).astype(ld)
    logs = np.log(np.where(pil > 0, pil, ld(1)))
    V = np.zeros(12, dtype=ld)
    for _ in range(1600):  # 0.95^1600 ~ 3e-36
        Q = R + ld(mdp.gamma) * np.einsum("sat,t->sa", P, V)
        V = (pil * (Q - ld(alpha) * logs)).sum(axis=1)
    for tol in (1e-6, 1e-11):
        V_soft, _ = soft_policy_evaluation(mdp, pi, alpha, tol=tol)
        assert float(np.max(np.abs(V_soft.astype(ld) - V))) <= tol
