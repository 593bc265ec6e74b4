"""Tests of rlnotes.dp.planning: value iteration and policy iteration with certified bounds."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes.core.mdp import TabularMDP, random_mdp
from rlnotes.dp.bellman import bellman_optimality_operator, policy_evaluation
from rlnotes.dp.planning import PlanningResult, policy_iteration, value_iteration

SETTINGS = settings(max_examples=40, deadline=None)


def _sup(x: np.ndarray) -> float:
    return float(np.max(np.abs(x)))


def _values_of(mdp: TabularMDP, actions: tuple[int, ...]) -> np.ndarray:
    rows = np.arange(mdp.n_states)
    P_pi = mdp.P[rows, list(actions)]
    r_pi = mdp.R[rows, list(actions)]
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, r_pi)


def _v_star_by_enumeration(mdp: TabularMDP) -> np.ndarray:
    """V* = max over the A^S deterministic policies of V^pi, each by a linear solve."""
    best = np.full(mdp.n_states, -np.inf)
    for actions in itertools.product(range(mdp.n_actions), repeat=mdp.n_states):
        best = np.maximum(best, _values_of(mdp, actions))
    return best


def _v_star_reference_pi(mdp: TabularMDP) -> np.ndarray:
    """Howard's policy iteration written out with dense solves and strict improvement."""
    rows = np.arange(mdp.n_states)
    actions = np.zeros(mdp.n_states, dtype=int)
    for _ in range(1000):
        V = _values_of(mdp, tuple(actions))
        Q = mdp.R + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V)
        better = Q.max(1) > Q[rows, actions] + 1e-13 * (1 + np.abs(V))
        if not better.any():
            return V
        actions = np.where(better, Q.argmax(1), actions)
    raise AssertionError("reference policy iteration did not stabilise")


@st.composite
def small_mdps(draw: st.DrawFn) -> TabularMDP:
    S = draw(st.integers(1, 5))
    A = draw(st.integers(1, 3))
    gamma = draw(st.floats(0.0, 0.95))
    seed = draw(st.integers(0, 2**31 - 1))
    sparse = draw(st.booleans())
    return random_mdp(S, A, gamma, seed=seed, branching=1 if sparse else None)


def _check_result(mdp: TabularMDP, res: PlanningResult, V_star: np.ndarray, tol: float) -> None:
    S, A = mdp.n_states, mdp.n_actions
    assert res.Q.shape == (S, A) and res.V.shape == (S,) and res.policy.shape == (S, A)
    np.testing.assert_array_equal(res.policy.sum(1), np.ones(S))
    assert set(np.unique(res.policy)) <= {0.0, 1.0}
    np.testing.assert_array_equal(res.actions, res.policy.argmax(1))
    np.testing.assert_array_equal(res.V, res.Q.max(1))
    assert res.error_bound <= tol
    err = _sup(res.V - V_star)
    assert err <= res.error_bound + 1e-12 * (1 + _sup(V_star))
    Q_star = mdp.R + mdp.gamma * mdp.P @ V_star
    assert _sup(res.Q - Q_star) <= tol + 1e-12 * (1 + _sup(V_star))
    assert res.residuals.shape == (res.iterations,)


# -- against enumeration (eq-vi-stopping-rule, eq-policy-improvement) ------------------------


@SETTINGS
@given(small_mdps(), st.sampled_from(["sup", "span"]))
def test_value_iteration_guarantee(mdp: TabularMDP, stopping: str) -> None:
    tol = 1e-6
    V_star = _v_star_by_enumeration(mdp)
    res = value_iteration(mdp, tol, stopping=stopping)
    _check_result(mdp, res, V_star, tol)
    # The greedy policy is 2 tol / (1 - gamma)-optimal.
    V_greedy = _values_of(mdp, tuple(res.actions))
    assert np.all(V_greedy >= V_star - 2 * tol / (1 - mdp.gamma) - 1e-9)


@SETTINGS
@given(small_mdps())
def test_policy_iteration_is_optimal(mdp: TabularMDP) -> None:
    V_star = _v_star_by_enumeration(mdp)
    res = policy_iteration(mdp, tol=1e-9)
    _check_result(mdp, res, V_star, 1e-9)
    np.testing.assert_allclose(_values_of(mdp, tuple(res.actions)), V_star, atol=1e-8)


