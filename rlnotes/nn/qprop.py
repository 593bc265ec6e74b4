r"""Q-Prop in torch: the Taylor control variate, the weights eta, the surrogate loss, the critic.

Q-Prop (Gu et al. 2017) subtracts from the advantage estimate :math:`\hat A_t` the first-order
Taylor expansion of a critic :math:`Q_w` around the policy's mean action
:math:`\mu_\theta(s_t)`, and adds back the expectation of what it subtracted, which for a
Gaussian policy is the deterministic-policy-gradient term (Silver et al. 2014):

.. math::

    g = \frac{1}{M} \sum_{t} \Big[\big(\hat A_t - \eta_t \bar A_w(s_t, a_t)\big)
        \nabla_\theta \log \pi_\theta(a_t \mid s_t)
        + \eta_t\, \big(J_\theta \mu_\theta(s_t)\big)^\top
          \nabla_a Q_w(s_t, a)\big|_{a=\mu_\theta(s_t)}
        \Big],

    \bar A_w(s, a) = \nabla_a Q_w(s, a)\big|_{a=\mu_\theta(s)}^\top \big(a - \mu_\theta(s)\big).

Here :math:`J_\theta \mu_\theta(s)` is the ``(act_dim, dim theta)`` Jacobian of the mean. It is
unbiased for every critic and every weight :math:`\eta_t` that depends on the state only.
:func:`qprop_loss` is a surrogate whose autograd gradient is :math:`-g`;
:func:`fit_q_critic` fits :math:`Q_w` off-policy from a replay buffer with the policy-evaluation
targets :math:`r + \gamma\, Q_w(s', \mu_\theta(s'))` (as in DDPG, Lillicrap et al. 2016).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from rlnotes.core.validation import (
    FloatArray,
    as_array,
    check_bool_flags,
    check_gamma,
    check_positive_int,
    check_positive_real,
    check_seed,
)
from rlnotes.nn.policies import mlp
from rlnotes.nn.tensors import check_tensor, parameter_dtype

__all__ = [
    "ETA_RULES",
    "QCriticFit",
    "QCriticMLP",
    "critic_action_gradient",
    "fit_q_critic",
    "qprop_eta",
    "qprop_loss",
    "taylor_control_variate",
]

#: The weights eta that :func:`qprop_eta` computes.
ETA_RULES = ("conservative", "aggressive", "optimal")


class QCriticMLP(nn.Module):
    r"""An action-value critic :math:`Q_w(s, a)`: an MLP on the concatenation :math:`(s, a)`.

    Parameters
    ----------
    obs_dim, act_dim : int
        Dimensions of an observation and of an action.
    hidden : sequence of int
        Hidden widths (tanh), as in ``rlnotes.nn.policies.mlp``.
    dtype : torch.dtype, optional
        Floating-point type of the parameters.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.act_dim = check_positive_int("act_dim", act_dim)
        self.net = mlp(self.obs_dim + self.act_dim, 1, hidden, dtype=dtype)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """:math:`Q_w(s, a)`, shape ``(*batch,)``, of ``obs (*batch, obs_dim)``, ``act``
        ``(*batch, act_dim)``.
        """
        for name, x, d in (("obs", obs, self.obs_dim), ("act", act, self.act_dim)):
            if not isinstance(x, torch.Tensor) or not x.is_floating_point():
                raise TypeError(f"{name} must be a floating-point torch.Tensor")
            if x.ndim == 0 or x.shape[-1] != d:
                raise ValueError(f"{name} must have shape (*batch, {d}), got {tuple(x.shape)}")
        if obs.shape[:-1] != act.shape[:-1]:
            raise ValueError(
                f"act must have the batch shape of obs {tuple(obs.shape[:-1])}, "
                f"got {tuple(act.shape[:-1])}"
            )
        out: torch.Tensor = self.net(torch.cat([obs, act], dim=-1))[..., 0]
        return out


