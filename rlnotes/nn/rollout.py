r"""Rollouts: run a torch policy in a gymnasium environment and keep a time-major batch.

:func:`collect_episodes` is the one place where the torch chapters (REINFORCE, the natural
gradient and TRPO, Q-Prop) interact with an environment. It returns an :class:`EpisodeBatch`:
the steps of whole episodes, concatenated one after another along the time axis, with the two
end flags kept apart (a *terminated* step ends the task, a *truncated* one was cut by a time
limit), which is the input the backward recursions of :mod:`rlnotes.estimators.returns` take.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from rlnotes.core.validation import FloatArray, check_positive_int, check_seed
from rlnotes.nn.tensors import parameter_dtype

__all__ = [
    "make_discrete_control_env",
    "EpisodeBatch",
    "batch_log_probs",
    "collect_episodes",
    "episode_returns",
    "step_in_episode",
]


class EpisodeBatch(NamedTuple):
    r"""Whole episodes, time-major, concatenated one after another (``T`` steps in total).

    Step ``t`` is the transition :math:`(o_t, a_t, r_t, o_{t+1})`. The last step of every
    episode has exactly one of ``terminated`` and ``truncated`` set, every other step neither;
    so the episode boundaries are where ``terminated | truncated`` holds, and
    ``next_observations[t]`` is the true next observation also at an episode's last step
    (the final observation, not the one after the reset). Arrays are read-only.

    Attributes
    ----------
    observations : numpy.ndarray, shape (T, obs_dim), float64
        :math:`o_t`.
    actions : numpy.ndarray
        :math:`a_t`: shape ``(T,)`` int64 for a Discrete action space, ``(T, act_dim)``
        float64 for a Box one (the sampled action, before any clipping).
    rewards : numpy.ndarray, shape (T,), float64
        :math:`r_t`.
    next_observations : numpy.ndarray, shape (T, obs_dim), float64
        :math:`o_{t+1}`.
    terminated, truncated : numpy.ndarray, shape (T,), bool
        The environment's two end flags of step ``t``.
    """

    observations: FloatArray
    actions: NDArray[Any]
    rewards: FloatArray
    next_observations: FloatArray
    terminated: NDArray[np.bool_]
    truncated: NDArray[np.bool_]


def make_discrete_control_env(env_id: str) -> tuple[gym.Env[Any, Any], int, int]:
    """``gym.make(env_id)``, checked to have a 1-d Box observation and a Discrete action space.

    Returns the environment (the caller closes it), the observation dimension and the number
    of actions. A name gymnasium cannot make, or other spaces, is a ``ValueError``.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a gymnasium environment id, got {type(env_id).__name__}")
    try:
        env = gym.make(env_id)
    except gym.error.Error as err:
        raise ValueError(f"env_id {env_id!r} cannot be made: {err}") from err
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        env.close()
        raise ValueError(f"env_id {env_id!r} must have a 1-d Box observation space")
    if not isinstance(act_space, gym.spaces.Discrete):
        env.close()
        raise ValueError(f"env_id {env_id!r} must have a Discrete action space")
    return env, int(obs_space.shape[0]), int(act_space.n)


def _frozen(x: NDArray[Any]) -> NDArray[Any]:
    x.setflags(write=False)
    return x


def _check_batch(batch: object) -> EpisodeBatch:
    if not isinstance(batch, EpisodeBatch):
        raise TypeError(f"batch must be an EpisodeBatch, got {type(batch).__name__}")
    return batch


def episode_returns(batch: EpisodeBatch) -> FloatArray:
    r"""The undiscounted return :math:`\sum_t r_t` of each episode of ``batch``, in order.

    Parameters
    ----------
    batch : EpisodeBatch
        Whole episodes, as returned by :func:`collect_episodes`.

    Returns
    -------
    numpy.ndarray, shape (n_episodes,), float64
    """
    b = _check_batch(batch)
    ends = np.flatnonzero(b.terminated | b.truncated)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.intp)
    out: FloatArray = np.add.reduceat(b.rewards, starts) if ends.size else np.zeros(0)
    return out


