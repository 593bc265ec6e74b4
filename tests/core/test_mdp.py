"""Tests of rlnotes.core.mdp: validation of TabularMDP and the model of gymnasium toy-text envs."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as scipy_sparse

import rlnotes
from rlnotes.core.mdp import TabularMDP, random_mdp, row_sum_error, slip_chain


def _small() -> tuple[np.ndarray, np.ndarray]:
    P = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.3, 0.7]]])
    R = np.array([[1.0, 0.0], [0.5, -1.0]])
    return P, R


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("P_bad", "match"),
    [
        (np.ones((2, 2)), "^P must be a 3-d array"),  # wrong rank
        (np.full((2, 2, 3), 1 / 3), r"^P must have shape \(S, A, S\)"),
        (np.full((2, 2, 2), 0.6), "^P must sum to 1"),
        (np.array([[[1.5, -0.5], [1, 0]], [[0, 1], [0, 1]]]), "^P must be non-negative"),
        (np.array([[[np.nan, 1], [1, 0]], [[0, 1], [0, 1]]]), "^P contains NaN"),
        (np.array([[[np.inf, 1], [1, 0]], [[0, 1], [0, 1]]]), "^P must be finite"),
        (np.zeros((0, 2, 0)), "^P must have at least one state and one action"),
        (np.zeros((2, 0, 2)), "^P must have at least one state and one action"),
    ],
)
def test_bad_P(P_bad: np.ndarray, match: str) -> None:
    R = np.zeros((P_bad.shape[0], P_bad.shape[1])) if P_bad.ndim == 3 else np.zeros((2, 2))
    with pytest.raises(ValueError, match=match):
        TabularMDP(P=P_bad, R=R, gamma=0.9)


@pytest.mark.parametrize(
    ("R_bad", "match"),
    [
        (np.zeros((2, 3)), r"^R must have shape \(2, 2\)"),
        (np.zeros(2), "^R must be a 2-d array"),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), "^R contains NaN"),
        (np.array([[np.inf, 0.0], [0.0, 0.0]]), "^R must be finite"),
    ],
)
def test_bad_R(R_bad: np.ndarray, match: str) -> None:
    P, _ = _small()
    with pytest.raises(ValueError, match=match):
        TabularMDP(P=P, R=R_bad, gamma=0.9)


@pytest.mark.parametrize("gamma", [1.0, -0.1, 1.5, float("nan")])
def test_bad_gamma_value(gamma: float) -> None:
    P, R = _small()
    with pytest.raises(ValueError, match="^gamma must"):
        TabularMDP(P=P, R=R, gamma=gamma)


@pytest.mark.parametrize("gamma", ["0.9", True, 0.9 + 0j, None, [0.9]])
def test_bad_gamma_type(gamma: object) -> None:
    P, R = _small()
    with pytest.raises(TypeError, match="^gamma must be a real number"):
        TabularMDP(P=P, R=R, gamma=gamma)  # type: ignore[arg-type]


def test_complex_and_string_arrays_are_type_errors() -> None:
    P, R = _small()
    with pytest.raises(TypeError, match="^P must hold real numbers"):
        TabularMDP(P=P.astype(complex), R=R, gamma=0.9)
    with pytest.raises(TypeError, match="^R must hold real numbers"):
        TabularMDP(P=P, R=R + 1j, gamma=0.9)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^R must"):
        TabularMDP(P=P, R="R", gamma=0.9)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^P must hold real numbers"):
        TabularMDP(P=scipy_sparse.csr_array(P.reshape(4, 2).astype(complex)), R=R, gamma=0.9)


def test_bad_mu0_and_policy() -> None:
    P, R = _small()
    with pytest.raises(ValueError, match="^mu0 must sum to 1"):
        TabularMDP(P=P, R=R, gamma=0.5, mu0=np.array([0.6, 0.6]))
    with pytest.raises(ValueError, match=r"^mu0 must have shape \(2,\)"):
        TabularMDP(P=P, R=R, gamma=0.5, mu0=np.zeros(0))
    mdp = TabularMDP(P=P, R=R, gamma=0.5)
    with pytest.raises(ValueError, match="^pi must sum to 1"):
        mdp.check_policy(np.full((2, 2), 0.4))
    with pytest.raises(ValueError, match=r"^pi must have shape \(2, 2\)"):
        mdp.check_policy(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"^pi must have shape \(2, 2\)"):
        mdp.check_policy(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="^Q contains NaN"):
        mdp.check_q(np.full((2, 2), np.nan))


def test_rows_near_one_are_renormalized() -> None:
    """Rows within 1e-8 of summing to 1 are accepted and divided by their sums."""
    P, R = _small()
    P_off = P * np.array([1 + 9e-9, 1 - 9e-9])[:, None, None]
    mu0 = np.array([0.5 + 4e-9, 0.5 + 4e-9])
    mdp = TabularMDP(P=P_off, R=R, gamma=0.5, mu0=mu0)
    np.testing.assert_allclose(mdp.P.sum(axis=2), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(mdp.P, P, rtol=0, atol=1e-15)
    assert abs(mdp.mu0.sum() - 1.0) <= 1e-15
    assert (
        abs(mdp.check_policy([[0.5 + 4e-9, 0.5 + 4e-9], [1.0, 0.0]]).sum(axis=1) - 1).max() < 1e-15
    )
    sparse = TabularMDP(P=scipy_sparse.csr_array(P_off.reshape(4, 2)), R=R, gamma=0.5)
    np.testing.assert_allclose(sparse.P.toarray(), P.reshape(4, 2), rtol=0, atol=1e-15)


def test_immutable() -> None:
    P, R = _small()
    mdp = TabularMDP(P=P, R=R, gamma=0.5)
    P[0, 0, 0] = 0.0  # the MDP holds a copy
    assert mdp.P[0, 0, 0] == 0.5
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        mdp.P_matrix[0, 0] = 1.0
    sparse = mdp.to_sparse()
    with pytest.raises(ValueError):
        sparse.P.data[0] = 1.0


def test_random_mdp_reproducible_and_valid() -> None:
    a = random_mdp(5, 3, 0.9, seed=3)
    b = random_mdp(5, 3, 0.9, seed=3)
    assert np.array_equal(a.P, b.P) and np.array_equal(a.R, b.R)
    sparse = random_mdp(6, 2, 0.9, seed=0, branching=2)
    assert ((sparse.P > 0).sum(axis=2) == 2).all()
    assert sparse.max_branching == 2


@pytest.mark.parametrize(
    ("seed", "error"),
    [(-1, ValueError), (2**64, ValueError), (True, TypeError), ("1", TypeError), (1.0, TypeError)],
)
def test_random_mdp_seed_is_validated(seed: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="^seed must"):
        random_mdp(3, 2, 0.9, seed=seed)  # type: ignore[arg-type]


# -- the sparse representation -----------------------------------------------------------------


@pytest.mark.parametrize("branching", [None, 3])
def test_random_mdp_sparse_is_the_same_model(branching: int | None) -> None:
    dense = random_mdp(7, 3, 0.9, seed=5, branching=branching)
    sparse = random_mdp(7, 3, 0.9, seed=5, branching=branching, sparse=True)
    assert sparse.is_sparse and not dense.is_sparse
    assert scipy_sparse.issparse(sparse.P) and sparse.P.format == "csr"
    assert sparse.P.shape == (21, 7)
    # the same draws; the two renormalizations (sparse and dense row sums) agree to rounding
    np.testing.assert_allclose(sparse.P.toarray(), dense.P_matrix, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(sparse.P.toarray() > 0, dense.P_matrix > 0)
    np.testing.assert_array_equal(sparse.R, dense.R)
    assert sparse.max_branching == dense.max_branching == (branching or 7)
    np.testing.assert_allclose(
        sparse.to_dense().P.reshape(21, 7), sparse.P.toarray(), rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(dense.to_sparse().P.toarray(), dense.P_matrix, rtol=0, atol=1e-15)
    assert sparse.to_sparse() is sparse and dense.to_dense() is dense


def test_sparse_P_accepts_any_format_and_sums_duplicates() -> None:
    P, R = _small()
    coo = scipy_sparse.coo_array(
        ([0.25, 0.25, 0.5, 1.0, 1.0, 0.3, 0.7], ([0, 0, 0, 1, 2, 3, 3], [0, 0, 1, 0, 1, 0, 1])),
        shape=(4, 2),
    )
    mdp = TabularMDP(P=coo, R=R, gamma=0.9)
    np.testing.assert_array_equal(mdp.P.toarray(), P.reshape(4, 2))
    assert mdp.n_states == 2 and mdp.n_actions == 2


@pytest.mark.parametrize(
    ("P_bad", "match"),
    [
        (scipy_sparse.csr_array(np.full((3, 2), 0.5)), r"^P as a sparse matrix must have shape"),
        (scipy_sparse.csr_array(np.full((4, 2), 0.6)), r"^P must sum to 1 .* P\[0, 0\]"),
        (
            scipy_sparse.csr_array(np.array([[1.5, -0.5], [1, 0], [0, 1], [0, 1]])),
            "^P must be non-negative",
        ),
        (
            scipy_sparse.csr_array(np.array([[np.nan, 1], [1, 0], [0, 1], [0, 1]])),
            "^P contains NaN",
        ),
        (
            scipy_sparse.csr_array(np.array([[np.inf, 1], [1, 0], [0, 1], [0, 1]])),
            "^P must be finite",
        ),
    ],
)
def test_bad_sparse_P(P_bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TabularMDP(P=P_bad, R=np.zeros((2, 2)), gamma=0.9)


def test_sparse_P_needs_states_and_actions() -> None:
    with pytest.raises(ValueError, match="^R must have at least one state"):
        TabularMDP(P=scipy_sparse.csr_array((0, 0)), R=np.zeros((0, 0)), gamma=0.9)


def test_row_sum_error_is_a_true_bound() -> None:
    """The bound on |sum_s' P(s'|s, a) - 1| holds against exact rational sums of the floats."""
    for mdp in (random_mdp(40, 3, 0.9, seed=1), random_mdp(40, 3, 0.9, seed=1, sparse=True)):
        exact = max(
            abs(Fraction(sum(Fraction(float(x)) for x in row)) - 1)
            for row in np.asarray(mdp.to_dense().P_matrix)
        )
        assert float(exact) <= mdp.row_sum_error <= 8 * 2.0**-53
    assert row_sum_error(np.ones((3, 1))) <= 1e-18


def test_slip_chain() -> None:
    mdp = slip_chain(5, 0.9, slip=0.2)
    assert mdp.is_sparse and mdp.P.nnz == 20  # two next cells per (s, a)
    P = mdp.to_dense().P
    np.testing.assert_allclose(P[2, 1], [0, 0.2, 0, 0.8, 0])
    np.testing.assert_allclose(P[0, 0], [0.8, 0.2, 0, 0, 0])  # a move past the end stays
    np.testing.assert_allclose(P[4, 1], [0, 0, 0, 0.2, 0.8])
    np.testing.assert_array_equal(mdp.R[:, 0], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(slip_chain(5, 0.9, slip=0.2, sparse=False).P, P)
    assert slip_chain(10_000, 0.99).P.nnz == 40_000  # the benchmark chain: about 4e4 non-zeros


# -- from_gymnasium on a hand-written model ----------------------------------------------


def _fake_env(
    P_dict: dict[Any, Any], n_states: int, n_actions: int, isd: list[float]
) -> SimpleNamespace:
    base = SimpleNamespace(
        P=P_dict,
        observation_space=gym.spaces.Discrete(n_states),
        action_space=gym.spaces.Discrete(n_actions),
        initial_state_distrib=np.array(isd),
    )
    return SimpleNamespace(unwrapped=base)


def test_from_gymnasium_sums_duplicates_and_adds_absorbing_state() -> None:
    # State 0, action 0 lists next state 1 twice; state 1, action 0 terminates with reward 5.
    P_dict = {
        0: {
            0: [(0.25, 1, 1.0, False), (0.5, 1, 3.0, False), (0.25, 0, 0.0, False)],
            1: [(1.0, 0, -1.0, False)],
        },
        1: {0: [(0.4, 1, 5.0, True), (0.6, 0, 0.0, False)], 1: [(1.0, 1, 2.0, False)]},
    }
    mdp = TabularMDP.from_gymnasium(_fake_env(P_dict, 2, 2, [1.0, 0.0]), gamma=0.5)
    expected_P = np.zeros((3, 2, 3))
    expected_P[0, 0] = [0.25, 0.75, 0.0]
    expected_P[0, 1] = [1.0, 0.0, 0.0]
    expected_P[1, 0] = [0.6, 0.0, 0.4]
    expected_P[1, 1] = [0.0, 1.0, 0.0]
    expected_P[2, :, 2] = 1.0
    expected_R = np.array([[0.25 * 1 + 0.5 * 3, -1.0], [0.4 * 5, 2.0], [0.0, 0.0]])
    assert mdp.is_sparse  # the default
    np.testing.assert_allclose(mdp.to_dense().P, expected_P, atol=1e-15)
    np.testing.assert_allclose(mdp.R, expected_R, atol=1e-15)
    np.testing.assert_array_equal(mdp.mu0, [1.0, 0.0, 0.0])
    assert mdp.gamma == 0.5


def test_from_gymnasium_errors() -> None:
    good = {0: {0: [(1.0, 0, 0.0, False)]}}
    with pytest.raises(ValueError, match="^gamma must lie in"):
        TabularMDP.from_gymnasium(_fake_env(good, 1, 1, [1.0]), gamma=1.0)
    with pytest.raises(TypeError, match="^gamma must be a real number"):
        TabularMDP.from_gymnasium(_fake_env(good, 1, 1, [1.0]), gamma="0.9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^env must expose its model"):
        TabularMDP.from_gymnasium(SimpleNamespace(unwrapped=SimpleNamespace()), gamma=0.9)
    with pytest.raises(ValueError, match="^env must expose its model"):
        TabularMDP.from_gymnasium(gym.make("CartPole-v1"), gamma=0.9)
    with pytest.raises(ValueError, match=r"^env.unwrapped.P\[0\]\[0\] probabilities sum to 0.7"):
        TabularMDP.from_gymnasium(_fake_env({0: {0: [(0.7, 0, 0.0, False)]}}, 1, 1, [1.0]), 0.9)
    with pytest.raises(ValueError, match=r"^env.unwrapped.P\[0\]\[0\]\[0\] leads to state 3"):
        TabularMDP.from_gymnasium(_fake_env({0: {0: [(1.0, 3, 0.0, False)]}}, 1, 1, [1.0]), 0.9)
    with pytest.raises(ValueError, match=r"^env.unwrapped.P\[0\]\[0\] lists no outcomes"):
        TabularMDP.from_gymnasium(_fake_env({0: {0: []}}, 1, 1, [1.0]), 0.9)
    with pytest.raises(ValueError, match="^env has fickle_passenger=True"):
        TabularMDP.from_gymnasium(gym.make("Taxi-v4", fickle_passenger=True), 0.9)
    with pytest.raises(TypeError, match="^sparse must be a bool"):
        TabularMDP.from_gymnasium(_fake_env(good, 1, 1, [1.0]), 0.9, sparse="yes")  # type: ignore[arg-type]


_PROB = r": the probability must lie in \[0, 1\], "
_TUPLE = r" must be a \(prob, next_state, reward, terminated\) 4-tuple, "


@pytest.mark.parametrize(
    ("outcomes", "error", "match"),
    [
        # probabilities 1.5 and -0.5 sum to 1, so only a per-outcome check catches them
        ([(1.5, 0, 0.0, False), (-0.5, 1, 0.0, False)], ValueError, _PROB + "got 1.5"),
        ([(-0.5, 1, 0.0, False), (1.5, 0, 0.0, False)], ValueError, _PROB + "got -0.5"),
        ([(1.0, 0, 0.0)], ValueError, _TUPLE + "got a 3-tuple"),
        ([(1.0, 0)], ValueError, _TUPLE + "got a 2-tuple"),
        ([1.0], ValueError, _TUPLE + "got 1.0"),
        ([(float("nan"), 0, 0.0, False)], ValueError, _PROB + "got nan"),
        ([(1.0, 0, float("inf"), False)], ValueError, ": the reward must be finite"),
        ([("1.0", 0, 0.0, False)], TypeError, ": the probability must be a real number"),
        ([(1.0, 0, "0", False)], TypeError, ": the reward must be a real number"),
        ([(1.0, 0.0, 0.0, False)], TypeError, ": the next state must be an integer"),
        ([(1.0, 0, 0.0, "no")], TypeError, ": the terminated flag must be a bool"),
        ([(1.0, 0, 0.0, 0.0)], TypeError, ": the terminated flag must be a bool"),
    ],
)
def test_from_gymnasium_malformed_outcomes(
    outcomes: list[object], error: type[Exception], match: str
) -> None:
    env = _fake_env({0: {0: outcomes}, 1: {0: [(1.0, 1, 0.0, True)]}}, 2, 1, [1.0, 0.0])
    with pytest.raises(error, match=r"^env\.unwrapped\.P\[0\]\[0\]\[0\]" + match):
        TabularMDP.from_gymnasium(env, gamma=0.9)


def test_from_gymnasium_builds_taxi_sparse() -> None:
    env = gym.make("Taxi-v4")
    mdp = TabularMDP.from_gymnasium(env, gamma=0.9)
    dense = TabularMDP.from_gymnasium(env, gamma=0.9, sparse=False)
    assert mdp.is_sparse and mdp.P.shape == (501 * 6, 501)
    assert mdp.P.nnz <= 501 * 6  # Taxi is deterministic: one next state per (s, a)
    assert mdp.max_branching == 1
    np.testing.assert_array_equal(mdp.P.toarray(), dense.P_matrix)
    np.testing.assert_array_equal(mdp.R, dense.R)
    np.testing.assert_array_equal(mdp.mu0, dense.mu0)


# -- from_gymnasium against Monte Carlo in the real environments ---------------------------

ENVS = ["FrozenLake-v1", "CliffWalking-v1", "Taxi-v4"]


def _model_shape(name: str) -> tuple[int, int]:
    return {"FrozenLake-v1": (16, 4), "CliffWalking-v1": (48, 4), "Taxi-v4": (500, 6)}[name]


@pytest.mark.parametrize("name", ENVS)
def test_from_gymnasium_shapes_and_start(name: str) -> None:
    env = gym.make(name)
    mdp = TabularMDP.from_gymnasium(env, gamma=0.9)
    S, A = _model_shape(name)
    assert (mdp.n_states, mdp.n_actions) == (S + 1, A)
    np.testing.assert_array_equal(mdp.to_dense().P[S, :, S], np.ones(A))  # absorbing
    assert mdp.mu0[S] == 0.0
    # mu0 agrees with the empirical distribution of env.reset over many seeds.
    starts = np.array([env.reset(seed=k)[0] for k in range(400)])
    support = np.flatnonzero(mdp.mu0)
    assert set(starts.tolist()) <= set(support.tolist())
    if name == "Taxi-v4":
        assert support.size == 300


def _mc_discounted_return(
    env: gym.Env, pi: np.ndarray, gamma: float, n_episodes: int, horizon: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = pi.shape[1]
    out = np.empty(n_episodes)
    obs, _ = env.reset(seed=seed)
    for ep in range(n_episodes):
        if ep > 0:
            obs, _ = env.reset()
        g, disc = 0.0, 1.0
        for _ in range(horizon):
            a = int(rng.choice(A, p=pi[int(obs)]))
            obs, r, terminated, truncated, _ = env.step(a)
            g += disc * float(r)
            disc *= gamma
            if terminated or truncated:
                break
        out[ep] = g
    return out


def _naive_model(env: gym.Env, mdp: TabularMDP) -> TabularMDP:
    """The model that takes the env's listed next state literally, with no absorbing state."""
    S, A = mdp.n_states - 1, mdp.n_actions
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            for prob, nxt, _, _ in env.unwrapped.P[s][a]:  # type: ignore[attr-defined]
                P[s, a, nxt] += prob
    return TabularMDP(P=P, R=mdp.R[:S], gamma=mdp.gamma, mu0=mdp.mu0[:S])


