"""Tests of rlnotes.nn.qprop against closed forms, autograd and exact tabular values."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from rlnotes.core.mdp import TabularMDP
from rlnotes.dp.bellman import policy_evaluation
from rlnotes.dp.planning import value_iteration
from rlnotes.nn.policies import GaussianMLPPolicy
from rlnotes.nn.qprop import (
    QCriticMLP,
    critic_action_gradient,
    fit_q_critic,
    qprop_eta,
    qprop_loss,
    taylor_control_variate,
)

SIGMA = 0.5
THETA = (0.3, -0.2)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny networks: one thread is much faster than two that contend on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _linear_gaussian_batch(n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """The one-step problem: s ~ N(0, 1), a ~ N(theta1 s + theta2, sigma^2), r = -(a - s)^2."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g, dtype=torch.float64)
    xi = torch.randn(n, generator=g, dtype=torch.float64)
    mu = THETA[0] * s + THETA[1]
    a = mu + SIGMA * xi
    return s, a, -((a - s) ** 2)


def _per_sample_qprop(
    s: torch.Tensor, a: torch.Tensor, r: torch.Tensor, qgrad_fn: object, eta: float
) -> torch.Tensor:
    """Per-sample Q-Prop gradients via the library loss: one parameter row per sample."""
    n = s.shape[0]
    theta = torch.tensor(THETA, dtype=torch.float64).repeat(n, 1).requires_grad_(True)
    mean = (theta[:, 0] * s + theta[:, 1])[:, None]
    lp = torch.distributions.Normal(mean[:, 0], SIGMA).log_prob(a)
    critic = qgrad_fn
    qg = critic_action_gradient(critic, s[:, None], mean.detach())  # type: ignore[arg-type]
    cv = taylor_control_variate(qg, a[:, None], mean)
    v = -(((THETA[0] - 1) * s + THETA[1]) ** 2) - SIGMA**2
    loss = qprop_loss(lp, r - v, cv, eta, qg, mean, reduction="sum")
    (grad,) = torch.autograd.grad(loss, theta)
    return -grad


def test_loss_gradient_is_the_closed_form_estimator() -> None:
    s, a, r = _linear_gaussian_batch(50, seed=0)

    def critic(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return -((act[:, 0] - obs[:, 0] / 2) ** 2)

    eta = 0.7
    got = _per_sample_qprop(s, a, r, critic, eta).numpy()
    sn, an, rn = s.numpy(), a.numpy(), r.numpy()
    mu = THETA[0] * sn + THETA[1]
    feats = np.stack([sn, np.ones_like(sn)], axis=1)
    score = ((an - mu) / SIGMA**2)[:, None] * feats
    qgrad = -2 * (mu - sn / 2)
    v = -(((THETA[0] - 1) * sn + THETA[1]) ** 2) - SIGMA**2
    want = ((rn - v) - eta * qgrad * (an - mu))[:, None] * score + eta * qgrad[:, None] * feats
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_estimator_is_unbiased_for_any_critic(shift: float) -> None:
    s, a, r = _linear_gaussian_batch(200_000, seed=1)

    def critic(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return -((act[:, 0] - (1 - shift) * obs[:, 0]) ** 2)

    g = _per_sample_qprop(s, a, r, critic, 1.0).numpy()
    exact = np.array([-2 * (THETA[0] - 1), -2 * THETA[1]])  # grad of -(t1-1)^2 - t2^2 - s^2
    z = np.abs(g.mean(0) - exact) / (g.std(0, ddof=1) / np.sqrt(g.shape[0]))
    assert z.max() < norm.ppf(1 - 1e-4 / 4)


def test_critic_action_gradient_matches_closed_form() -> None:
    obs = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    act = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]], dtype=torch.float64)

    def critic(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return ((o @ w) * a).sum(-1) - (a**2).sum(-1)

    got = critic_action_gradient(critic, obs, act)
    torch.testing.assert_close(got, obs @ w - 2 * act)
    assert not got.requires_grad
    with pytest.raises(ValueError, match="actions"):
        critic_action_gradient(critic, obs, act[:3])
    with pytest.raises(ValueError, match="critic"):
        critic_action_gradient(lambda o, a: a, obs, act)
    with pytest.raises(TypeError, match="critic"):
        critic_action_gradient(3, obs, act)  # type: ignore[arg-type]


def test_taylor_control_variate_and_its_zero_mean() -> None:
    gen = torch.Generator().manual_seed(4)
    grad = torch.randn(5, 2, dtype=torch.float64, generator=gen)
    mean = torch.randn(5, 2, dtype=torch.float64, generator=gen)
    act = torch.randn(5, 2, dtype=torch.float64, generator=gen)
    got = taylor_control_variate(grad, act, mean)
    torch.testing.assert_close(got, torch.einsum("kd,kd->k", grad, act - mean))
    # conditional mean zero: many actions at one state
    n = 100_000
    acts = mean[0] + 0.7 * torch.randn(n, 2, dtype=torch.float64, generator=gen)
    cv = taylor_control_variate(grad[:1].expand(n, 2), acts, mean[:1].expand(n, 2))
    assert abs(float(cv.mean())) / (float(cv.std()) / n**0.5) < norm.ppf(1 - 1e-4 / 2)
    with pytest.raises(ValueError, match="actions"):
        taylor_control_variate(grad, act[:, :1], mean)
    with pytest.raises(ValueError, match="mean"):
        taylor_control_variate(grad, act, mean.clone().fill_(float("nan")))
    with pytest.raises(TypeError, match="action_gradient"):
        taylor_control_variate(np.ones((5, 2)), act, mean)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="actions"):
        taylor_control_variate(grad, act.long(), mean)