def step_in_episode(batch: EpisodeBatch) -> NDArray[np.int64]:
    r"""The time index :math:`t` of each step inside its episode (0 at every episode's start).

    Parameters
    ----------
    batch : EpisodeBatch
        Whole episodes, as returned by :func:`collect_episodes`.

    Returns
    -------
    numpy.ndarray, shape (T,), int64
    """
    b = _check_batch(batch)
    n = b.rewards.shape[0]
    starts = np.zeros(n, dtype=np.int64)
    ends = np.flatnonzero(b.terminated | b.truncated)
    starts[ends[ends < n - 1] + 1] = ends[ends < n - 1] + 1
    out: NDArray[np.int64] = np.arange(n, dtype=np.int64) - np.maximum.accumulate(starts)
    return out


def _sample(dist: Any, generator: torch.Generator) -> torch.Tensor:
    r"""Draw one action from a torch distribution with an explicit generator.

    torch's ``Distribution.sample`` has no generator argument, so the two families the
    policies of :mod:`rlnotes.nn.policies` return are sampled here: Categorical by
    ``torch.multinomial`` on its probabilities, a (diagonal) Normal by
    :math:`\mu + \sigma \varepsilon` with :math:`\varepsilon \sim \mathcal N(0, I)`.
    """
    base = dist.base_dist if isinstance(dist, torch.distributions.Independent) else dist
    if isinstance(base, torch.distributions.Categorical):
        return torch.multinomial(base.probs, 1, generator=generator)[..., 0]
    if isinstance(base, torch.distributions.Normal):
        eps = torch.randn(
            base.loc.shape, generator=generator, dtype=base.loc.dtype, device=base.loc.device
        )
        return base.loc + base.scale * eps
    raise TypeError(
        "policy.distribution must return a Categorical or a (diagonal) Normal distribution, "
        f"got {type(dist).__name__}"
    )


def collect_episodes(
    env: gym.Env[Any, Any] | str,
    policy: torch.nn.Module,
    n_episodes: int,
    *,
    seed: int | None,
    generator: torch.Generator | None = None,
) -> EpisodeBatch:
    r"""Run ``policy`` for ``n_episodes`` whole episodes and return them as one batch.

    At every step the action is drawn from ``policy.distribution(o_t)``, with
    :math:`o_t` given to the policy as a tensor of the dtype of its parameters, and sampled
    with ``generator`` (never torch's global random state). For a Box action space the
    *sampled* action is stored in the batch, and the action sent to ``env.step`` is that
    action clipped to the space's bounds: the log-probabilities of the batch are then those
    of the actions the policy drew (Pendulum-v1 clips its torque again itself).

    The run is a pure function of its arguments when ``seed`` is an integer: the first
    episode starts with ``env.reset(seed=seed)``, the following ones with ``env.reset()``,
    and when ``generator`` is None the actions come from a fresh ``torch.Generator`` seeded
    with ``seed``. With ``seed=None`` the environment is not reseeded (its random stream
    goes on from the previous call, as in a training loop) and ``generator`` is required.

    Book: eq-sf-reinforce (the sampled episodes of REINFORCE). Source: Williams (1992).

    Parameters
    ----------
    env : gymnasium.Env or str
        An environment with a 1-d Box observation space and a Discrete or 1-d Box action
        space, or the id of one (then made with ``gymnasium.make`` and closed afterwards).
    policy : torch.nn.Module
        Anything with a method ``distribution(obs)`` returning a torch Categorical, Normal or
        Independent Normal distribution over one action, e.g.
        :class:`~rlnotes.nn.policies.CategoricalMLPPolicy` or
        ``rlnotes.nn.policies.GaussianMLPPolicy``.
    n_episodes : int
        Number of whole episodes (>= 1).
    seed : int or None
        Non-negative seed of the first reset (and of the default generator), or None.
    generator : torch.Generator, optional
        The source of the action noise.

    Returns
    -------
    EpisodeBatch
        The episodes, concatenated in the order they were run.
    """
    if not isinstance(policy, torch.nn.Module) or not callable(
        getattr(policy, "distribution", None)
    ):
        raise TypeError(
            "policy must be a torch.nn.Module with a distribution(obs) method, "
            f"got {type(policy).__name__}"
        )
    n_eps = check_positive_int("n_episodes", n_episodes)
    if seed is not None:
        seed = check_seed("seed", seed)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator is None:
        if seed is None:
            raise ValueError("generator must be given when seed is None (else the run is unseeded)")
        generator = torch.Generator().manual_seed(seed)
    own_env = isinstance(env, str)
    if own_env:
        try:
            env = gym.make(env)  # type: ignore[arg-type]
        except gym.error.Error as err:
            raise ValueError(f"env {env!r} cannot be made: {err}") from err
    elif not isinstance(env, gym.Env):
        raise TypeError(f"env must be a gymnasium.Env or an id string, got {type(env).__name__}")
    assert isinstance(env, gym.Env)
    # The distributions are built from the policy's own outputs at every step; torch's
    # argument validation of each one would double the cost of a rollout.
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        return _run(env, policy, n_eps, seed, generator)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
        if own_env:
            env.close()


