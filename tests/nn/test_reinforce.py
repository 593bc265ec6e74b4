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
    reward_to_go,
    sample_trajectories,
    softmax_policy,
    train_reinforce,
)
from rlnotes.nn.reinforce import reinforce_weights


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
    g = reinforce_gradients(theta, tr, weighting=weighting, gamma=gamma)
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


@pytest.mark.parametrize(
    ("log_probs", "weights", "error", "pattern"),
    [
        (np.zeros(3), torch.zeros(3), TypeError, r"^log_probs must be a torch\.Tensor"),
        (torch.zeros(3), [1.0, 2.0, 3.0], TypeError, r"^weights must be a torch\.Tensor"),
        (torch.zeros(3), torch.zeros(4), ValueError, r"^weights must have the shape of"),
        (torch.zeros(0), torch.zeros(0), ValueError, r"^log_probs must not be empty"),
        (
            torch.zeros(3, dtype=torch.int64),
            torch.zeros(3),
            TypeError,
            r"^log_probs must be a floating-point tensor",
        ),
        (
            torch.zeros(3),
            torch.tensor([0.0, float("nan"), 1.0]),
            ValueError,
            r"^weights must be finite",
        ),
    ],
)
def test_loss_validation(
    log_probs: object, weights: object, error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        reinforce_loss(log_probs, weights)  # type: ignore[arg-type]


def test_weights_against_explicit_sums() -> None:
    # two episodes laid end to end, lengths 4 and 2
    r = np.array([1.0, -2.0, 0.5, 3.0, 2.0, -1.0])
    ends = np.array([False, False, False, True, False, True])
    g = 0.5
    eps = [(0, 4), (4, 6)]
    G = np.zeros(6)
    step = np.zeros(6)
    for lo, hi in eps:
        for t in range(lo, hi):
            G[t] = sum(g ** (k - t) * r[k] for k in range(t, hi))
            step[t] = t - lo
    first = np.array([G[0]] * 4 + [G[4]] * 2)
    np.testing.assert_allclose(reinforce_weights(r, g, "total", ends), first)
    np.testing.assert_allclose(reinforce_weights(r, g, "reward_to_go", ends), g**step * G)
    v = np.array([0.3, -0.1, 0.2, 0.5, 1.0, -2.0])
    np.testing.assert_allclose(
        reinforce_weights(r, g, "reward_to_go_baseline", ends, values=v), g**step * (G - v)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"weighting": "bogus"}, ValueError, r"^weighting must be one of"),
        ({"weighting": 3}, TypeError, r"^weighting must be a string"),
        ({"gamma": True}, TypeError, r"^gamma must be a real number"),
        ({"gamma": 1.5}, ValueError, r"^gamma must lie in \[0, 1\]"),
        ({"rewards": "abc"}, TypeError, r"^rewards must be an array of numbers"),
        ({"rewards": np.ones((3, 1))}, ValueError, r"^rewards must be a 1-d array"),
        ({"ends": np.array([0, 0, 1])}, TypeError, r"^ends must be a bool array"),
        ({"ends": np.array([False, True])}, ValueError, r"^ends must have the shape of rewards"),
        ({"ends": np.array([False, True, False])}, ValueError, r"^ends must be True at the last"),
        ({"weighting": "gae"}, ValueError, r"^values must be given"),
        ({"weighting": "gae", "values": np.zeros(3)}, ValueError, r"^next_values must be given"),
        (
            {"weighting": "reward_to_go_baseline", "values": np.zeros(2)},
            ValueError,
            r"^values must have the shape of rewards",
        ),
        ({"lam": "0.5"}, TypeError, r"^lam must be a real number"),
    ],
)
def test_weights_errors(kwargs: dict[str, object], error: type[Exception], pattern: str) -> None:
    args: dict[str, object] = {
        "rewards": np.ones(3),
        "gamma": 0.9,
        "weighting": "reward_to_go",
        "ends": np.array([False, False, True]),
    }
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        reinforce_weights(
            args.pop("rewards"),
            args.pop("gamma"),  # type: ignore[arg-type]
            args.pop("weighting"),  # type: ignore[arg-type]
            args.pop("ends"),
            **args,  # type: ignore[arg-type]
        )