@pytest.mark.parametrize(
    ("name", "gamma"), [(n, 0.95 if n == "FrozenLake-v1" else 0.9) for n in ENVS]
)
def test_from_gymnasium_values_match_monte_carlo(name: str, gamma: float) -> None:
    """V^pi of the model, averaged over mu0, equals the mean discounted return in the env.

    The policy takes the model's optimal action with probability 0.9 and a uniform one
    otherwise, so episodes reach the goal / drop-off and terminate. Episodes are cut at 200
    steps (400 for FrozenLake at gamma = 0.95): the truncation bias is at most
    gamma**H * max|r| / (1 - gamma) < 1e-6, far below the standard error. For CliffWalking and
    Taxi, whose terminal transitions do not lead to absorbing states in ``P``, the model that
    reads ``P`` literally is rejected by the same test, so the test can fail.
    """
    from rlnotes.dp.bellman import policy_evaluation
    from rlnotes.dp.planning import policy_iteration

    horizon = 400 if name == "FrozenLake-v1" else 200
    env = gym.make(name, max_episode_steps=horizon)
    mdp = TabularMDP.from_gymnasium(env, gamma=gamma)
    pi = 0.9 * policy_iteration(mdp).policy + 0.1 / mdp.n_actions
    V, _ = policy_evaluation(mdp, pi)
    exact = float(mdp.mu0 @ V)
    returns = _mc_discounted_return(env, pi[:-1], gamma, 3000, horizon, seed=7)
    se = returns.std(ddof=1) / np.sqrt(returns.size)
    assert abs(returns.mean() - exact) < 4 * se, (name, returns.mean(), exact, se)
    assert abs(V[-1]) <= 1e-10  # the absorbing state: 0 within policy_evaluation's tol
    if name != "FrozenLake-v1":
        naive = _naive_model(env, mdp)
        V_naive, _ = policy_evaluation(naive, pi[:-1])
        assert abs(returns.mean() - float(naive.mu0 @ V_naive)) > 4 * se


@pytest.mark.parametrize(
    "call",
    [
        lambda m: rlnotes.bellman_operator(m, np.zeros((2, 2)), np.full((2, 2), 0.5)),
        lambda m: rlnotes.bellman_optimality_operator(m, np.zeros((2, 2))),
        lambda m: rlnotes.policy_evaluation(m, np.full((2, 2), 0.5)),
        lambda m: rlnotes.value_iteration(m, tol=1e-6),
        lambda m: rlnotes.policy_iteration(m),
        lambda m: rlnotes.enumerate_trajectories(m, np.full((2, 2), 0.5), 2),
        lambda m: rlnotes.policy_chain(m, np.full((2, 2), 0.5)),
    ],
)
def test_tabular_algorithms_reject_what_is_not_a_tabular_mdp(call: Any) -> None:
    with pytest.raises(TypeError, match="^mdp must be a TabularMDP, got dict"):
        call({"P": np.eye(2)})
