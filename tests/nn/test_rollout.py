"""Tests of rlnotes.nn.rollout (episode batches) and rlnotes.nn.critic (value regression)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy.stats import norm

from rlnotes.nn.critic import CriticFit, fit_critic, predict_values, value_network
from rlnotes.nn.policies import CategoricalMLPPolicy, GaussianMLPPolicy
from rlnotes.nn.rollout import (
    EpisodeBatch,
    batch_log_probs,
    collect_episodes,
    episode_returns,
    step_in_episode,
)

#: The book's Monte Carlo threshold for one coordinate, z = Phi^-1(1 - 1e-4 / 2).
Z1 = float(norm.ppf(1 - 1e-4 / 2))


def _policy(seed: int = 0) -> CategoricalMLPPolicy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CategoricalMLPPolicy(4, 2, 8)


def _ends(b: EpisodeBatch) -> np.ndarray:
    return np.asarray(b.terminated | b.truncated)


def test_cartpole_batch_layout_and_flags() -> None:
    b = collect_episodes("CartPole-v1", _policy(), 4, seed=0)
    T = b.rewards.shape[0]
    assert b.observations.shape == (T, 4) and b.observations.dtype == np.float64
    assert b.next_observations.shape == (T, 4)
    assert b.actions.shape == (T,) and b.actions.dtype == np.int64
    assert set(np.unique(b.actions)) <= {0, 1}
    assert b.terminated.dtype == np.bool_ and b.truncated.dtype == np.bool_
    assert not (b.terminated & b.truncated).any()
    assert _ends(b).sum() == 4 and _ends(b)[-1]
    # inside an episode the next observation is the next step's observation
    inner = np.flatnonzero(~_ends(b)[:-1])
    np.testing.assert_array_equal(b.next_observations[inner], b.observations[inner + 1])
    for arr in b:
        assert not arr.flags.writeable
    with pytest.raises(AttributeError, match=r"^can.t set attribute"):
        b.rewards = np.zeros(T)  # type: ignore[misc]
    rets = episode_returns(b)
    assert rets.shape == (4,) and rets.sum() == T  # CartPole pays 1 per step
    t = step_in_episode(b)
    assert t[0] == 0 and (t[np.flatnonzero(_ends(b)[:-1]) + 1] == 0).all()
    np.testing.assert_array_equal(np.bincount(np.cumsum(t == 0) - 1), rets.astype(int))


def test_batch_replays_in_the_environment() -> None:
    # an independent route: the stored actions, replayed from the same reset seed, give the
    # stored observations, rewards and flags
    b = collect_episodes("CartPole-v1", _policy(3), 3, seed=11)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=11)
    for t in range(b.rewards.shape[0]):
        np.testing.assert_allclose(b.observations[t], obs, rtol=0, atol=0)
        obs, r, term, trunc, _ = env.step(int(b.actions[t]))
        assert r == b.rewards[t] and term == b.terminated[t] and trunc == b.truncated[t]
        np.testing.assert_allclose(b.next_observations[t], obs, rtol=0, atol=0)
        if term or trunc:
            obs, _ = env.reset()
    env.close()


def test_seeded_reproducible_and_global_rng_untouched() -> None:
    pol = _policy()
    state = torch.random.get_rng_state()
    a = collect_episodes("CartPole-v1", pol, 3, seed=5)
    b = collect_episodes("CartPole-v1", pol, 3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state), "global torch RNG was touched"
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = collect_episodes("CartPole-v1", pol, 3, seed=6)
    assert c.rewards.shape != a.rewards.shape or not np.array_equal(c.observations, a.observations)
    # seed=None continues the environment's stream; the generator is then required
    env = gym.make("CartPole-v1")
    gen = torch.Generator().manual_seed(0)
    first = collect_episodes(env, pol, 1, seed=5, generator=gen)
    second = collect_episodes(env, pol, 1, seed=None, generator=gen)
    assert not np.array_equal(first.observations[0], second.observations[0])
    with pytest.raises(ValueError, match=r"^generator must be given when seed is None"):
        collect_episodes(env, pol, 1, seed=None)
    env.close()


def _constant_categorical(p1: float) -> CategoricalMLPPolicy:
    pol = _policy()
    last = pol.net[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([math.log(1 - p1), math.log(p1)]))
    return pol


def test_categorical_actions_follow_the_policy() -> None:
    # Monte Carlo: the frequency of action 1 under a state-independent policy, in standard errors
    p1 = 0.8
    b = collect_episodes("CartPole-v1", _constant_categorical(p1), 40, seed=2)
    n = b.actions.shape[0]
    z = (b.actions.mean() - p1) / math.sqrt(p1 * (1 - p1) / n)
    assert abs(z) < Z1, z
    # negative control: the same count is far from a fair coin
    z_fair = (b.actions.mean() - 0.5) / math.sqrt(0.25 / n)
    assert abs(z_fair) > Z1


def test_pendulum_gaussian_batch_clips_only_what_it_sends() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        pol = GaussianMLPPolicy(3, 1, (8,), init_std=3.0, dtype=torch.float64)
    with torch.no_grad():
        pol.mean_net[-1].weight.zero_()  # type: ignore[operator]
        pol.mean_net[-1].bias.fill_(0.5)  # type: ignore[operator]
    b = collect_episodes("Pendulum-v1", pol, 2, seed=0)
    assert b.actions.shape == (400, 1) and b.actions.dtype == np.float64
    assert b.truncated.sum() == 2 and not b.terminated.any()  # 200-step time limit
    assert b.truncated[199] and b.truncated[399]
    assert np.abs(b.actions).max() > 2.0, "with std 3 some sampled torques exceed the bound"
    # the mean and the spread of the sampled actions, in standard errors (k = 2 coordinates)
    z2 = float(norm.ppf(1 - 1e-4 / 4))
    a = b.actions[:, 0]
    z_mean = (a.mean() - 0.5) / (3.0 / math.sqrt(a.size))
    z_var = (a.var(ddof=1) - 9.0) / (9.0 * math.sqrt(2 / (a.size - 1)))
    assert abs(z_mean) < z2 and abs(z_var) < z2, (z_mean, z_var)
    # replaying the clipped actions reproduces the rewards (the environment saw clipped torques)
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    rewards: list[float] = []
    for t in range(200):
        _, r, *_ = env.step(np.clip(b.actions[t], -2.0, 2.0).astype(np.float32))
        rewards.append(float(r))
    env.close()
    np.testing.assert_allclose(rewards, b.rewards[:200], rtol=1e-6)
    # log-probabilities of the stored (unclipped) actions against the closed form
    lp = batch_log_probs(pol, b).detach().numpy()
    ref = -0.5 * ((a - 0.5) / 3.0) ** 2 - math.log(3.0) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(lp, ref, rtol=1e-12)


def test_log_probs_of_categorical_batch_against_softmax() -> None:
    pol = _policy(1)
    b = collect_episodes("CartPole-v1", pol, 2, seed=1)
    lp = batch_log_probs(pol, b)
    assert lp.requires_grad and lp.shape == (b.rewards.shape[0],)
    logits = pol(torch.tensor(b.observations, dtype=torch.float32)).detach().numpy()
    ref = logits[np.arange(len(b.actions)), b.actions] - np.log(np.exp(logits).sum(1))
    np.testing.assert_allclose(lp.detach().numpy(), ref, rtol=1e-5, atol=1e-6)


class _EndsAtTheLimit(gym.Env[np.ndarray, np.int64]):
    """Terminates at step 3, which is also the time limit of its TimeLimit wrapper."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1), {}

    def step(self, action: np.int64) -> Any:
        self.t += 1
        return np.full(1, self.t / 10), 1.0, self.t == 3, False, {}


