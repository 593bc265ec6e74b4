"""Tests of rlnotes.td.qlearning: tabular Q-learning on gymnasium environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlnotes.core.mdp import TabularMDP
from rlnotes.dp.planning import policy_iteration
from rlnotes.td.qlearning import q_learning


class TinyEnv(gym.Env):
    """A two-state, two-action episodic MDP with a toy-text model ``P``.

    Action 1 in state 1 ends the episode with reward +1 (p = 0.6) or -1 (p = 0.4); the other
    moves shuffle between the two states with small rewards.
    """

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Discrete(2)
        self.action_space = gym.spaces.Discrete(2)
        self.P = {
            0: {0: [(0.7, 0, 0.0, False), (0.3, 1, 1.0, False)], 1: [(1.0, 1, -0.5, False)]},
            1: {
                0: [(0.5, 0, 0.5, False), (0.5, 1, 0.0, False)],
                1: [(0.6, 0, 1.0, True), (0.4, 0, -1.0, True)],
            },
        }
        self.initial_state_distrib = np.array([1.0, 0.0])
        self.s = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(2, p=self.initial_state_distrib))
        return self.s, {}

    def step(self, a: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        outcomes = self.P[self.s][a]
        k = int(self.np_random.choice(len(outcomes), p=[o[0] for o in outcomes]))
        _, nxt, r, term = outcomes[k]
        self.s = nxt
        return nxt, r, term, False, {}


class BanditEnv(gym.Env):
    """One state; every step terminates with a Bernoulli(p_a) reward, which it logs."""

    def __init__(self, probs: tuple[float, ...]) -> None:
        self.observation_space = gym.spaces.Discrete(1)
        self.action_space = gym.spaces.Discrete(len(probs))
        self.probs = probs
        self.log: list[tuple[int, float]] = []

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, a: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        r = float(self.np_random.random() < self.probs[a])
        self.log.append((a, r))
        return 0, r, True, False, {}


class LoopEnv(gym.Env):
    """One state, one action, reward 1, never terminates (a time limit truncates it)."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Discrete(1)
        self.action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, a: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        return 0, 1.0, False, False, {}


def reference_td_control(
    env: Any,
    n_steps: int,
    gamma: float,
    omega: float,
    epsilon: float,
    seed: int,
    bootstrap: Callable[[list[float]], float],
) -> np.ndarray:
    """An independent loop over plain Python lists: the oracle for q_learning and its soft twin.

    It draws its random numbers in the order the documented algorithm does (one block of
    explore flags, random actions and tie-breaking keys), so with the same seed it must give
    the same table.
    """
    assert n_steps <= 65_536
    S, A = env.observation_space.n, env.action_space.n
    rng = np.random.default_rng(seed)
    explore = rng.random(n_steps) < epsilon
    random_actions = rng.integers(0, A, size=n_steps)
    tie_break = rng.random((n_steps, A))
    Q = [[0.0] * A for _ in range(S)]
    n = [[0] * A for _ in range(S)]
    s, _ = env.reset(seed=seed)
    for i in range(n_steps):
        if explore[i]:
            a = int(random_actions[i])
        else:
            best = max(Q[s])
            keys = [tie_break[i, b] if Q[s][b] == best else -1.0 for b in range(A)]
            a = keys.index(max(keys))
        s2, r, term, trunc, _ = env.step(a)
        target = r + (0.0 if term else gamma * bootstrap(Q[s2]))
        Q[s][a] += (1.0 + n[s][a]) ** (-omega) * (target - Q[s][a])
        n[s][a] += 1
        if term or trunc:
            s, _ = env.reset()
        else:
            s = s2
    return np.array(Q)


def test_matches_the_independent_loop() -> None:
    res = q_learning(TinyEnv(), 5_000, 0.9, omega=0.6, epsilon=0.3, seed=9)
    ref = reference_td_control(TinyEnv(), 5_000, 0.9, 0.6, 0.3, 9, max)
    np.testing.assert_allclose(res.Q, ref, rtol=0, atol=1e-12)


def test_converges_on_a_tiny_mdp() -> None:
    env = TinyEnv()
    gamma = 0.8
    mdp = TabularMDP.from_gymnasium(env, gamma=gamma)
    Q_star = policy_iteration(mdp, tol=1e-12).Q
    res = q_learning(env, 40_000, gamma, omega=0.7, Q_ref=Q_star, seed=3)
    assert res.errors is not None
    assert res.errors[0] == pytest.approx(np.max(np.abs(Q_star[:2])))
    assert res.errors[-1] < 0.05
    assert res.errors[-1] < res.errors[0] / 10
    k = len(res.errors) // 10
    assert res.errors[-k:].mean() < res.errors[k : 2 * k].mean()
    assert int(res.visits.sum()) == 40_000
    assert res.steps[0] == 0 and res.steps[-1] == 40_000


