"""Tests of rlnotes.nn.reinforce: the surrogate loss, the MLP policy and the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlnotes import (
    CategoricalMLPPolicy,
    random_mdp,
    reinforce_gradients,
    reinforce_loss,
    sample_trajectories,
    softmax_policy,
    train_reinforce,
)
from rlnotes.nn.reinforce import _episode_weights


@pytest.mark.parametrize("weighting", ["total", "reward_to_go"])
def test_loss_gradient_is_minus_the_score_function_estimate(weighting: str) -> None:
    mdp = random_mdp(3, 2, 0.9, seed=5)
    theta = np.random.default_rng(5).normal(size=(3, 2))
    H, N, gamma = 4, 50, 0.9
    tr = sample_trajectories(mdp, softmax_policy(theta), H, N, seed=3)
    # per-step weights by a plain loop
    w = np.zeros((H, N))
    for n in range(N):
        for i in range(H):
            rtg = sum(gamma ** (k - i) * tr.rewards[k, n] for k in range(i, H))
            total = sum(gamma**k * tr.rewards[k, n] for k in range(H))
            w[i, n] = total if weighting == "total" else gamma**i * rtg
    t = torch.tensor(theta, requires_grad=True)
    logp = torch.log_softmax(t, dim=1)[torch.tensor(tr.states), torch.tensor(tr.actions)]
    loss = reinforce_loss(logp, torch.as_tensor(w))
    (grad,) = torch.autograd.grad(loss, t)
    g = reinforce_gradients(theta, tr, weighting=weighting, discount=gamma)
    # the loss averages over all H * N steps; the estimate sums over steps, averages over episodes
    np.testing.assert_allclose(grad.numpy(), -g.mean(axis=0) / H, atol=1e-12)


def test_loss_detaches_weights() -> None:
    t = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    logp = torch.log_softmax(t, dim=0)
    weights = t * 10.0  # depends on t, but must be treated as a constant
    (grad,) = torch.autograd.grad(reinforce_loss(logp, weights), t, retain_graph=True)
    (ref,) = torch.autograd.grad(reinforce_loss(logp, weights.detach().clone()), t)
    np.testing.assert_allclose(grad.numpy(), ref.numpy())
    manual = -(weights.detach()[:, None] * (torch.eye(2) - torch.softmax(t, 0)).detach()).mean(0)
    np.testing.assert_allclose(grad.numpy(), manual.numpy(), atol=1e-14)


def test_loss_validation() -> None:
    lp = torch.zeros(3)
    with pytest.raises(ValueError, match="log_probs"):
        reinforce_loss(np.zeros(3), lp)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights"):
        reinforce_loss(lp, [1.0, 2.0, 3.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights"):
        reinforce_loss(lp, torch.zeros(4))
    with pytest.raises(ValueError, match="log_probs"):
        reinforce_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="log_probs"):
        reinforce_loss(torch.zeros(3, dtype=torch.int64), lp)
    with pytest.raises(ValueError, match="weights"):
        reinforce_loss(lp, torch.tensor([0.0, float("nan"), 1.0]))


def test_episode_weights_against_explicit_sums() -> None:
    r = np.array([1.0, -2.0, 0.5, 3.0])
    g = 0.5
    G = [sum(g ** (k - t) * r[k] for k in range(t, 4)) for t in range(4)]
    np.testing.assert_allclose(_episode_weights(r, g, "total"), [G[0]] * 4)
    np.testing.assert_allclose(
        _episode_weights(r, g, "reward_to_go"), [g**t * G[t] for t in range(4)]
    )
    with pytest.raises(ValueError, match="weighting"):
        _episode_weights(r, g, "bogus")


def test_mlp_policy() -> None:
    torch.manual_seed(0)
    pol = CategoricalMLPPolicy(4, 3, hidden=8)
    obs = torch.randn(5, 4)
    dist = pol.distribution(obs)
    assert dist.probs.shape == (5, 3)
    np.testing.assert_allclose(dist.probs.sum(-1).detach().numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        dist.probs.detach().numpy(), torch.softmax(pol(obs), -1).detach().numpy(), rtol=1e-6
    )
    with pytest.raises(ValueError, match="obs"):
        pol(torch.randn(5, 3))
    with pytest.raises(TypeError, match="obs"):
        pol(np.zeros(4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="obs_dim"):
        CategoricalMLPPolicy(0, 2)
    with pytest.raises(ValueError, match="n_actions"):
        CategoricalMLPPolicy(4, 1)
    with pytest.raises(ValueError, match="hidden"):
        CategoricalMLPPolicy(4, 2, hidden=0)
    with pytest.raises(TypeError, match="dtype"):
        CategoricalMLPPolicy(4, 2, dtype=torch.int64)
    pol64 = CategoricalMLPPolicy(4, 2, dtype=torch.float64)
    assert pol64(torch.zeros(4, dtype=torch.float64)).dtype == torch.float64


_OK = dict(n_iterations=1, episodes_per_iteration=1, learning_rate=0.01)


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ({"n_iterations": 0}, "n_iterations"),
        ({"n_iterations": 1.5}, "n_iterations"),
        ({"episodes_per_iteration": 0}, "episodes_per_iteration"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": -0.1}, "gamma"),
        ({"weighting": "gae_typo"}, "weighting"),
        ({"seed": -1}, "seed"),
        ({"hidden": 0}, "hidden"),
    ],
)
def test_train_validation(override: dict[str, object], name: str) -> None:
    kwargs = {**_OK, **override}
    with pytest.raises(ValueError, match=name):
        train_reinforce("CartPole-v1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("env_id", ["NoSuchEnv-v0", "FrozenLake-v1", "Pendulum-v1", 3])
def test_train_rejects_unsuitable_env(env_id: object) -> None:
    with pytest.raises(ValueError, match="env_id"):
        train_reinforce(env_id, **_OK)  # type: ignore[arg-type]


def test_train_smoke_is_seeded_and_pure() -> None:
    state = torch.random.get_rng_state()
    kw = dict(n_iterations=3, episodes_per_iteration=2, learning_rate=0.01, seed=4)
    a = train_reinforce("CartPole-v1", **kw)  # type: ignore[arg-type]
    assert torch.equal(torch.random.get_rng_state(), state), "global torch RNG was touched"
    b = train_reinforce("CartPole-v1", **kw)  # type: ignore[arg-type]
    assert a.shape == (3,)
    assert np.isfinite(a).all() and (a >= 1).all() and (a <= 500).all()
    np.testing.assert_array_equal(a, b)
    old_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:  # a float64 default dtype neither breaks nor changes the run
        d = train_reinforce("CartPole-v1", **kw)  # type: ignore[arg-type]
    finally:
        torch.set_default_dtype(old_default)
    np.testing.assert_array_equal(a, d)
    c = train_reinforce("CartPole-v1", weighting="total", **kw)  # type: ignore[arg-type]
    assert c.shape == (3,)
