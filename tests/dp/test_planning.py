"""Tests of rlnotes.dp.planning: value iteration and policy iteration with certified bounds."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlnotes.dp.bellman as bellman
import rlnotes.dp.planning as planning
from rlnotes.core.mdp import TabularMDP, random_mdp, slip_chain
from rlnotes.dp.bellman import bellman_optimality_operator, policy_evaluation
from rlnotes.dp.planning import PlanningResult, policy_iteration, value_iteration

SETTINGS = settings(max_examples=40, deadline=None)


def _sup(x: np.ndarray) -> float:
    return float(np.max(np.abs(x)))


def _values_of(mdp: TabularMDP, actions: tuple[int, ...]) -> np.ndarray:
    mdp = mdp.to_dense()
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
    mdp = mdp.to_dense()
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
    mdp = mdp.to_dense()
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
    res = value_iteration(mdp, tol=tol, stopping=stopping)
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
    vi = value_iteration(mdp, tol=tol)
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
    res = value_iteration(mdp, tol=tol, stopping="sup")
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
    sup = value_iteration(mdp, tol=1e-8, stopping="sup")
    span = value_iteration(mdp, tol=1e-8)  # the default rule
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
    for res in (policy_iteration(mdp), value_iteration(mdp, tol=1e-8)):
        _check_result(mdp, res, V_star, 1e-8)


def test_policy_iteration_warm_start_and_gridworld_ties() -> None:
    """FrozenLake has many tied actions (holes, goal, absorbing state): no cycling."""
    import gymnasium as gym

    mdp = TabularMDP.from_gymnasium(gym.make("FrozenLake-v1"), gamma=0.99)
    assert mdp.is_sparse
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
        with pytest.raises(ValueError, match="^tol must"):
            value_iteration(mdp, tol=tol)
        with pytest.raises(ValueError, match="^tol must"):
            policy_iteration(mdp, tol=tol)
    for bad in ("1e-6", True, 1e-6 + 0j, None, np.array([1e-6])):
        with pytest.raises(TypeError, match="^tol must be a real number"):
            value_iteration(mdp, tol=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="^tol must be a real number"):
            policy_iteration(mdp, tol=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        value_iteration(mdp, 1e-6)  # type: ignore[call-arg]  # tol is keyword-only everywhere
    with pytest.raises(ValueError, match="^stopping must be 'span' or 'sup'"):
        value_iteration(mdp, tol=1e-6, stopping="max")
    with pytest.raises(TypeError, match="^stopping must be 'span' or 'sup'"):
        value_iteration(mdp, tol=1e-6, stopping=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^V0 must have shape \(3,\)"):
        value_iteration(mdp, tol=1e-6, V0=np.zeros(4))
    with pytest.raises(ValueError, match=r"^V0 must have shape \(3,\)"):
        value_iteration(mdp, tol=1e-6, V0=np.zeros(0))
    with pytest.raises(ValueError, match="^V0 contains NaN"):
        value_iteration(mdp, tol=1e-6, V0=np.array([0.0, np.nan, 0.0]))
    with pytest.raises(TypeError, match="^V0 must hold real numbers"):
        value_iteration(mdp, tol=1e-6, V0=np.zeros(3, dtype=complex))
    with pytest.raises(ValueError, match="^max_iterations must be an integer >= 1"):
        value_iteration(mdp, tol=1e-6, max_iterations=0)
    with pytest.raises(TypeError, match="^max_iterations must be an integer"):
        value_iteration(mdp, tol=1e-6, max_iterations=10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^pi0 must sum to 1"):
        policy_iteration(mdp, pi0=np.full((3, 2), 0.3))
    with pytest.raises(RuntimeError, match="max_iterations"):
        value_iteration(mdp, tol=1e-12, stopping="sup", max_iterations=3)
    # Values of size 1e7 carry rounding errors near 1e-9: tol = 1e-12 cannot be certified.
    base = random_mdp(30, 2, 0.9, seed=0)
    big = TabularMDP(P=base.P, R=1e6 * base.R, gamma=0.9)
    with pytest.raises(RuntimeError, match="floating point"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the evaluations warn on the way
        policy_iteration(big, tol=1e-12)
    with pytest.raises(RuntimeError, match="cannot be certified in floating point"):
        value_iteration(big, tol=1e-12)


def _count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the policy-evaluation solver of rlnotes.dp.planning and count its calls."""
    import rlnotes.dp.planning as planning

    calls = [0]
    real = bellman.solve_policy_values

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
    real = bellman.solve_policy_values
    calls = [0]

    def biased(P_pi, r_pi, g, tol, V0=None, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        V, _, method = real(P_pi, r_pi, g, tol, V0=V0, **kwargs)
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


# -- the defects of the review (issue 8), each with its exact case ----------------------------


@pytest.fixture(scope="module")
def near_one() -> tuple[TabularMDP, np.ndarray]:
    """random_mdp(60, 3, 0.999, seed=0) and its V* in 30-digit arithmetic.

    V* is V^pi of the policy that policy iteration finds, solved with mpmath; the policy is
    verified optimal there (its T* residual is at the 30-digit level).
    """
    mdp = random_mdp(60, 3, 0.999, seed=0)
    actions = policy_iteration(mdp, tol=1e-8).actions
    mpmath.mp.dps = 30
    g = mpmath.mpf(float(mdp.gamma))
    P = [[[mpmath.mpf(float(x)) for x in mdp.P[s, a]] for a in range(3)] for s in range(60)]
    R = [[mpmath.mpf(float(x)) for x in mdp.R[s]] for s in range(60)]
    A = mpmath.matrix(60, 60)
    for s in range(60):
        for t in range(60):
            A[s, t] = (1 if s == t else 0) - g * P[s][actions[s]][t]
    V = mpmath.lu_solve(A, mpmath.matrix([R[s][actions[s]] for s in range(60)]))
    worst = mpmath.mpf(0)
    for s in range(60):
        q = [R[s][a] + g * mpmath.fsum(P[s][a][t] * V[t] for t in range(60)) for a in range(3)]
        worst = max(worst, abs(max(q) - V[s]))
    assert worst < mpmath.mpf("1e-20")  # the policy is optimal
    return mdp, np.array([V[s] for s in range(60)], dtype=object)


def _exact_error(V: np.ndarray, V_star: np.ndarray) -> float:
    return float(max(abs(mpmath.mpf(float(v)) - w) for v, w in zip(V, V_star, strict=True)))


def test_false_certificate_case(near_one: tuple[TabularMDP, np.ndarray]) -> None:
    """Plain iteration reaches a floating-point fixed point (d = 0) whose true error is
    3.6e-11, where the old certificate reported 0.0. Now tol = 1e-300 fails at once, and
    every certificate returned holds against 30-digit V*."""
    mdp, V_star = near_one
    V = np.zeros(60)
    for _ in range(200_000):
        V_next = (mdp.R + mdp.gamma * mdp.P @ V).max(axis=1)
        if np.array_equal(V_next, V):
            break
        V = V_next
    else:
        raise AssertionError("no floating-point fixed point")
    assert 1e-11 < _exact_error(V, V_star) < 1e-10  # about 3.6e-11, and d = 0 exactly
    calls = [0]
    real = bellman.certified_lookahead

    def counted(*args: object) -> object:
        calls[0] += 1
        return real(*args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(planning, "certified_lookahead", counted)
        for stopping in ("sup", "span"):
            with pytest.raises(RuntimeError, match="cannot be certified in floating point"):
                value_iteration(mdp, tol=1e-300, stopping=stopping)
    assert calls[0] == 0  # fails before the first sweep
    for tol in (1e-6, 1e-8, 3e-9):
        for res in (
            value_iteration(mdp, tol=tol, stopping="sup"),
            value_iteration(mdp, tol=tol),
            policy_iteration(mdp, tol=tol),
        ):
            assert _exact_error(res.V, V_star) <= res.error_bound <= tol


def test_tol_below_the_real_floor_stalls_and_raises(
    near_one: tuple[TabularMDP, np.ndarray],
) -> None:
    """tol = 1e-10 is above the a-priori floor but below what values of size 1e3 allow at
    gamma = 0.999: the run ends when the iterates stall, not after max_iterations."""
    mdp, _ = near_one
    with pytest.raises(
        RuntimeError, match="stall at the rounding level after (\\d+) sweeps"
    ) as info:
        value_iteration(mdp, tol=1e-10, stopping="sup", max_iterations=1_000_000)
    sweeps = int(str(info.value).split("after ")[1].split(" sweeps")[0])
    assert sweeps < 100_000


def test_default_stopping_is_span_and_shifts_absorbing_states() -> None:
    """The span rule returns the MacQueen midpoint: the absorbing state of FrozenLake, whose
    exact value is 0, gets a small constant within the bound; the sup rule keeps it 0."""
    import gymnasium as gym

    mdp = TabularMDP.from_gymnasium(gym.make("FrozenLake-v1"), gamma=0.99)
    span = value_iteration(mdp, tol=1e-8)
    sup = value_iteration(mdp, tol=1e-8, stopping="sup")
    assert sup.V[-1] == 0.0
    assert span.V[-1] != 0.0 and abs(span.V[-1]) <= span.error_bound <= 1e-8
    assert span.iterations <= sup.iterations
    V_star = _v_star_reference_pi(mdp)
    _check_result(mdp, span, V_star, 1e-8)
    _check_result(mdp, sup, V_star, 1e-8)


@SETTINGS
@given(small_mdps(), st.sampled_from([1e-3, 1e-6, 1e-9]))
def test_span_never_stops_later_than_sup(mdp: TabularMDP, tol: float) -> None:
    span = value_iteration(mdp, tol=tol)
    sup = value_iteration(mdp, tol=tol, stopping="sup")
    assert span.iterations <= sup.iterations
    assert span.error_bound <= tol and sup.error_bound <= tol


@pytest.mark.parametrize("sparse", [False, True])
def test_overflow_raises_at_once(sparse: bool) -> None:
    """R = 1e308: the values overflow. Before, the inf - inf = NaN differences looped for
    max_iterations sweeps or came back as NaN."""
    mdp = random_mdp(5, 2, 0.9, seed=0, sparse=sparse)
    big = TabularMDP(P=mdp.P, R=np.full((5, 2), 1e308), gamma=0.9)
    with pytest.raises(OverflowError, match="overflowed"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value_iteration(big, tol=1e300, max_iterations=1_000_000)  # tol above the floor
    with pytest.raises(OverflowError, match="overflowed"), warnings.catch_warnings():
        warnings.simplefilter("error")
        policy_iteration(big, tol=1e300)
    # a small tol is below the rounding floor of such values: that is seen before any sweep
    with pytest.raises(RuntimeError, match="cannot be certified in floating point"):
        value_iteration(big, tol=1e-6)


def test_sweeps_are_bounded_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """If rounding were worse than its bound (simulated: noise added to every sweep, not
    reported in rho), the sup rule could never certify. The run stops at the sweep count
    the contraction guarantees, computed after the first sweep, not at max_iterations."""
    mdp = random_mdp(10, 2, 0.9, seed=1)
    real = bellman.certified_lookahead
    rng = np.random.default_rng(0)
    calls = [0]

    def noisy(m: TabularMDP, v: np.ndarray) -> tuple[np.ndarray, float]:
        calls[0] += 1
        Q, rho = real(m, v)
        return Q + 1e-7 * rng.standard_normal(Q.shape), rho

    monkeypatch.setattr(planning, "certified_lookahead", noisy)
    with pytest.raises(RuntimeError, match="contraction guarantees it by then"):
        value_iteration(mdp, tol=1e-8, stopping="sup", max_iterations=1_000_000)
    # gamma^k ||d_1|| / (1 - gamma) <= 1e-8 needs about 200 sweeps; the limit doubles it
    assert calls[0] < 1_000


@pytest.mark.parametrize(
    "make",
    [
        lambda: random_mdp(300, 3, 0.95, seed=2, branching=4),
        lambda: slip_chain(400, 0.99).to_dense(),
    ],
)
def test_sparse_and_dense_planning_agree(make: object) -> None:
    dense: TabularMDP = make()  # type: ignore[operator]
    sparse = dense.to_sparse()
    assert sparse.is_sparse and not dense.is_sparse
    solvers: tuple[Callable[[TabularMDP], PlanningResult], ...] = (
        lambda m: policy_iteration(m, tol=1e-11),
        lambda m: value_iteration(m, tol=5e-11),
        lambda m: value_iteration(m, tol=5e-11, stopping="sup"),
    )
    for solve in solvers:
        a, b = solve(dense), solve(sparse)
        assert np.max(np.abs(a.V - b.V)) <= 1e-10
        assert np.max(np.abs(a.Q - b.Q)) <= 1e-10
    V_star = _v_star_reference_pi(dense)
    _check_result(sparse, policy_iteration(sparse, tol=1e-11), V_star, 1e-11)


def test_policy_iteration_switches_on_any_advantage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 3000-state slip chain of the review: with the threshold delta = tol (1 - gamma) / 4
    policy iteration needed 503 evaluations (the advantage of moving right decays by a factor
    9 per cell, so each evaluation let only the cells where it exceeded delta switch). It now
    switches on any advantage above the rounding of the two entries compared."""
    calls = _count_evaluations(monkeypatch)
    mdp = slip_chain(3000, 0.99)
    res = policy_iteration(mdp)
    assert calls[0] == res.iterations <= 20
    # V* is the value of "always right", checked optimal by its T* residual
    dense = mdp.to_dense()
    rows = np.arange(3000)
    P_right = dense.P[rows, 1]
    V_right = np.linalg.solve(np.eye(3000) - 0.99 * P_right, dense.R[:, 1])
    assert np.max(np.abs((dense.R + 0.99 * dense.P @ V_right).max(axis=1) - V_right)) < 1e-13
    assert np.max(np.abs(res.V - V_right)) <= res.error_bound <= 1e-8
    np.testing.assert_array_equal(res.actions[:-1], 1)