def critic_action_gradient(
    critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    observations: torch.Tensor,
    actions: torch.Tensor,
) -> torch.Tensor:
    r"""The action gradient :math:`\nabla_a Q_w(s_k, a)|_{a = a_k}` of each row, by autograd.

    The result is detached: it is a constant of the estimator, not a function of
    :math:`\theta` (pass ``actions = mu_theta(s).detach()`` for the Taylor point of Q-Prop).
    Book: thm-qp-taylor. Source: Gu et al. (2017), sec. 3.1.

    Parameters
    ----------
    critic : callable
        :math:`Q_w`, mapping ``(M, obs_dim)`` and ``(M, act_dim)`` to ``(M,)``.
    observations : torch.Tensor, shape (M, obs_dim)
    actions : torch.Tensor, shape (M, act_dim)

    Returns
    -------
    torch.Tensor, shape (M, act_dim)
    """
    if not callable(critic):
        raise TypeError(f"critic must be callable, got {type(critic).__name__}")
    obs = check_tensor("observations", observations, ndim=2)
    act = check_tensor("actions", actions, ndim=2)
    if act.shape[0] != obs.shape[0]:
        raise ValueError(
            f"actions must have {obs.shape[0]} rows, one per observation, got {act.shape[0]}"
        )
    a = act.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        q = critic(obs.detach(), a)
        if not isinstance(q, torch.Tensor) or tuple(q.shape) != (obs.shape[0],):
            shape = tuple(q.shape) if isinstance(q, torch.Tensor) else type(q).__name__
            raise ValueError(f"critic must return shape ({obs.shape[0]},), got {shape}")
        (grad,) = torch.autograd.grad(q.sum(), a)
    return grad.detach()


def taylor_control_variate(
    action_gradient: torch.Tensor, actions: torch.Tensor, mean: torch.Tensor
) -> torch.Tensor:
    r"""The Taylor control variate :math:`\bar A_w(s, a) = \nabla_a Q_w(s, \mu)^\top (a - \mu)`.

    It is the first-order Taylor expansion of :math:`Q_w(s, \cdot)` around the mean action
    :math:`\mu = \mu_\theta(s)`, minus its value there; under a policy with mean :math:`\mu`
    it has conditional mean zero, :math:`\mathbb{E}_{a \mid s}[\bar A_w(s, a)] = 0`.
    The result is detached. Book: eq-qp-abar. Source: Gu et al. (2017), eq. 7.

    Parameters
    ----------
    action_gradient : torch.Tensor, shape (M, act_dim)
        :math:`\nabla_a Q_w(s_k, a)|_{a = \mu_k}` (from :func:`critic_action_gradient`).
    actions : torch.Tensor, shape (M, act_dim)
        The sampled actions :math:`a_k`.
    mean : torch.Tensor, shape (M, act_dim)
        The mean actions :math:`\mu_\theta(s_k)`.

    Returns
    -------
    torch.Tensor, shape (M,)
    """
    g = check_tensor("action_gradient", action_gradient, ndim=2)
    a = check_tensor("actions", actions, shape=tuple(g.shape))
    m = check_tensor("mean", mean, shape=tuple(g.shape))
    return (g.detach() * (a.detach() - m.detach())).sum(dim=-1)


