r"""REINFORCE with a neural policy in torch: the surrogate loss, the weights, a training loop.

:func:`train_reinforce` is a short composition of the shared torch parts:
:func:`~rlnotes.nn.rollout.collect_episodes` (a seeded, time-major batch of whole episodes),
:func:`reinforce_weights` (reward to go, baselines and GAE, all through
:mod:`rlnotes.estimators.returns`), :func:`reinforce_loss`, and, for the weightings with a
critic, :func:`~rlnotes.nn.critic.fit_critic`.

**Which objective.** Every weighting here estimates the gradient of the *time-limited*
discounted objective :math:`J_H(\theta) = \mathbb{E}\big[\sum_{t < T \wedge H} \gamma^t r_t\big]`,
where :math:`T` is the termination time and :math:`H` the environment's time limit
(``max_episode_steps``, 500 for CartPole-v1): a truncated step is the last step of that
objective, so no weighting bootstraps there. The critic is time-aware (it sees
:math:`t / H` next to the observation; Pardo et al. 2018), because the value of the
time-limited problem depends on the time left.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_gamma,
    check_positive_int,
    check_positive_real,
)
from rlnotes.estimators.returns import gae, lambda_returns, reward_to_go
from rlnotes.nn.critic import fit_critic, predict_values, value_network
from rlnotes.nn.policies import CategoricalMLPPolicy
from rlnotes.nn.rollout import (
    EpisodeBatch,
    batch_log_probs,
    collect_episodes,
    episode_returns,
    make_discrete_control_env,
    step_in_episode,
)
from rlnotes.nn.tensors import check_tensor

__all__ = [
    "CRITIC_WEIGHTINGS",
    "TRAIN_WEIGHTINGS",
    "VALUE_STEPS",
    "reinforce_loss",
    "reinforce_weights",
    "train_reinforce",
]

#: The weightings that :func:`train_reinforce` accepts.
TRAIN_WEIGHTINGS = ("total", "reward_to_go", "reward_to_go_baseline", "gae")

#: The weightings that need a learned value function (a critic).
CRITIC_WEIGHTINGS = ("reward_to_go_baseline", "gae")

#: Adam steps of value regression per iteration, for the weightings with a critic.
VALUE_STEPS = 10


def reinforce_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""The REINFORCE surrogate loss.

    .. math:: L(\theta) = -\frac{1}{M} \sum_{k=1}^{M} w_k \log \pi_\theta(a_k \mid s_k),
              \qquad
              \nabla_\theta L
              = -\frac{1}{M} \sum_{k=1}^{M} w_k \nabla_\theta \log \pi_\theta(a_k \mid s_k)

    The weights are detached: they are treated as constants, as in the estimator. Over a
    batch of N episodes with M steps in all, :math:`\nabla_\theta L = -(N/M)\,\hat g`, where
    :math:`\hat g` is the per-episode average of eq-sf-reinforce; M is random when episodes
    end at random times, so the step size an optimizer sees varies with the batch.
    Book: eq-sf-reinforce, eq-sf-surrogate. Source: Williams (1992); Schulman et al. (2015),
    surrogate loss.

    Parameters
    ----------
    log_probs : torch.Tensor
        :math:`\log \pi_\theta(a_k \mid s_k)` for the M sampled steps, any non-empty shape.
    weights : torch.Tensor
        The per-step weights :math:`w_k` (return, reward to go, advantage), same shape.

    Returns
    -------
    torch.Tensor
        A 0-d tensor.
    """
    check_tensor("log_probs", log_probs)
    check_tensor("weights", weights)
    if log_probs.shape != weights.shape:
        raise ValueError(
            f"weights must have the shape of log_probs {tuple(log_probs.shape)}, "
            f"got {tuple(weights.shape)}"
        )
    return -(log_probs * weights.detach()).mean()


