"""Tests of the chapter-2 weightings of rlnotes.nn.reinforce (learned baseline and GAE)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes.nn.critic import value_network
from rlnotes.nn.policies import CategoricalMLPPolicy
from rlnotes.nn.reinforce import (
    CRITIC_WEIGHTINGS,
    _critic_terms,
    reinforce_weights,
    train_reinforce,
)
from rlnotes.nn.rollout import collect_episodes, step_in_episode


def _loop_rtg(r: np.ndarray, gamma: float) -> np.ndarray:
    T = len(r)
    return np.array([sum(gamma ** (k - t) * r[k] for k in range(t, T)) for t in range(T)])


def _loop_gae(r: np.ndarray, v: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """GAE of one episode by its definition; the value after the last step is 0."""
    T = len(r)
    nxt = [v[t + 1] if t + 1 < T else 0.0 for t in range(T)]
    delta = [r[t] + gamma * nxt[t] - v[t] for t in range(T)]
    return np.array(
        [sum((gamma * lam) ** k * delta[t + k] for k in range(T - t)) for t in range(T)]
    )


episode = st.integers(1, 12).flatmap(
    lambda T: st.tuples(
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
    )
)


@settings(max_examples=60, deadline=None)
@given(eps=st.lists(episode, min_size=1, max_size=3), gamma=st.floats(0, 1), lam=st.floats(0, 1))
def test_critic_weights_match_plain_loops_episode_by_episode(
    eps: list[tuple[list[float], list[float]]], gamma: float, lam: float
) -> None:
    r = np.concatenate([e[0] for e in eps])
    v = np.concatenate([e[1] for e in eps])
    ends = np.concatenate([np.arange(len(e[0])) == len(e[0]) - 1 for e in eps])
    # next_values inside an episode are the next step's values; at ends, junk that must be unused
    nv = np.where(ends, 1e6, np.append(v[1:], 0.0))
    w_b = reinforce_weights(r, gamma, "reward_to_go_baseline", ends, values=v)
    w_g = reinforce_weights(r, gamma, "gae", ends, values=v, next_values=nv, lam=lam)
    lo = 0
    for e in eps:
        hi = lo + len(e[0])
        re, ve = r[lo:hi], v[lo:hi]
        scale = gamma ** np.arange(hi - lo, dtype=float)
        np.testing.assert_allclose(w_b[lo:hi], scale * (_loop_rtg(re, gamma) - ve), atol=1e-9)
        np.testing.assert_allclose(w_g[lo:hi], scale * _loop_gae(re, ve, gamma, lam), atol=1e-8)
        lo = hi


def test_gae_at_lambda_one_equals_baselined_reward_to_go_even_when_truncated() -> None:
    # eq-vr-gae-limits, and the consistency of the estimators: with no bootstrap at any end,
    # lambda = 1 GAE is G_t - V(s_t) for every episode, also one cut by the time limit
    rng = np.random.default_rng(0)
    r, v = rng.standard_normal(30), rng.standard_normal(30)
    ends = np.zeros(30, dtype=bool)
    ends[[9, 29]] = True
    nv = np.append(v[1:], 0.0)
    w_g = reinforce_weights(r, 0.97, "gae", ends, values=v, next_values=nv, lam=1.0)
    w_b = reinforce_weights(r, 0.97, "reward_to_go_baseline", ends, values=v)
    np.testing.assert_allclose(w_g, w_b, rtol=1e-10, atol=1e-12)
    # negative control: bootstrapping the first episode's end would change its weights
    nv_boot = nv.copy()
    nv_boot[9] = 8.0
    w_boot = reinforce_weights(r, 0.97, "gae", ends, values=v, next_values=nv_boot, lam=1.0)
    np.testing.assert_array_equal(w_boot, w_g)  # the end's next value is not used


def test_critic_inputs_are_time_aware() -> None:
    env = gym.make("CartPole-v1")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        pol = CategoricalMLPPolicy(4, 2, 8)
        critic = value_network(5, (8,))
    b = collect_episodes(env, pol, 2, seed=0)
    x, v, nv = _critic_terms(critic, b, 500)
    t = step_in_episode(b)
    np.testing.assert_allclose(x[:, :4], b.observations)
    np.testing.assert_allclose(x[:, 4], t / 500)
    inner = np.flatnonzero(~(b.terminated | b.truncated))
    np.testing.assert_allclose(nv[inner], v[inner + 1], rtol=1e-6)
    env.close()


@pytest.mark.parametrize("weighting", CRITIC_WEIGHTINGS)
def test_train_with_critic_is_seeded_and_returns_a_curve(weighting: str) -> None:
    kw = dict(n_iterations=3, episodes_per_iteration=2, learning_rate=0.01, weighting=weighting)
    a = train_reinforce(seed=3, **kw)  # type: ignore[arg-type]
    b = train_reinforce(seed=3, **kw)  # type: ignore[arg-type]
    assert a.shape == (3,) and np.all(a >= 1) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)


def test_critic_options_do_not_touch_the_weightings_without_critic() -> None:
    kw = dict(n_iterations=3, episodes_per_iteration=2, learning_rate=0.01, seed=1)
    base = train_reinforce(weighting="reward_to_go", **kw)  # type: ignore[arg-type]
    other = train_reinforce(
        weighting="reward_to_go",
        lam=0.1,
        value_learning_rate=0.5,
        **kw,  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(base, other)
    # negative control: with a critic, the critic's step size does change the run
    crit = dict(kw, weighting="reward_to_go_baseline", n_iterations=8, episodes_per_iteration=4)
    c1 = train_reinforce(value_learning_rate=0.01, **crit)  # type: ignore[arg-type]
    c2 = train_reinforce(value_learning_rate=0.5, **crit)  # type: ignore[arg-type]
    assert not np.array_equal(c1, c2)


def test_gae_lambda_changes_training() -> None:
    # negative control: lam is really used by the "gae" weighting
    kw = dict(n_iterations=4, episodes_per_iteration=3, learning_rate=0.05, seed=2, weighting="gae")
    a = train_reinforce(lam=0.0, **kw)  # type: ignore[arg-type]
    b = train_reinforce(lam=1.0, **kw)  # type: ignore[arg-type]
    assert not np.array_equal(a, b)