def qprop_eta(cov: Any, var: Any = None, *, rule: str) -> torch.Tensor:
    r"""The weight :math:`\eta` of the control variate from :math:`\mathrm{Cov}(\hat A, \bar A)`.

    .. math::

        \eta_{\mathrm{conservative}} = \mathbb{1}[\mathrm{Cov} > 0], \qquad
        \eta_{\mathrm{aggressive}} = \operatorname{sign}(\mathrm{Cov}), \qquad
        \eta^\star = \mathrm{Cov} / \mathrm{Var}(\bar A).

    :math:`\eta^\star` minimizes :math:`\mathrm{Var}(\hat A - \eta \bar A)`; the variance of
    that proxy drops iff :math:`0 < \eta/\eta^\star < 2`. The weight keeps the estimator
    unbiased only if it does not depend on the sampled actions whose score it multiplies:
    pass conditional moments given the state, or batch moments of other data.
    Book: eq-qp-eta-star, eq-qp-eta-window. Source: Gu et al. (2017), sec. 3.3 and 3.4.

    Parameters
    ----------
    cov : array_like or torch.Tensor
        :math:`\mathrm{Cov}(\hat A, \bar A)` (a scalar, or one per state), finite.
    var : array_like or torch.Tensor, optional
        :math:`\mathrm{Var}(\bar A) > 0`, the shape of ``cov``; required for ``"optimal"``.
    rule : {"conservative", "aggressive", "optimal"}

    Returns
    -------
    torch.Tensor
        float64, the shape of ``cov``.
    """
    c = torch.as_tensor(as_array("cov", cov), dtype=torch.float64)
    if not isinstance(rule, str):
        raise TypeError(f"rule must be a string, one of {ETA_RULES}, got {type(rule).__name__}")
    if rule not in ETA_RULES:
        raise ValueError(f"rule must be one of {ETA_RULES}, got {rule!r}")
    if rule == "conservative":
        return (c > 0).to(torch.float64)
    if rule == "aggressive":
        return torch.sign(c)
    if var is None:
        raise ValueError("var must be given for rule='optimal' (eta* = cov / var)")
    v = torch.as_tensor(as_array("var", var, shape=tuple(c.shape)), dtype=torch.float64)
    if bool((v <= 0).any()):
        raise ValueError(
            f"var must be > 0 (the variance of the control variate), got {float(v.min()):.3g}"
        )
    return c / v