@SETTINGS
@given(small_mdps())
def test_value_iteration_agrees_with_policy_iteration(mdp: TabularMDP) -> None:
    tol = 1e-7
    vi = value_iteration(mdp, tol)
    pi = policy_iteration(mdp, tol=tol)
    assert _sup(vi.V - pi.V) <= 2 * tol


@SETTINGS
@given(small_mdps(), st.integers(0, 2**31 - 1))
def test_fixed_point_and_dominance(mdp: TabularMDP, seed: int) -> None:
    res = policy_iteration(mdp, tol=1e-10)
    TQ = bellman_optimality_operator(mdp, res.Q)
    assert _sup(TQ - res.Q) <= 1e-9 * (1 + _sup(res.Q))
    pi = np.random.default_rng(seed).dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    _, Q_pi = policy_evaluation(mdp, pi)
    assert np.all(res.Q >= Q_pi - 1e-9)


# -- the stopping rule of value iteration ------------------------------------------------------


def test_sup_stopping_rule_on_a_one_state_chain() -> None:
    """One state, reward 1: V_k = (1 - gamma^k) / (1 - gamma) and V* = 1 / (1 - gamma).

    The rule ||V_{k+1} - V_k|| <= tol (1 - gamma) / gamma stops at the first k with
    gamma^k <= tol (1 - gamma) / gamma, where the error gamma^{k+1} / (1 - gamma) <= tol.
    The naive rule ||V_{k+1} - V_k|| <= tol would leave an error of about
    tol * gamma / (1 - gamma) = 99 tol.
    """
    gamma, tol = 0.99, 1e-6
    mdp = TabularMDP(P=np.ones((1, 1, 1)), R=np.ones((1, 1)), gamma=gamma)
    res = value_iteration(mdp, tol)
    k = res.iterations
    np.testing.assert_allclose(res.residuals, gamma ** np.arange(k), rtol=1e-9, atol=1e-13)
    threshold = tol * (1 - gamma) / gamma
    assert gamma ** (k - 1) <= threshold < gamma ** (k - 2)
    err = abs(res.V[0] - 1 / (1 - gamma))
    assert err <= tol
    assert err > 0.5 * tol  # the bound is nearly tight here
    naive_k = int(np.ceil(np.log(tol) / np.log(gamma)))  # first k with gamma^k <= tol
    naive_err = gamma**naive_k / (1 - gamma)
    assert naive_err > 50 * tol


def test_span_stopping_is_faster_and_still_certified() -> None:
    mdp = random_mdp(60, 3, 0.99, seed=11)
    V_star = _v_star_reference_pi(mdp)
    sup = value_iteration(mdp, 1e-8)
    span = value_iteration(mdp, 1e-8, stopping="span")
    assert span.iterations < sup.iterations / 10
    _check_result(mdp, sup, V_star, 1e-8)
    _check_result(mdp, span, V_star, 1e-8)
    # Without the MacQueen shift, the iterate V_k at the span stop is far from V*: a small span
    # certifies the greedy policy, not the values.
    V = np.zeros(mdp.n_states)
    for _ in range(span.iterations):
        V = (mdp.R + mdp.gamma * mdp.P @ V).max(1)
    assert _sup(V - V_star) > 1.0
    assert np.ptp(V - V_star) < 1e-6  # ... while V - V* is nearly constant


def test_large_model_against_reference() -> None:
    mdp = random_mdp(500, 4, 0.99, seed=12)
    V_star = _v_star_reference_pi(mdp)
    for res in (policy_iteration(mdp), value_iteration(mdp, 1e-8, stopping="span")):
        _check_result(mdp, res, V_star, 1e-8)


def test_policy_iteration_warm_start_and_gridworld_ties() -> None:
    """FrozenLake has many tied actions (holes, goal, absorbing state): no cycling."""
    import gymnasium as gym

    mdp = TabularMDP.from_gymnasium(gym.make("FrozenLake-v1"), gamma=0.99)
    V_star = _v_star_reference_pi(mdp)
    res = policy_iteration(mdp)
    _check_result(mdp, res, V_star, 1e-8)
    again = policy_iteration(mdp, pi0=res.policy)
    assert again.iterations == 1
    np.testing.assert_allclose(again.V, res.V, atol=1e-8)