def _run(
    env: gym.Env[Any, Any],
    policy: torch.nn.Module,
    n_episodes: int,
    seed: int | None,
    generator: torch.Generator,
) -> EpisodeBatch:
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"env must have a 1-d Box observation space, got {obs_space}")
    discrete = isinstance(act_space, gym.spaces.Discrete)
    if not discrete and not (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1):
        raise ValueError(f"env must have a Discrete or a 1-d Box action space, got {act_space}")
    low = high = None
    if not discrete:
        low = np.asarray(act_space.low, dtype=np.float64)  # type: ignore[attr-defined]
        high = np.asarray(act_space.high, dtype=np.float64)  # type: ignore[attr-defined]
    dtype = parameter_dtype(policy)
    obs_l: list[NDArray[Any]] = []
    next_l: list[NDArray[Any]] = []
    act_l: list[Any] = []
    rew_l: list[float] = []
    term_l: list[bool] = []
    trunc_l: list[bool] = []
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed) if (ep == 0 and seed is not None) else env.reset()
        done = False
        while not done:
            x = torch.as_tensor(np.asarray(obs), dtype=dtype)
            with torch.no_grad():
                a = _sample(policy.distribution(x), generator)  # type: ignore[operator]
            if discrete:
                action: Any = int(a.item())
                act_l.append(action)
                step_action: Any = action
            else:
                action = a.double().numpy().reshape(-1)
                act_l.append(action)
                step_action = np.clip(action, low, high).astype(act_space.dtype)
            next_obs, r, terminated, truncated, _ = env.step(step_action)
            obs_l.append(np.asarray(obs, dtype=np.float64))
            next_l.append(np.asarray(next_obs, dtype=np.float64))
            rew_l.append(float(r))
            # a step that is both (a termination at the time limit) counts as terminated
            term_l.append(bool(terminated))
            trunc_l.append(bool(truncated) and not bool(terminated))
            done = bool(terminated or truncated)
            obs = next_obs
    obs_dim = int(obs_space.shape[0])
    if discrete:
        actions: NDArray[Any] = np.asarray(act_l, dtype=np.int64)
    else:
        actions = np.asarray(act_l, dtype=np.float64).reshape(len(act_l), -1)
    return EpisodeBatch(
        observations=_frozen(np.asarray(obs_l, dtype=np.float64).reshape(-1, obs_dim)),
        actions=_frozen(actions),
        rewards=_frozen(np.asarray(rew_l, dtype=np.float64)),
        next_observations=_frozen(np.asarray(next_l, dtype=np.float64).reshape(-1, obs_dim)),
        terminated=_frozen(np.asarray(term_l, dtype=bool)),
        truncated=_frozen(np.asarray(trunc_l, dtype=bool)),
    )


def batch_log_probs(policy: torch.nn.Module, batch: EpisodeBatch) -> torch.Tensor:
    r""":math:`\log \pi_\theta(a_t \mid o_t)` for every step of ``batch``, differentiable in θ.

    Observations and actions are cast to the dtype of the policy's parameters.

    Parameters
    ----------
    policy : torch.nn.Module
        A policy with a ``distribution(obs)`` method (see :func:`collect_episodes`).
    batch : EpisodeBatch
        Steps collected with this or another policy.

    Returns
    -------
    torch.Tensor, shape (T,)
    """
    if not isinstance(policy, torch.nn.Module) or not callable(
        getattr(policy, "distribution", None)
    ):
        raise TypeError(
            "policy must be a torch.nn.Module with a distribution(obs) method, "
            f"got {type(policy).__name__}"
        )
    b = _check_batch(batch)
    dtype = parameter_dtype(policy)
    obs = torch.as_tensor(np.array(b.observations), dtype=dtype)
    if b.actions.dtype == np.int64:
        act = torch.as_tensor(np.array(b.actions))
    else:
        act = torch.as_tensor(np.array(b.actions), dtype=dtype)
    out: torch.Tensor = policy.distribution(obs).log_prob(act)  # type: ignore[operator]
    return out