def test_termination_at_the_time_limit_counts_as_terminated() -> None:
    env = gym.wrappers.TimeLimit(_EndsAtTheLimit(), max_episode_steps=3)
    b = collect_episodes(env, _policy_1d(), 2, seed=0)
    np.testing.assert_array_equal(b.terminated, [False, False, True] * 2)
    assert not b.truncated.any()


def _policy_1d() -> CategoricalMLPPolicy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return CategoricalMLPPolicy(1, 2, 4)


class _NotAPolicy(torch.nn.Module):
    def distribution(self, obs: torch.Tensor) -> Any:
        return torch.distributions.Beta(torch.ones(1), torch.ones(1))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"policy": "pi"}, TypeError, r"^policy must be a torch\.nn\.Module"),
        ({"policy": torch.nn.Linear(4, 2)}, TypeError, r"^policy must be a torch\.nn\.Module"),
        ({"policy": _NotAPolicy()}, TypeError, r"^policy\.distribution must return"),
        ({"n_episodes": 0}, ValueError, r"^n_episodes must be an integer >= 1"),
        ({"n_episodes": 2.0}, TypeError, r"^n_episodes must be an integer"),
        ({"n_episodes": True}, TypeError, r"^n_episodes must be an integer"),
        ({"seed": -1}, ValueError, r"^seed must be an integer in \[0, 2\*\*63\)"),
        ({"seed": 2**64}, ValueError, r"^seed must be an integer in \[0, 2\*\*63\)"),
        ({"seed": "0"}, TypeError, r"^seed must be an integer seed"),
        ({"seed": 1.0}, TypeError, r"^seed must be an integer seed"),
        ({"generator": 3}, TypeError, r"^generator must be a torch\.Generator"),
        ({"env": 3}, TypeError, r"^env must be a gymnasium\.Env"),
        ({"env": "NoSuchEnv-v0"}, ValueError, r"^env 'NoSuchEnv-v0' cannot be made"),
        ({"env": "FrozenLake-v1"}, ValueError, r"^env must have a 1-d Box observation space"),
    ],
)
def test_collect_errors(kwargs: dict[str, Any], error: type[Exception], pattern: str) -> None:
    args: dict[str, Any] = {"env": "CartPole-v1", "policy": _policy(), "n_episodes": 1, "seed": 0}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        collect_episodes(
            args["env"],
            args["policy"],
            args["n_episodes"],
            seed=args["seed"],
            generator=args.get("generator"),
        )