def qprop_loss(
    log_probs: torch.Tensor,
    advantages: torch.Tensor,
    control_variate: torch.Tensor,
    eta: Any,
    action_gradient: torch.Tensor,
    mean: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The Q-Prop surrogate loss, whose gradient in :math:`\theta` is minus the Q-Prop estimate.

    .. math::

        L(\theta) = -\frac{1}{M} \sum_{k=1}^{M} \Big[\big(\hat A_k - \eta_k \bar A_k\big)
            \log \pi_\theta(a_k \mid s_k)
            + \eta_k\, \nabla_a Q_w(s_k, \mu_k)^\top \mu_\theta(s_k)\Big],

    where every factor except :math:`\log \pi_\theta` and :math:`\mu_\theta` is detached, so
    :math:`\nabla_\theta L = -g` with :math:`g` the estimator of eq-qp-estimator
    (:math:`(J_\theta \mu_\theta(s))^\top \nabla_a Q_w`, the autograd gradient of
    :math:`\nabla_a Q_w^\top \mu_\theta(s)`, is the DPG term). With
    ``reduction="sum"`` the factor :math:`1/M` is dropped.
    Book: eq-qp-estimator, eq-qp-advantage-form. Source: Gu et al. (2017), eq. 8 and
    algorithm 1; Silver et al. (2014) for the DPG term.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (M,)
        :math:`\log \pi_\theta(a_k \mid s_k)`, differentiable in :math:`\theta`.
    advantages : torch.Tensor, shape (M,)
        :math:`\hat A_k` (e.g. GAE), treated as constants.
    control_variate : torch.Tensor, shape (M,)
        :math:`\bar A_k` (from :func:`taylor_control_variate`).
    eta : float or torch.Tensor of shape () or (M,)
        The weights :math:`\eta_k` (from :func:`qprop_eta`); they must not depend on
        :math:`a_k`.
    action_gradient : torch.Tensor, shape (M, act_dim)
        :math:`\nabla_a Q_w(s_k, a)|_{a = \mu_k}`.
    mean : torch.Tensor, shape (M, act_dim)
        :math:`\mu_\theta(s_k)`, differentiable in :math:`\theta`.
    reduction : {"mean", "sum"}

    Returns
    -------
    0-d torch.Tensor
    """
    lp = check_tensor("log_probs", log_probs, ndim=1)
    m = lp.shape[0]
    adv = check_tensor("advantages", advantages, shape=(m,))
    cv = check_tensor("control_variate", control_variate, shape=(m,))
    grad = check_tensor("action_gradient", action_gradient, ndim=2)
    if grad.shape[0] != m:
        raise ValueError(f"action_gradient must have {m} rows, got shape {tuple(grad.shape)}")
    mu = check_tensor("mean", mean, shape=tuple(grad.shape))
    if isinstance(eta, torch.Tensor):
        e = check_tensor("eta", eta)
        if e.ndim > 1 or (e.ndim == 1 and e.shape[0] != m):
            raise ValueError(f"eta must be a scalar or have shape ({m},), got {tuple(e.shape)}")
        e = e.detach().to(lp.dtype)
    else:
        e = torch.as_tensor(as_array("eta", eta, ndim=(0, 1)), dtype=lp.dtype)
        if e.ndim == 1 and e.shape[0] != m:
            raise ValueError(f"eta must be a scalar or have shape ({m},), got {tuple(e.shape)}")
    if not isinstance(reduction, str):
        raise TypeError(f"reduction must be 'mean' or 'sum', got {type(reduction).__name__}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    weight = (adv.detach() - e * cv.detach()).to(lp.dtype)
    dpg = e * (grad.detach().to(mu.dtype) * mu).sum(dim=-1)
    terms = weight * lp + dpg
    total = terms.sum()
    return -(total / m if reduction == "mean" else total)


class QCriticFit(NamedTuple):
    """What :func:`fit_q_critic` did.

    Attributes
    ----------
    bellman_errors : numpy.ndarray, shape (n_iterations,)
        At the start of each iteration, the mean squared policy-evaluation TD error
        :math:`\\frac{1}{T}\\sum_k (Q_w(s_k, a_k) - y_k)^2` over the whole buffer.
    final_loss : float
        The same quantity after the last iteration, against the last targets.
    n_steps : int
        Optimizer steps taken in total.
    """

    bellman_errors: FloatArray
    final_loss: float
    n_steps: int


def fit_q_critic(
    critic: nn.Module,
    target_policy: Callable[[torch.Tensor], torch.Tensor],
    observations: Any,
    actions: Any,
    rewards: Any,
    next_observations: Any,
    terminated: Any,
    gamma: float,
    *,
    n_iterations: int = 20,
    steps_per_iteration: int = 50,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> QCriticFit:
    r"""Fit :math:`Q_w \approx Q^{\mu}` off-policy from a replay buffer (fitted Q evaluation).

    Each iteration freezes a copy :math:`Q_{\bar w}` of the critic, computes the
    policy-evaluation targets

    .. math:: y_k = r_k + \gamma\, (1 - \mathrm{terminated}_k)\,
              Q_{\bar w}\big(s'_k, \mu(s'_k)\big)

    for every transition of the buffer, and takes ``steps_per_iteration`` Adam steps on the
    mean squared error :math:`(Q_w(s_k, a_k) - y_k)^2` over minibatches drawn without
    replacement (``batch_size >= T`` gives full-batch steps). For a fixed :math:`\mu` the
    fixed point is the action value :math:`Q^\mu` of the target policy, whatever policy filled
    the buffer. ``target_policy`` is called on the next observations at every iteration, after
    the copy is frozen, so a policy that is greedy with respect to ``critic`` gives the
    ``max`` target of Q-learning instead, whose fixed point is :math:`Q^*`. A truncated step
    bootstraps like any other; only a terminated one does not. The critic is updated in place;
    the minibatches come from a ``torch.Generator`` seeded with ``seed``.
    Book: cor-qp-critic. Source: Gu et al. (2017), sec. 3 and algorithm 1; Lillicrap et al.
    (2016), the DDPG critic.

    Parameters
    ----------
    critic : torch.nn.Module
        :math:`Q_w`, mapping ``(B, obs_dim)``, ``(B, act_dim)`` to ``(B,)`` (e.g.
        :class:`QCriticMLP`).
    target_policy : callable
        :math:`\mu`, mapping next observations ``(B, obs_dim)`` to actions ``(B, act_dim)``
        (e.g. a ``GaussianMLPPolicy``, whose call is its mean).
    observations, next_observations : array_like, shape (T, obs_dim)
    actions : array_like, shape (T, act_dim)
    rewards : array_like, shape (T,)
    terminated : array_like of bool, shape (T,)
    gamma : float
        Discount factor in [0, 1).
    n_iterations, steps_per_iteration, batch_size : int
        Target refreshes, Adam steps per refresh, minibatch size (all >= 1).
    learning_rate : float
        Adam's step size (> 0).
    seed : int
        Seed of the minibatch sampling.

    Returns
    -------
    QCriticFit
    """
    if not isinstance(critic, nn.Module):
        raise TypeError(f"critic must be a torch.nn.Module, got {type(critic).__name__}")
    if not callable(target_policy):
        raise TypeError(f"target_policy must be callable, got {type(target_policy).__name__}")
    obs = as_array("observations", observations, ndim=2)
    n = obs.shape[0]
    if n == 0:
        raise ValueError("observations must hold at least one transition")
    act = as_array("actions", actions, ndim=2)
    if act.shape[0] != n:
        raise ValueError(f"actions must have {n} rows, one per observation, got {act.shape[0]}")
    rew = as_array("rewards", rewards, shape=(n,))
    nxt = as_array("next_observations", next_observations, shape=obs.shape)
    term = check_bool_flags("terminated", terminated, (n,))
    g = check_gamma(gamma)
    iters = check_positive_int("n_iterations", n_iterations)
    steps = check_positive_int("steps_per_iteration", steps_per_iteration)
    bs = min(check_positive_int("batch_size", batch_size), n)
    lr = check_positive_real("learning_rate", learning_rate)
    gen = torch.Generator().manual_seed(check_seed("seed", seed))

    dtype = parameter_dtype(critic)
    s = torch.tensor(obs, dtype=dtype)  # copies: the buffer's arrays may be read-only
    a = torch.tensor(act, dtype=dtype)
    r = torch.tensor(rew, dtype=dtype)
    s2 = torch.tensor(nxt, dtype=dtype)
    cont = torch.tensor(~term, dtype=dtype)
    with torch.no_grad():
        q0 = critic(s, a)
        if not isinstance(q0, torch.Tensor) or tuple(q0.shape) != (n,):
            found = tuple(q0.shape) if isinstance(q0, torch.Tensor) else type(q0).__name__
            raise ValueError(f"critic must return shape ({n},), got {found}")
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    errors = np.empty(iters)
    y = r
    for it in range(iters):
        frozen = copy.deepcopy(critic)
        with torch.no_grad():
            a2 = target_policy(s2)
            if not isinstance(a2, torch.Tensor) or tuple(a2.shape) != tuple(a.shape):
                got = tuple(a2.shape) if isinstance(a2, torch.Tensor) else type(a2).__name__
                raise ValueError(f"target_policy must return shape {tuple(a.shape)}, got {got}")
            y = r + g * cont * frozen(s2, a2.to(dtype))
            errors[it] = float(((critic(s, a) - y) ** 2).mean())
        for _ in range(steps):
            idx = torch.randperm(n, generator=gen)[:bs]  # without replacement
            loss = ((critic(s[idx], a[idx]) - y[idx]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        final = float(((critic(s, a) - y) ** 2).mean())
    if not (np.isfinite(errors).all() and np.isfinite(final)):
        raise ValueError("rewards too large in magnitude: the critic's fit diverged")
    return QCriticFit(bellman_errors=errors, final_loss=final, n_steps=iters * steps)