# -- validation -----------------------------------------------------------------------------


def test_validation_errors() -> None:
    mdp = random_mdp(3, 2, 0.9, seed=0)
    for tol in (0.0, -1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tol"):
            value_iteration(mdp, tol)
        with pytest.raises(ValueError, match="tol"):
            policy_iteration(mdp, tol=tol)
    with pytest.raises(ValueError, match="stopping"):
        value_iteration(mdp, 1e-6, stopping="max")
    with pytest.raises(ValueError, match="V0"):
        value_iteration(mdp, 1e-6, V0=np.zeros(4))
    with pytest.raises(ValueError, match="V0"):
        value_iteration(mdp, 1e-6, V0=np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="max_iterations"):
        value_iteration(mdp, 1e-6, max_iterations=0)
    with pytest.raises(ValueError, match="pi0"):
        policy_iteration(mdp, pi0=np.full((3, 2), 0.3))
    with pytest.raises(RuntimeError, match="max_iterations"):
        value_iteration(mdp, 1e-12, max_iterations=3)
    # Values of size 1e7 carry rounding errors near 1e-9: tol = 1e-12 cannot be certified.
    base = random_mdp(30, 2, 0.9, seed=0)
    big = TabularMDP(P=base.P, R=1e6 * base.R, gamma=0.9)
    with pytest.raises(RuntimeError, match="floating point"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the evaluations warn on the way
        policy_iteration(big, tol=1e-12)


def _count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the policy-evaluation solver of rlnotes.dp.planning and count its calls."""
    import rlnotes.dp.planning as planning

    calls = [0]
    real = planning.solve_policy_values

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planning, "solve_policy_values", counted)
    return calls


def test_policy_iteration_fails_fast_below_the_rounding_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # gamma = 0.99 and |V| ~ 50: the Bellman residual has rounding near 1e-14, so its bound
    # (residual / (1 - gamma)) cannot reach 1e-12. The first evaluation that stalls above its
    # tolerance ends the run: one clear error, no warnings, no loop of ever smaller tolerances.
    calls = _count_evaluations(monkeypatch)
    mdp = random_mdp(50, 4, 0.99, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        with pytest.raises(RuntimeError, match="cannot be certified in floating point"):
            policy_iteration(mdp, tol=1e-12)
    n_stable = calls[0]
    # Exact policy iteration needs the same evaluations to become stable at a reachable tol.
    calls[0] = 0
    policy_iteration(mdp, tol=1e-8)
    assert n_stable <= calls[0] + 1


def test_policy_iteration_stops_a_cycle_caused_by_evaluation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # State 0 chooses between twin states 1 and 2 (same reward, both absorbing), so its two
    # actions tie exactly. The evaluator below is within its tolerance, but always errs in
    # favour of the action not taken; the improvement test then flips the policy back and
    # forth. Policy iteration must notice the repeat, evaluate more accurately, and finish.
    import rlnotes.dp.planning as planning
    from rlnotes.dp.bellman import residual_bound

    gamma = 0.9
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 1] = P[2, :, 2] = 1.0
    mdp = TabularMDP(P=P, R=np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]), gamma=gamma)
    v_star = np.array([gamma, 1.0, 1.0]) / (1.0 - gamma)
    real = planning.solve_policy_values
    calls = [0]

    def biased(P_pi, r_pi, g, tol, V0=None):  # type: ignore[no-untyped-def]
        calls[0] += 1
        V, _, method = real(P_pi, r_pi, g, tol, V0=V0)
        V = V.copy()
        V[2 if P_pi[0, 1] == 1.0 else 1] += 0.8 * tol  # the twin not chosen looks better
        bound = residual_bound(P_pi, r_pi, g, V)
        assert bound <= tol  # the evaluator keeps its promise
        return V, bound, method

    monkeypatch.setattr(planning, "solve_policy_values", biased)
    tol = 1e-6
    res = policy_iteration(mdp, tol=tol, max_iterations=10_000)
    assert calls[0] < 20  # a handful of evaluations, not max_iterations
    assert _sup(res.V - v_star) <= tol
    assert res.error_bound <= tol
