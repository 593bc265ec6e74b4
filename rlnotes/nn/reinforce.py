"""REINFORCE with a neural policy in torch: the surrogate loss and a seeded training loop."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlnotes.core.validation import FloatArray, check_gamma, check_positive_int, check_positive_real
from rlnotes.estimators.returns import gae, lambda_returns, reward_to_go
from rlnotes.nn.policies import CategoricalMLPPolicy

#: The weightings that :func:`train_reinforce` accepts.
TRAIN_WEIGHTINGS = ("total", "reward_to_go", "reward_to_go_baseline", "gae")

#: The weightings that need a learned value function (chapter 2).
CRITIC_WEIGHTINGS = ("reward_to_go_baseline", "gae")

#: Adam steps of value regression per iteration, for the weightings with a critic.
VALUE_STEPS = 10


def reinforce_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""The REINFORCE surrogate loss, whose gradient is minus the score-function estimate.

    .. math:: L(\theta) = -\frac{1}{M} \sum_{k=1}^{M} w_k \log \pi_\theta(a_k \mid s_k),
              \qquad
              \nabla_\theta L
              = -\frac{1}{M} \sum_{k=1}^{M} w_k \nabla_\theta \log \pi_\theta(a_k \mid s_k)

    The weights are detached: they are treated as constants, as in the estimator.
    Book: eq-sf-reinforce. Source: Williams (1992); Schulman et al. (2015), surrogate loss.

    Parameters
    ----------
    log_probs : torch.Tensor
        :math:`\log \pi_\theta(a_k \mid s_k)` for the M sampled steps, any non-empty shape.
    weights : torch.Tensor
        The per-step weights :math:`w_k` (return, reward to go, advantage), same shape.

    Returns
    -------
    0-d torch.Tensor
    """
    for name, x in (("log_probs", log_probs), ("weights", weights)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.numel() == 0:
            raise ValueError(f"{name} must not be empty")
        if not bool(torch.isfinite(x.detach()).all()):
            raise ValueError(f"{name} contains NaN or inf")
    if log_probs.shape != weights.shape:
        raise ValueError(
            f"weights must have the shape of log_probs {tuple(log_probs.shape)}, "
            f"got {tuple(weights.shape)}"
        )
    return -(log_probs * weights.detach()).mean()


def _episode_weights(
    rewards: FloatArray,
    gamma: float,
    weighting: str,
    values: FloatArray | None = None,
    *,
    last_value: float = 0.0,
    lam: float = 1.0,
) -> FloatArray:
    r"""Per-step weights :math:`w_t` of one episode (the only place a weighting is defined).

    ``"total"``: :math:`w_t = G_0`; ``"reward_to_go"``: :math:`w_t = \gamma^t G_t`, with
    :math:`G_t = \sum_{k \ge t} \gamma^{k-t} r_k`, as in
    :func:`rlnotes.pg.score.reinforce_gradients`. ``values`` (the value estimate of each step's
    state) is accepted for weightings that need a critic; the two defined here ignore it.

    Chapter 2 adds ``"reward_to_go_baseline"``: :math:`w_t = \gamma^t (G_t - \hat V(s_t))`, and
    ``"gae"``: :math:`w_t = \gamma^t \hat A^\lambda_t` (Book: eq-vr-gae), where the value of the
    state after the last step is ``last_value`` (0 if the episode terminated, the value of the
    final observation if it was truncated).
    """
    if weighting in CRITIC_WEIGHTINGS:
        if values is None or values.shape != rewards.shape:
            raise ValueError(f"values must have the shape of rewards {rewards.shape}")
        scale = gamma ** np.arange(rewards.shape[0], dtype=np.float64)
        if weighting == "reward_to_go_baseline":
            w: FloatArray = scale * (reward_to_go(rewards, gamma) - values)
            return w
        next_values = np.append(values[1:], last_value)
        w = scale * gae(rewards, values, next_values, gamma, lam)
        return w
    T = rewards.shape[0]
    rtg = np.empty(T)
    acc = 0.0
    for t in range(T - 1, -1, -1):
        acc = float(rewards[t]) + gamma * acc
        rtg[t] = acc
    powers = gamma ** np.arange(T, dtype=np.float64)
    if weighting == "total":
        return np.full(T, rtg[0])
    if weighting == "reward_to_go":
        out: FloatArray = powers * rtg
        return out
    raise ValueError(f"weighting must be one of {TRAIN_WEIGHTINGS}, got {weighting!r}")


def _value_targets(
    rewards: FloatArray,
    gamma: float,
    weighting: str,
    values: FloatArray,
    *,
    last_value: float,
    lam: float,
) -> FloatArray:
    r"""Regression targets of the critic: :math:`G_t` for ``"reward_to_go_baseline"``, the
    :math:`\lambda`-return :math:`\hat A^\lambda_t + \hat V(s_t)` for ``"gae"``
    (Book: eq-vr-lambda-return)."""
    if weighting == "reward_to_go_baseline":
        return reward_to_go(rewards, gamma)
    next_values = np.append(values[1:], last_value)
    return lambda_returns(rewards, values, next_values, gamma, lam)


def train_reinforce(
    env_id: str = "CartPole-v1",
    *,
    n_iterations: int,
    episodes_per_iteration: int,
    learning_rate: float,
    gamma: float = 0.99,
    weighting: str = "reward_to_go",
    seed: int = 0,
    hidden: int = 32,
    lam: float = 0.95,
    value_learning_rate: float = 0.01,
) -> FloatArray:
    r"""Train a :class:`CategoricalMLPPolicy` with REINFORCE (Adam on :func:`reinforce_loss`).

    Each iteration samples ``episodes_per_iteration`` full episodes with the current policy,
    weights each step by :math:`w_t` (``"total"``: :math:`G_0`; ``"reward_to_go"``:
    :math:`\gamma^t G_t`), and takes one Adam step on
    :math:`-\frac{1}{M}\sum_k w_k \log\pi_\theta(a_k \mid s_k)` over the M steps of the batch.
    Book: eq-sf-reinforce. Source: Williams (1992).

    The run is a pure function of its arguments: the network (float32, whatever torch's default
    dtype) is initialised and actions are sampled from torch generators seeded with ``seed``
    (the global torch state is left as it was), and the environment is reset with ``seed`` once,
    at its first episode.

    Parameters
    ----------
    env_id : str
        A gymnasium environment with a Box observation space and a Discrete action space.
    n_iterations, episodes_per_iteration : int
        Number of updates, and of episodes per update.
    learning_rate : float
        Adam step size (> 0).
    gamma : float in [0, 1]
        Discount of the weights.
    weighting : {"total", "reward_to_go", "reward_to_go_baseline", "gae"}
        The last two (chapter 2) learn a value network :math:`\hat V` (same architecture, one
        output) and use :math:`w_t = \gamma^t (G_t - \hat V(s_t))`, respectively
        :math:`w_t = \gamma^t \hat A^\lambda_t` (GAE, Book: eq-vr-gae; Schulman et al. 2016).
        The values are computed before the policy step; afterwards the critic takes
        ``VALUE_STEPS`` Adam steps on the squared error to :math:`G_t`, respectively to the
        :math:`\lambda`-return. A truncated episode bootstraps from the value of its final
        observation, a terminated one does not.
    seed : int
        Non-negative seed.
    hidden : int
        Width of the policy's hidden layer.
    lam : float in [0, 1]
        :math:`\lambda` of ``"gae"`` (ignored otherwise).
    value_learning_rate : float
        Adam step size of the critic (> 0; ignored without a critic).

    Returns
    -------
    array, shape (n_iterations,)
        The mean undiscounted episode return of each iteration's batch.
    """
    if not isinstance(env_id, str):
        raise ValueError(f"env_id must be a string, got {type(env_id).__name__}")
    n_iter = check_positive_int("n_iterations", n_iterations)
    n_eps = check_positive_int("episodes_per_iteration", episodes_per_iteration)
    lr = check_positive_real("learning_rate", learning_rate)
    g = check_gamma(gamma, allow_one=True)
    if weighting not in TRAIN_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {TRAIN_WEIGHTINGS}, got {weighting!r}")
    sd = check_positive_int("seed", seed, minimum=0)
    width = check_positive_int("hidden", hidden)
    lm = check_gamma(lam, "lam", allow_one=True)
    value_lr = check_positive_real("value_learning_rate", value_learning_rate)
    try:
        env = gym.make(env_id)
    except gym.error.Error as err:
        raise ValueError(f"env_id {env_id!r} cannot be made: {err}") from err
    try:
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"env_id {env_id!r} must have a 1-d Box observation space")
        if not isinstance(act_space, gym.spaces.Discrete):
            raise ValueError(f"env_id {env_id!r} must have a Discrete action space")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sd)
            policy = CategoricalMLPPolicy(
                int(obs_space.shape[0]), int(act_space.n), width, dtype=torch.float32
            )
            critic: nn.Module | None = None
            if weighting in CRITIC_WEIGHTINGS:
                critic = nn.Sequential(
                    nn.Linear(int(obs_space.shape[0]), width, dtype=torch.float32),
                    nn.Tanh(),
                    nn.Linear(width, 1, dtype=torch.float32),
                )
        value_optimizer = (
            None if critic is None else torch.optim.Adam(critic.parameters(), lr=value_lr)
        )
        sampler = torch.Generator().manual_seed(sd + 1)
        optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        curve = np.empty(n_iter)
        first_reset = True
        for it in range(n_iter):
            log_probs: list[torch.Tensor] = []
            weights: list[FloatArray] = []
            value_obs: list[torch.Tensor] = []
            value_targets: list[FloatArray] = []
            returns = np.empty(n_eps)
            for ep in range(n_eps):
                obs, _ = env.reset(seed=sd) if first_reset else env.reset()
                first_reset = False
                ep_obs: list[Any] = []
                ep_act: list[int] = []
                ep_rew: list[float] = []
                done = False
                while not done:
                    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
                    with torch.no_grad():
                        probs = torch.softmax(policy(x), dim=-1)
                    a = int(torch.multinomial(probs, 1, generator=sampler).item())
                    ep_obs.append(x)
                    ep_act.append(a)
                    obs, r, terminated, truncated, _ = env.step(a)
                    ep_rew.append(float(r))
                    done = bool(terminated or truncated)
                rew = np.asarray(ep_rew)
                returns[ep] = rew.sum()
                if critic is None:
                    weights.append(_episode_weights(rew, g, weighting))
                else:
                    obs_batch = torch.stack(ep_obs)
                    with torch.no_grad():
                        vals = critic(obs_batch)[:, 0].double().numpy()
                        last = 0.0
                        if not terminated:  # truncated: bootstrap from the final observation
                            final = torch.as_tensor(np.asarray(obs, dtype=np.float32))
                            last = float(critic(final)[0])
                    weights.append(
                        _episode_weights(rew, g, weighting, vals, last_value=last, lam=lm)
                    )
                    value_obs.append(obs_batch)
                    value_targets.append(
                        _value_targets(rew, g, weighting, vals, last_value=last, lam=lm)
                    )
                logp_all = torch.log_softmax(policy(torch.stack(ep_obs)), dim=-1)
                act_idx = torch.as_tensor(ep_act, dtype=torch.int64)[:, None]
                log_probs.append(logp_all.gather(1, act_idx)[:, 0])
            loss = reinforce_loss(
                torch.cat(log_probs), torch.as_tensor(np.concatenate(weights), dtype=torch.float32)
            )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if critic is not None and value_optimizer is not None:
                x_v = torch.cat(value_obs)
                y_v = torch.as_tensor(np.concatenate(value_targets), dtype=torch.float32)
                for _ in range(VALUE_STEPS):
                    value_loss = ((critic(x_v)[:, 0] - y_v) ** 2).mean()
                    value_optimizer.zero_grad()
                    value_loss.backward()
                    value_optimizer.step()
            curve[it] = returns.mean()
    finally:
        env.close()
    return curve