def test_eta_rules() -> None:
    cov = torch.tensor([-2.0, 0.0, 3.0])
    var = torch.tensor([4.0, 1.0, 2.0])
    assert qprop_eta(cov, rule="conservative").tolist() == [0.0, 0.0, 1.0]
    assert qprop_eta(cov, rule="aggressive").tolist() == [-1.0, 0.0, 1.0]
    assert qprop_eta(cov, var, rule="optimal").tolist() == [-0.5, 0.0, 1.5]
    assert float(qprop_eta(0.3, 0.6, rule="optimal")) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rule"):
        qprop_eta(cov, rule="bold")
    with pytest.raises(TypeError, match="rule"):
        qprop_eta(cov, rule=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="var"):
        qprop_eta(cov, rule="optimal")
    with pytest.raises(ValueError, match="var"):
        qprop_eta(cov, torch.tensor([1.0, 0.0, 1.0]), rule="optimal")
    with pytest.raises(ValueError, match="var"):
        qprop_eta(cov, torch.tensor([1.0, 1.0]), rule="optimal")
    with pytest.raises(ValueError, match="cov"):
        qprop_eta(float("nan"), rule="aggressive")
    with pytest.raises(TypeError, match="cov"):
        qprop_eta("1", rule="aggressive")


def test_loss_validates_its_inputs() -> None:
    lp = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    adv = torch.ones(4, dtype=torch.float64)
    grad = torch.ones(4, 1, dtype=torch.float64)
    mean = torch.zeros(4, 1, dtype=torch.float64, requires_grad=True)
    loss = qprop_loss(lp, adv, adv, torch.ones(4), grad, mean)
    assert loss.ndim == 0
    with pytest.raises(ValueError, match="advantages"):
        qprop_loss(lp, adv[:3], adv, 1.0, grad, mean)
    with pytest.raises(ValueError, match="control_variate"):
        qprop_loss(lp, adv, adv * float("inf"), 1.0, grad, mean)
    with pytest.raises(ValueError, match="eta"):
        qprop_loss(lp, adv, adv, torch.ones(3), grad, mean)
    with pytest.raises(ValueError, match="eta"):
        qprop_loss(lp, adv, adv, [1.0, 2.0], grad, mean)
    with pytest.raises(TypeError, match="eta"):
        qprop_loss(lp, adv, adv, "1", grad, mean)
    with pytest.raises(ValueError, match="mean"):
        qprop_loss(lp, adv, adv, 1.0, grad, mean[:, :0])
    with pytest.raises(ValueError, match="action_gradient"):
        qprop_loss(lp, adv, adv, 1.0, grad[:2], mean)
    with pytest.raises(ValueError, match="log_probs"):
        qprop_loss(lp[:, None], adv, adv, 1.0, grad, mean)
    with pytest.raises(TypeError, match="log_probs"):
        qprop_loss([0.0] * 4, adv, adv, 1.0, grad, mean)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        qprop_loss(lp, adv, adv, 1.0, grad, mean, reduction="max")
    with pytest.raises(TypeError, match="reduction"):
        qprop_loss(lp, adv, adv, 1.0, grad, mean, reduction=1)  # type: ignore[arg-type]


def test_q_critic_mlp_shapes_and_errors() -> None:
    q = QCriticMLP(3, 2, (8,), dtype=torch.float64)
    out = q(torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 2, dtype=torch.float64))
    assert out.shape == (5,)
    with pytest.raises(ValueError, match="act"):
        q(torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="act"):
        q(torch.zeros(5, 3, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="obs"):
        q(np.zeros((5, 3)), torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="act_dim"):
        QCriticMLP(3, 1.5)  # type: ignore[arg-type]


class _TabularQ(nn.Module):
    """Q(s, a) = W[s, a] on one-hot inputs: an exact tabular critic."""

    def __init__(self, n_states: int, n_actions: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.zeros(n_states, n_actions, dtype=torch.float64))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return ((obs @ self.W) * act).sum(-1)


def _replay_mdp() -> tuple[TabularMDP, np.ndarray, list[tuple[int, int, int]]]:
    """A 3-state MDP whose P has entries in quarters, and a buffer matching P exactly."""
    P = np.zeros((3, 2, 3))
    P[0, 0] = [0.5, 0.5, 0.0]
    P[0, 1] = [0.0, 0.25, 0.75]
    P[1, 0] = [0.25, 0.25, 0.5]
    P[1, 1] = [1.0, 0.0, 0.0]
    P[2, 0] = [0.0, 0.0, 1.0]
    P[2, 1] = [0.5, 0.0, 0.5]
    R = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.5]])
    mdp = TabularMDP(P=P, R=R, gamma=0.6, mu0=np.full(3, 1 / 3))
    mu = np.array([1, 0, 0])  # a deterministic target policy, not the greedy one
    buffer = [
        (s, a, s2)
        for s in range(3)
        for a in range(2)
        for s2 in range(3)
        for _ in range(int(round(4 * P[s, a, s2])))
    ]
    return mdp, mu, buffer