def reinforce_weights(
    rewards: Any,
    gamma: float,
    weighting: str,
    ends: Any,
    *,
    values: Any = None,
    next_values: Any = None,
    lam: float = 1.0,
) -> FloatArray:
    r"""Per-step weights :math:`w_t` of whole episodes laid end to end (time-major).

    With :math:`G_t = \sum_{k=t}^{T_e - 1} \gamma^{k-t} r_k` the reward to go inside the
    episode and :math:`i` the time of step :math:`t` inside its episode:

    - ``"total"``: :math:`w_t = G_{\text{start}}`, the episode's discounted return
      (Book: eq-sf-reinforce);
    - ``"reward_to_go"``: :math:`w_t = \gamma^i G_t` (Book: eq-vr-discounted-rtg);
    - ``"reward_to_go_baseline"``: :math:`w_t = \gamma^i (G_t - \hat V_t)`
      (Book: thm-vr-baseline);
    - ``"gae"``: :math:`w_t = \gamma^i \hat A^{\lambda}_t` with
      :math:`\delta_t = r_t + \gamma \hat V_{t+1} - \hat V_t`, and :math:`\hat V_{t+1} = 0`
      at an episode's last step (Book: eq-vr-gae).

    ``ends[t]`` marks the last step of an episode (terminated *or* truncated); no weighting
    bootstraps there, so all four estimate the gradient of the same time-limited objective
    (module docstring). The recursions are those of :mod:`rlnotes.estimators.returns`, so
    rewards too large for float64 raise the same named error.
    Source: Williams (1992); Schulman et al. (2016).

    Parameters
    ----------
    rewards : array_like, shape (T,)
        Rewards of the episodes, concatenated.
    gamma : float
        Discount factor in [0, 1].
    weighting : {"total", "reward_to_go", "reward_to_go_baseline", "gae"}
        The estimator.
    ends : array_like of bool, shape (T,)
        True at the last step of every episode (and only there); ``ends[-1]`` must be True.
    values, next_values : array_like, shape (T,), optional
        :math:`\hat V_t` (both critic weightings) and :math:`\hat V_{t+1}` (``"gae"``; its
        entries at episode ends are not used).
    lam : float
        :math:`\lambda \in [0, 1]` of ``"gae"``.

    Returns
    -------
    numpy.ndarray, shape (T,), float64
    """
    r = as_float_array("rewards", rewards, ndim=1)
    g = check_gamma(gamma, "gamma", allow_one=True)
    if not isinstance(weighting, str):
        raise TypeError(f"weighting must be a string, got {type(weighting).__name__}")
    if weighting not in TRAIN_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {TRAIN_WEIGHTINGS}, got {weighting!r}")
    done = np.asarray(ends)
    if done.dtype != np.bool_:
        raise TypeError(f"ends must be a bool array, got dtype {done.dtype}")
    if done.shape != r.shape:
        raise ValueError(f"ends must have the shape of rewards {r.shape}, got {done.shape}")
    if r.size and not done[-1]:
        raise ValueError("ends must be True at the last step (whole episodes only)")
    lm = check_gamma(lam, "lam", allow_one=True)
    starts = np.concatenate([[True], done[:-1]]) if r.size else done
    step = np.arange(r.size) - np.maximum.accumulate(np.where(starts, np.arange(r.size), 0))
    scale = g ** step.astype(np.float64)
    if weighting in ("total", "reward_to_go"):
        rtg = reward_to_go(r, g, terminated=done)
        if weighting == "total":
            first = np.maximum.accumulate(np.where(starts, np.arange(r.size), 0))
            out: FloatArray = rtg[first]
            return out
        out = scale * rtg
        return out
    if values is None:
        raise ValueError(f"values must be given for weighting {weighting!r}, got None")
    v = as_float_array("values", values, ndim=1)
    if v.shape != r.shape:
        raise ValueError(f"values must have the shape of rewards {r.shape}, got {v.shape}")
    if weighting == "reward_to_go_baseline":
        out = scale * (reward_to_go(r, g, terminated=done) - v)
        return out
    if next_values is None:
        raise ValueError("next_values must be given for weighting 'gae', got None")
    out = scale * gae(r, v, next_values, g, lm, terminated=done)
    return out


def _critic_inputs(obs: FloatArray, step: Any, horizon: int | None) -> FloatArray:
    """Observation, and the time fraction ``t / H`` when the environment has a time limit."""
    if horizon is None:
        return obs
    frac = np.asarray(step, dtype=np.float64)[:, None] / horizon
    return np.concatenate([obs, frac], axis=1)