def test_weights_overflow_is_the_returns_modules_error() -> None:
    # the same rewards raise the same named OverflowError here and in reward_to_go
    r = np.full(3, 1e308)
    ends = np.array([False, False, True])
    with pytest.raises(OverflowError, match=r"^rewards too large in magnitude"):
        reward_to_go(r, 1.0)
    with pytest.raises(OverflowError, match=r"^rewards too large in magnitude"):
        reinforce_weights(r, 1.0, "reward_to_go", ends)


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
    with pytest.raises(ValueError, match=r"^obs must have shape \(\*batch, 4\)"):
        pol(torch.randn(5, 3))
    with pytest.raises(TypeError, match=r"^obs must be a torch\.Tensor"):
        pol(np.zeros(4))
    with pytest.raises(ValueError, match=r"^obs_dim must be an integer >= 1"):
        CategoricalMLPPolicy(0, 2)
    with pytest.raises(ValueError, match=r"^n_actions must be an integer >= 2"):
        CategoricalMLPPolicy(4, 1)
    with pytest.raises(ValueError, match=r"^hidden must be an integer >= 1"):
        CategoricalMLPPolicy(4, 2, hidden=0)
    with pytest.raises(TypeError, match=r"^dtype must be a floating-point torch dtype"):
        CategoricalMLPPolicy(4, 2, dtype=torch.int64)
    pol64 = CategoricalMLPPolicy(4, 2, dtype=torch.float64)
    assert pol64(torch.zeros(4, dtype=torch.float64)).dtype == torch.float64


_OK = dict(n_iterations=1, episodes_per_iteration=1, learning_rate=0.01)


@pytest.mark.parametrize(
    ("override", "error", "pattern"),
    [
        ({"n_iterations": 0}, ValueError, r"^n_iterations must be an integer >= 1"),
        ({"n_iterations": 1.5}, TypeError, r"^n_iterations must be an integer"),
        ({"episodes_per_iteration": 0}, ValueError, r"^episodes_per_iteration must be"),
        ({"learning_rate": 0.0}, ValueError, r"^learning_rate must lie in"),
        ({"learning_rate": float("nan")}, ValueError, r"^learning_rate must be a number"),
        ({"learning_rate": "fast"}, TypeError, r"^learning_rate must be a real number"),
        ({"gamma": 1.5}, ValueError, r"^gamma must lie in"),
        ({"gamma": -0.1}, ValueError, r"^gamma must lie in"),
        ({"gamma": "0.9"}, TypeError, r"^gamma must be a real number"),
        ({"weighting": "gae_typo"}, ValueError, r"^weighting must be one of"),
        ({"weighting": None}, TypeError, r"^weighting must be a string"),
        ({"seed": -1}, ValueError, r"^seed must be an integer >= 0"),
        ({"hidden": 0}, ValueError, r"^hidden must be an integer >= 1"),
        ({"lam": 1.5}, ValueError, r"^lam must lie in"),
        ({"value_learning_rate": 0.0}, ValueError, r"^value_learning_rate must lie in"),
    ],
)
def test_train_validation(
    override: dict[str, object], error: type[Exception], pattern: str
) -> None:
    kwargs = {**_OK, **override}
    with pytest.raises(error, match=pattern):
        train_reinforce("CartPole-v1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env_id", "error", "pattern"),
    [
        ("NoSuchEnv-v0", ValueError, r"^env_id 'NoSuchEnv-v0' cannot be made"),
        ("FrozenLake-v1", ValueError, r"^env_id 'FrozenLake-v1' must have a 1-d Box"),
        ("Pendulum-v1", ValueError, r"^env_id 'Pendulum-v1' must have a Discrete"),
        (3, TypeError, r"^env_id must be a string"),
    ],
)
def test_train_rejects_unsuitable_env(env_id: object, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
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