def test_fit_q_critic_learns_q_mu_not_q_star() -> None:
    mdp, mu, buffer = _replay_mdp()
    eye_s, eye_a = np.eye(3), np.eye(2)
    s, a, s2 = (np.array(x) for x in zip(*buffer, strict=True))
    critic = _TabularQ(3, 2)
    table = torch.as_tensor(eye_a[mu])

    def target_policy(obs: torch.Tensor) -> torch.Tensor:
        return obs @ table

    fit = fit_q_critic(
        critic,
        target_policy,
        eye_s[s],
        eye_a[a],
        mdp.R[s, a],
        eye_s[s2],
        np.zeros(len(s), dtype=bool),
        mdp.gamma,
        n_iterations=40,
        steps_per_iteration=50,
        batch_size=len(s),
        learning_rate=0.02,
        seed=0,
    )
    Q_fit = critic.W.detach().numpy()
    _, Q_mu = policy_evaluation(mdp, eye_a[mu])
    Q_star = value_iteration(mdp, tol=1e-10).Q
    assert np.abs(Q_fit - Q_mu).max() < 1e-3
    assert np.abs(Q_mu - Q_star).max() > 0.5  # the target policy is far from optimal
    assert fit.bellman_errors[0] > fit.bellman_errors[-1]
    assert fit.n_steps == 2000
    # the max target (a policy greedy in the critic itself) learns Q* instead
    greedy = _TabularQ(3, 2)

    def greedy_policy(obs: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((obs @ greedy.W).argmax(-1), 2).to(obs.dtype)

    fit_q_critic(
        greedy, greedy_policy, eye_s[s], eye_a[a], mdp.R[s, a], eye_s[s2],
        np.zeros(len(s), dtype=bool), mdp.gamma, n_iterations=40, steps_per_iteration=50,
        batch_size=len(s), learning_rate=0.02, seed=0,
    )  # fmt: skip
    assert np.abs(greedy.W.detach().numpy() - Q_star).max() < 1e-3


def test_fit_q_critic_terminated_steps_do_not_bootstrap() -> None:
    # one state, one action, reward 1, always terminated: Q = 1 whatever gamma
    critic = _TabularQ(1, 1)
    ones = np.ones((10, 1))
    fit_q_critic(
        critic,
        lambda o: o,
        ones,
        ones,
        np.ones(10),
        ones,
        np.ones(10, dtype=bool),
        0.9,
        n_iterations=5,
        steps_per_iteration=200,
        learning_rate=0.05,
        seed=1,
    )
    assert float(critic.W.detach()) == pytest.approx(1.0, abs=1e-3)


def test_fit_q_critic_validates_inputs() -> None:
    critic = QCriticMLP(2, 1, (4,), dtype=torch.float64)
    policy = GaussianMLPPolicy(2, 1, (4,), dtype=torch.float64)
    obs, act, rew = np.zeros((6, 2)), np.zeros((6, 1)), np.zeros(6)
    term = np.zeros(6, dtype=bool)
    ok = dict(n_iterations=1, steps_per_iteration=1)
    fit_q_critic(critic, policy, obs, act, rew, obs, term, 0.9, **ok)
    with pytest.raises(ValueError, match="actions"):
        fit_q_critic(critic, policy, obs, act[:5], rew, obs, term, 0.9, **ok)
    with pytest.raises(ValueError, match="rewards"):
        fit_q_critic(critic, policy, obs, act, rew[:5], obs, term, 0.9, **ok)
    with pytest.raises(ValueError, match="next_observations"):
        fit_q_critic(critic, policy, obs, act, rew, obs[:, :1], term, 0.9, **ok)
    with pytest.raises(ValueError, match="rewards"):
        fit_q_critic(critic, policy, obs, act, rew * np.nan, obs, term, 0.9, **ok)
    with pytest.raises(TypeError, match="terminated"):
        fit_q_critic(critic, policy, obs, act, rew, obs, rew, 0.9, **ok)
    with pytest.raises(ValueError, match="gamma"):
        fit_q_critic(critic, policy, obs, act, rew, obs, term, 1.0, **ok)
    with pytest.raises(TypeError, match="critic"):
        fit_q_critic("q", policy, obs, act, rew, obs, term, 0.9, **ok)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target_policy"):
        fit_q_critic(critic, lambda o: o, obs, act, rew, obs, term, 0.9, **ok)
    with pytest.raises(TypeError, match="n_iterations"):
        fit_q_critic(critic, policy, obs, act, rew, obs, term, 0.9, n_iterations=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="learning_rate"):
        fit_q_critic(critic, policy, obs, act, rew, obs, term, 0.9, learning_rate=0.0, **ok)
