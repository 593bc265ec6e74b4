"""Tests of rlnotes.core.mdp: validation of TabularMDP and the model of gymnasium toy-text envs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlnotes
from rlnotes.core.mdp import TabularMDP, random_mdp


def _small() -> tuple[np.ndarray, np.ndarray]:
    P = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.3, 0.7]]])
    R = np.array([[1.0, 0.0], [0.5, -1.0]])
    return P, R


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("P_bad", "match"),
    [
        (np.ones((2, 2)), "P"),  # wrong rank
        (np.full((2, 2, 3), 1 / 3), "P"),  # S' != S
        (np.full((2, 2, 2), 0.6), "P must sum to 1"),
        (np.array([[[1.5, -0.5], [1, 0]], [[0, 1], [0, 1]]]), "P has negative"),
        (np.array([[[np.nan, 1], [1, 0]], [[0, 1], [0, 1]]]), "P contains NaN"),
        (np.zeros((0, 2, 0)), "P"),
    ],
)
def test_bad_P(P_bad: np.ndarray, match: str) -> None:
    R = np.zeros((P_bad.shape[0], P_bad.shape[1])) if P_bad.ndim == 3 else np.zeros((2, 2))
    with pytest.raises(ValueError, match=match):
        TabularMDP(P=P_bad, R=R, gamma=0.9)


@pytest.mark.parametrize(
    ("R_bad", "match"),
    [
        (np.zeros((2, 3)), "R must have shape"),
        (np.zeros(2), "R must have ndim"),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), "R contains NaN"),
        (np.array([[np.inf, 0.0], [0.0, 0.0]]), "R contains inf"),
    ],
)
def test_bad_R(R_bad: np.ndarray, match: str) -> None:
    P, _ = _small()
    with pytest.raises(ValueError, match=match):
        TabularMDP(P=P, R=R_bad, gamma=0.9)


@pytest.mark.parametrize("gamma", [1.0, -0.1, 1.5, float("nan"), "x"])
def test_bad_gamma(gamma: object) -> None:
    P, R = _small()
    with pytest.raises(ValueError, match="gamma"):
        TabularMDP(P=P, R=R, gamma=gamma)  # type: ignore[arg-type]


def test_bad_mu0_and_policy() -> None:
    P, R = _small()
    with pytest.raises(ValueError, match="mu0"):
        TabularMDP(P=P, R=R, gamma=0.5, mu0=np.array([0.6, 0.6]))
    mdp = TabularMDP(P=P, R=R, gamma=0.5)
    with pytest.raises(ValueError, match="pi"):
        mdp.check_policy(np.full((2, 2), 0.4))
    with pytest.raises(ValueError, match="pi"):
        mdp.check_policy(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="Q"):
        mdp.check_q(np.full((2, 2), np.nan))


def test_immutable() -> None:
    P, R = _small()
    mdp = TabularMDP(P=P, R=R, gamma=0.5)
    P[0, 0, 0] = 0.0  # the MDP holds a copy
    assert mdp.P[0, 0, 0] == 0.5
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 1.0


def test_random_mdp_reproducible_and_valid() -> None:
    a = random_mdp(5, 3, 0.9, seed=3)
    b = random_mdp(5, 3, 0.9, seed=3)
    assert np.array_equal(a.P, b.P) and np.array_equal(a.R, b.R)
    sparse = random_mdp(6, 2, 0.9, seed=0, branching=2)
    assert ((sparse.P > 0).sum(axis=2) == 2).all()


# -- from_gymnasium on a hand-written model ----------------------------------------------


def _fake_env(P_dict: dict, n_states: int, n_actions: int, isd: list[float]) -> SimpleNamespace:
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
    np.testing.assert_allclose(mdp.P, expected_P, atol=1e-15)
    np.testing.assert_allclose(mdp.R, expected_R, atol=1e-15)
    np.testing.assert_array_equal(mdp.mu0, [1.0, 0.0, 0.0])
    assert mdp.gamma == 0.5


def test_from_gymnasium_errors() -> None:
    good = {0: {0: [(1.0, 0, 0.0, False)]}}
    with pytest.raises(ValueError, match="gamma"):
        TabularMDP.from_gymnasium(_fake_env(good, 1, 1, [1.0]), gamma=1.0)
    with pytest.raises(ValueError, match="env"):
        TabularMDP.from_gymnasium(SimpleNamespace(unwrapped=SimpleNamespace()), gamma=0.9)
    with pytest.raises(ValueError, match="env"):
        TabularMDP.from_gymnasium(gym.make("CartPole-v1"), gamma=0.9)
    with pytest.raises(ValueError, match="env.unwrapped.P"):
        TabularMDP.from_gymnasium(_fake_env({0: {0: [(0.7, 0, 0.0, False)]}}, 1, 1, [1.0]), 0.9)
    with pytest.raises(ValueError, match="env.unwrapped.P"):
        TabularMDP.from_gymnasium(_fake_env({0: {0: [(1.0, 3, 0.0, False)]}}, 1, 1, [1.0]), 0.9)
    with pytest.raises(ValueError, match="env.unwrapped.P"):
        TabularMDP.from_gymnasium(_fake_env({0: {0: []}}, 1, 1, [1.0]), 0.9)
    with pytest.raises(ValueError, match="fickle"):
        TabularMDP.from_gymnasium(gym.make("Taxi-v4", fickle_passenger=True), 0.9)


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
    np.testing.assert_array_equal(mdp.P[S, :, S], np.ones(A))  # absorbing
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
            for prob, nxt, _, _ in env.unwrapped.P[s][a]:
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
    assert V[-1] == 0.0  # the absorbing state
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
        lambda m: rlnotes.value_iteration(m, 1e-6),
        lambda m: rlnotes.policy_iteration(m),
        lambda m: rlnotes.enumerate_trajectories(m, np.full((2, 2), 0.5), 2),
        lambda m: rlnotes.policy_chain(m, np.full((2, 2), 0.5)),
    ],
)
def test_tabular_algorithms_reject_what_is_not_a_tabular_mdp(call: Any) -> None:
    with pytest.raises(ValueError, match="mdp must be a TabularMDP"):
        call({"P": np.eye(2)})