def test_converges_on_slippery_frozenlake() -> None:
    env = gym.make("FrozenLake-v1")
    mdp = TabularMDP.from_gymnasium(env, gamma=0.9)
    Q_star = policy_iteration(mdp).Q
    res = q_learning(env, 200_000, 0.9, omega=0.8, Q_ref=Q_star, seed=0, record_every=10_000)
    assert res.errors is not None
    assert res.errors[0] > 0.5
    assert res.errors[-5:].max() < 0.1
    assert res.errors[-5:].mean() < res.errors[1:6].mean()
    assert res.episodes > 1


def test_reproducible_with_seed() -> None:
    env = TinyEnv()
    a = q_learning(env, 3_000, 0.9, epsilon=0.3, seed=11, keep_snapshots=True)
    b = q_learning(env, 3_000, 0.9, epsilon=0.3, seed=11, keep_snapshots=True)
    c = q_learning(env, 3_000, 0.9, epsilon=0.3, seed=12)
    np.testing.assert_array_equal(a.Q, b.Q)
    assert a.snapshots is not None and b.snapshots is not None
    np.testing.assert_array_equal(a.snapshots, b.snapshots)
    assert not np.array_equal(a.Q, c.Q)
    np.testing.assert_array_equal(a.snapshots[-1], a.Q)
    np.testing.assert_array_equal(a.snapshots[0], np.zeros((2, 2)))


def test_step_size_one_over_n_gives_sample_means() -> None:
    """With omega = 1 and terminating steps, Q(0, a) is the mean of the rewards seen for a."""
    env = BanditEnv((0.2, 0.7, 0.5))
    res = q_learning(env, 2_000, 0.9, omega=1.0, seed=5)
    log = np.array(env.log)
    for a in range(3):
        rewards = log[log[:, 0] == a, 1]
        assert res.visits[0, a] == rewards.size
        assert res.Q[0, a] == pytest.approx(rewards.mean(), abs=1e-12)


def test_truncation_bootstraps_and_termination_does_not() -> None:
    """Truncated every step, the fixed point is 1 / (1 - gamma); terminated, it is 1."""
    gamma = 0.5
    env = gym.wrappers.TimeLimit(LoopEnv(), max_episode_steps=1)
    res = q_learning(env, 20_000, gamma, omega=0.55, seed=0)
    assert res.Q[0, 0] == pytest.approx(1 / (1 - gamma), abs=1e-3)
    bandit = q_learning(BanditEnv((1.0,)), 50, gamma, seed=0)
    assert bandit.Q[0, 0] == 1.0


def test_errors_match_snapshots() -> None:
    env = TinyEnv()
    ref = np.array([[1.0, 2.0], [0.0, -1.0]])
    res = q_learning(env, 1_000, 0.9, Q_ref=ref, keep_snapshots=True, record_every=250, seed=1)
    assert res.errors is not None and res.snapshots is not None
    np.testing.assert_array_equal(res.steps, [0, 250, 500, 750, 1000])
    np.testing.assert_allclose(res.errors, np.abs(res.snapshots - ref).max(axis=(1, 2)))


def test_validation_errors() -> None:
    env = TinyEnv()
    with pytest.raises(ValueError, match="n_steps"):
        q_learning(env, 0, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        q_learning(env, 10, 1.0)
    for omega in (0.5, 1.2, float("nan")):
        with pytest.raises(ValueError, match="omega"):
            q_learning(env, 10, 0.9, omega=omega)
    with pytest.raises(ValueError, match="epsilon"):
        q_learning(env, 10, 0.9, epsilon=1.5)
    with pytest.raises(ValueError, match="Q0"):
        q_learning(env, 10, 0.9, Q0=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Q_ref"):
        q_learning(env, 10, 0.9, Q_ref=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="record_every"):
        q_learning(env, 10, 0.9, record_every=0)
    with pytest.raises(ValueError, match="env.observation_space"):
        q_learning(gym.make("CartPole-v1"), 10, 0.9)
    with pytest.raises(TypeError, match="^env"):
        q_learning("env", 10, 0.9)
    with pytest.raises(TypeError, match="^keep_snapshots"):
        q_learning(env, 10, 0.9, keep_snapshots=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^seed"):
        q_learning(env, 10, 0.9, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^omega"):
        q_learning(env, 10, 0.9, omega="0.8")  # type: ignore[arg-type]