def test_batch_helpers_reject_other_types() -> None:
    for fn in (episode_returns, step_in_episode):
        with pytest.raises(TypeError, match=r"^batch must be an EpisodeBatch"):
            fn((np.zeros(3),))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^batch must be an EpisodeBatch"):
        batch_log_probs(_policy(), "batch")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^policy must be a torch\.nn\.Module"):
        batch_log_probs(object(), collect_episodes("CartPole-v1", _policy(), 1, seed=0))  # type: ignore[arg-type]


# -- critic --------------------------------------------------------------------------------
def test_critic_regression_reaches_the_least_squares_fit() -> None:
    # a linear critic (no hidden layer) fitted by many Adam steps approaches the normal
    # equations' solution, an independent route
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.standard_normal(200)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        critic = value_network(3, (), dtype=torch.float64)
    fit = fit_critic(critic, x, y, n_steps=2000, learning_rate=0.05)
    assert isinstance(fit, CriticFit) and fit.n_steps == 2000
    design = np.column_stack([x, np.ones(200)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    best = float(np.mean((design @ coef - y) ** 2))
    assert fit.initial_loss > 10 * best
    assert fit.final_loss == pytest.approx(best, rel=1e-6)
    np.testing.assert_allclose(predict_values(critic, x), design @ coef, atol=1e-4)
    with pytest.raises(AttributeError):
        fit.final_loss = 0.0  # type: ignore[misc]


def test_critic_keeps_a_passed_optimizer_and_does_not_touch_global_rng() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((50, 2)), rng.standard_normal(50)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        c1 = value_network(2, (8,))
        torch.manual_seed(0)
        c2 = value_network(2, (8,))
    opt = torch.optim.Adam(c1.parameters(), lr=0.01)
    state = torch.random.get_rng_state()
    fit_critic(c1, x, y, n_steps=5, optimizer=opt)
    fit_critic(c1, x, y, n_steps=5, optimizer=opt)
    fit_critic(c2, x, y, n_steps=10, learning_rate=0.01)
    assert torch.equal(torch.random.get_rng_state(), state)
    # one optimizer over two calls == ten steps in one call
    for p, q in zip(c1.parameters(), c2.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    # negative control: a fresh optimizer in the second call resets Adam's moments
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        c3 = value_network(2, (8,))
    fit_critic(c3, x, y, n_steps=5, learning_rate=0.01)
    fit_critic(c3, x, y, n_steps=5, learning_rate=0.01)
    assert not all(torch.equal(p, q) for p, q in zip(c1.parameters(), c3.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"critic": "v"}, TypeError, r"^critic must be a torch\.nn\.Module"),
        ({"observations": "x"}, TypeError, r"^observations must be an array of numbers"),
        ({"observations": np.zeros(4)}, ValueError, r"^observations must be a 2-d array"),
        ({"observations": np.zeros((0, 2))}, ValueError, r"^observations must have at least"),
        ({"observations": np.full((4, 2), np.inf)}, ValueError, r"^observations must be finite"),
        ({"targets": np.zeros(3)}, ValueError, r"^targets must have shape \(4,\)"),
        ({"targets": np.array([1, 2, 3, 4j])}, TypeError, r"^targets must hold real numbers"),
        ({"targets": [0, 1, np.nan, 0]}, ValueError, r"^targets contains NaN"),
        ({"n_steps": 0}, ValueError, r"^n_steps must be an integer >= 1"),
        ({"n_steps": 1.5}, TypeError, r"^n_steps must be an integer"),
        ({"learning_rate": 0.0}, ValueError, r"^learning_rate must lie in \(0, inf\)"),
        ({"learning_rate": "big"}, TypeError, r"^learning_rate must be a real number"),
        ({"optimizer": "adam"}, TypeError, r"^optimizer must be a torch\.optim\.Optimizer"),
        ({"critic": torch.nn.Linear(2, 3)}, ValueError, r"^critic must map \(T, d\) to \(T, 1\)"),
        ({"targets": np.full(4, 1e200)}, OverflowError, r"^the critic's squared error overflowed"),
    ],
)
def test_fit_critic_errors(kwargs: dict[str, Any], error: type[Exception], pattern: str) -> None:
    args: dict[str, Any] = {
        "critic": value_network(2, (4,)),
        "observations": np.zeros((4, 2)),
        "targets": np.zeros(4),
    }
    args.update(kwargs)
    critic, obs, tgt = args.pop("critic"), args.pop("observations"), args.pop("targets")
    with pytest.raises(error, match=pattern):
        fit_critic(critic, obs, tgt, **args)


def test_predict_values_errors() -> None:
    with pytest.raises(TypeError, match=r"^critic must be a torch\.nn\.Module"):
        predict_values(3, np.zeros((2, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^critic must map \(T, d\) to \(T, 1\)"):
        predict_values(torch.nn.Linear(2, 2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^observations must be a 2-d array"):
        predict_values(value_network(2), np.zeros(2))