def _critic_terms(
    critic: torch.nn.Module, batch: EpisodeBatch, horizon: int | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(inputs, values, next_values)`` of the time-aware critic on ``batch``."""
    step = step_in_episode(batch)
    x = _critic_inputs(np.asarray(batch.observations), step, horizon)
    x_next = _critic_inputs(np.asarray(batch.next_observations), step + 1, horizon)
    return x, predict_values(critic, x), predict_values(critic, x_next)


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
    r"""Train a :class:`~rlnotes.nn.policies.CategoricalMLPPolicy` with REINFORCE.

    Each iteration collects ``episodes_per_iteration`` whole episodes with the current policy
    (:func:`~rlnotes.nn.rollout.collect_episodes`), weights each step by
    :func:`reinforce_weights`, and takes one Adam step on :func:`reinforce_loss`. With a
    critic weighting, the values are computed before the policy step; afterwards the critic
    (an MLP of the same width with input :math:`(o_t, t/H)`) takes ``VALUE_STEPS`` Adam steps
    (:func:`~rlnotes.nn.critic.fit_critic`) towards :math:`G_t`, respectively the
    :math:`\lambda`-return. All weightings target the time-limited objective of the module
    docstring. Book: eq-sf-reinforce. Source: Williams (1992); Schulman et al. (2016).

    The run is a pure function of its arguments: the networks (float32) are initialised
    from a torch generator state seeded with ``seed`` (the global torch state is left as it
    was), actions come from ``torch.Generator().manual_seed(seed + 1)``, and the environment
    is reset with ``seed`` once, at its first episode.

    Parameters
    ----------
    env_id : str
        A gymnasium environment with a 1-d Box observation space and a Discrete action space.
    n_iterations, episodes_per_iteration : int
        Number of updates, and of episodes per update (>= 1).
    learning_rate : float
        Adam step size (> 0).
    gamma : float
        Discount in [0, 1].
    weighting : {"total", "reward_to_go", "reward_to_go_baseline", "gae"}
        See :func:`reinforce_weights`.
    seed : int
        Non-negative seed.
    hidden : int
        Width of the hidden layer of the policy (and of the critic).
    lam : float
        :math:`\lambda \in [0, 1]` of ``"gae"`` (ignored otherwise).
    value_learning_rate : float
        Adam step size of the critic (> 0; ignored without a critic).

    Returns
    -------
    numpy.ndarray, shape (n_iterations,)
        The mean undiscounted episode return of each iteration's batch.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a string, got {type(env_id).__name__}")
    n_iter = check_positive_int("n_iterations", n_iterations)
    n_eps = check_positive_int("episodes_per_iteration", episodes_per_iteration)
    lr = check_positive_real("learning_rate", learning_rate)
    g = check_gamma(gamma, "gamma", allow_one=True)
    if not isinstance(weighting, str):
        raise TypeError(f"weighting must be a string, got {type(weighting).__name__}")
    if weighting not in TRAIN_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {TRAIN_WEIGHTINGS}, got {weighting!r}")
    sd = check_positive_int("seed", seed, minimum=0)
    width = check_positive_int("hidden", hidden)
    lm = check_gamma(lam, "lam", allow_one=True)
    value_lr = check_positive_real("value_learning_rate", value_learning_rate)
    env, obs_dim, n_actions = make_discrete_control_env(env_id)
    try:
        horizon = env.spec.max_episode_steps if env.spec is not None else None
        with_critic = weighting in CRITIC_WEIGHTINGS
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sd)
            policy = CategoricalMLPPolicy(obs_dim, n_actions, width, dtype=torch.float32)
            critic = value_network(obs_dim + (horizon is not None), (width,), dtype=torch.float32)
        optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        value_optimizer = torch.optim.Adam(critic.parameters(), lr=value_lr)
        sampler = torch.Generator().manual_seed(sd + 1)
        curve = np.empty(n_iter)
        for it in range(n_iter):
            batch = collect_episodes(
                env, policy, n_eps, seed=sd if it == 0 else None, generator=sampler
            )
            ends = batch.terminated | batch.truncated
            if with_critic:
                x, v, v_next = _critic_terms(critic, batch, horizon)
                w = reinforce_weights(
                    batch.rewards, g, weighting, ends, values=v, next_values=v_next, lam=lm
                )
                if weighting == "gae":
                    targets = lambda_returns(batch.rewards, v, v_next, g, lm, terminated=ends)
                else:
                    targets = reward_to_go(batch.rewards, g, terminated=ends)
            else:
                w = reinforce_weights(batch.rewards, g, weighting, ends)
            loss = reinforce_loss(
                batch_log_probs(policy, batch), torch.as_tensor(w, dtype=torch.float32)
            )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if with_critic:
                fit_critic(critic, x, targets, n_steps=VALUE_STEPS, optimizer=value_optimizer)
            curve[it] = episode_returns(batch).mean()
    finally:
        env.close()
    return curve
