"""Tests of rlnotes.pg.score.reinforce_gradients against autograd, enumeration and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes import (
    TabularMDP,
    Trajectories,
    enumerate_trajectories,
    finite_horizon_objective,
    random_mdp,
    reinforce_gradients,
    sample_trajectories,
    softmax_policy,
)


def _autograd_grad(mdp: TabularMDP, theta: np.ndarray, H: int, discount: float) -> np.ndarray:
    t = torch.tensor(theta, requires_grad=True)
    (grad,) = torch.autograd.grad(finite_horizon_objective(mdp, t, H, discount), t)
    return grad.numpy()


def _loop_reference(
    theta: np.ndarray, tr: Trajectories, weighting: str, gamma: float, b: np.ndarray
) -> np.ndarray:
    """g(tau_n) by autograd of sum_i w_i log pi(a_i|s_i), with w_i from a plain loop."""
    H, N = tr.states.shape
    out = np.zeros((N, *theta.shape))
    for n in range(N):
        r = tr.rewards[:, n]
        t = torch.tensor(theta, requires_grad=True)
        logp = torch.log_softmax(t, dim=1)
        total = sum(gamma**k * r[k] for k in range(H))
        obj = torch.zeros((), dtype=torch.float64)
        for i in range(H):
            rtg = sum(gamma ** (k - i) * r[k] for k in range(i, H))
            w = total - gamma**i * b[i, n] if weighting == "total" else gamma**i * (rtg - b[i, n])
            obj = obj + w * logp[tr.states[i, n], tr.actions[i, n]]
        (grad,) = torch.autograd.grad(obj, t)
        out[n] = grad.numpy()
    return out


@pytest.mark.parametrize("weighting", ["total", "reward_to_go"])
@pytest.mark.parametrize("gamma", [1.0, 0.7])
def test_per_trajectory_estimates_match_loop_reference(weighting: str, gamma: float) -> None:
    mdp = random_mdp(3, 2, 0.9, seed=4)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(3, 2))
    tr = sample_trajectories(mdp, softmax_policy(theta), 4, 6, seed=1)
    b = rng.normal(size=(4, 6))
    got = reinforce_gradients(theta, tr, weighting=weighting, discount=gamma, baseline=b)
    ref = _loop_reference(theta, tr, weighting, gamma, b)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # discount=1 is the undiscounted return
    got1 = reinforce_gradients(theta, tr, weighting=weighting, discount=1.0)
    np.testing.assert_allclose(got1, _loop_reference(theta, tr, weighting, 1.0, 0 * b), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    S=st.integers(1, 3),
    A=st.integers(2, 3),
    H=st.integers(1, 4),
    gamma=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 10**6),
)
def test_exact_gradient_both_weightings_equal_autograd(
    S: int, A: int, H: int, gamma: float, seed: int
) -> None:
    mdp = random_mdp(S, A, 0.9, seed=seed)
    theta = np.random.default_rng(seed + 1).normal(size=(S, A))
    tr = enumerate_trajectories(mdp, softmax_policy(theta), H)
    assert tr.prob is not None
    expected = _autograd_grad(mdp, theta, H, gamma)
    for weighting in ("total", "reward_to_go"):
        g = reinforce_gradients(theta, tr, weighting=weighting, discount=gamma)
        assert g.shape == (tr.n_trajectories, S, A)
        exact = (tr.prob[:, None, None] * g).sum(axis=0)
        np.testing.assert_allclose(exact, expected, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    H=st.integers(1, 4),
    gamma=st.sampled_from([0.5, 1.0]),
    weighting=st.sampled_from(["total", "reward_to_go"]),
    seed=st.integers(0, 10**6),
)
def test_state_dependent_baseline_leaves_exact_gradient_unchanged(
    H: int, gamma: float, weighting: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(3, 2, 0.9, seed=seed)
    theta = rng.normal(size=(3, 2))
    tr = enumerate_trajectories(mdp, softmax_policy(theta), H)
    assert tr.prob is not None
    table = rng.normal(scale=5.0, size=(H, 3))  # any b_i(s_i), also time dependent
    b = table[np.arange(H)[:, None], tr.states]
    plain = (
        tr.prob[:, None, None] * reinforce_gradients(theta, tr, weighting=weighting, discount=gamma)
    ).sum(0)
    with_b = (
        tr.prob[:, None, None]
        * reinforce_gradients(theta, tr, weighting=weighting, discount=gamma, baseline=b)
    ).sum(0)
    np.testing.assert_allclose(with_b, plain, atol=1e-9)


def test_action_dependent_baseline_biases_the_gradient() -> None:
    """Negative control: a baseline that depends on a_i is not allowed, and it shows."""
    mdp = random_mdp(3, 2, 0.9, seed=0)
    theta = np.random.default_rng(0).normal(size=(3, 2))
    tr = enumerate_trajectories(mdp, softmax_policy(theta), 3)
    assert tr.prob is not None
    b = 3.0 * tr.actions.astype(float)
    plain = (tr.prob[:, None, None] * reinforce_gradients(theta, tr, discount=1.0)).sum(0)
    g_biased = reinforce_gradients(theta, tr, discount=1.0, baseline=b)
    biased = (tr.prob[:, None, None] * g_biased).sum(0)
    assert np.abs(biased - plain).max() > 1e-2


@pytest.mark.parametrize("weighting", ["total", "reward_to_go"])
def test_monte_carlo_mean_within_4_se_of_exact(weighting: str) -> None:
    mdp = random_mdp(3, 2, 0.8, seed=11)
    theta = np.random.default_rng(11).normal(size=(3, 2))
    H = 4
    expected = _autograd_grad(mdp, theta, H, 0.8)
    tr = sample_trajectories(mdp, softmax_policy(theta), H, 20_000, seed=2024)
    g = reinforce_gradients(theta, tr, weighting=weighting, discount=0.8)
    se = g.std(axis=0, ddof=1) / np.sqrt(g.shape[0])
    z = (g.mean(axis=0) - expected) / se
    assert np.abs(z).max() < 4.5, z


def test_validation_errors() -> None:
    mdp = random_mdp(2, 3, 0.9, seed=0)
    theta = np.zeros((2, 3))
    tr = sample_trajectories(mdp, softmax_policy(theta), 3, 4, seed=0)
    with pytest.raises(ValueError, match="theta"):
        reinforce_gradients(np.zeros(3), tr, discount=1.0)
    with pytest.raises(ValueError, match="theta"):
        reinforce_gradients([[np.nan, 0, 0], [0, 0, 0]], tr, discount=1.0)
    with pytest.raises(ValueError, match="traj"):
        reinforce_gradients(theta, "traj", discount=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="traj.states"):
        reinforce_gradients(
            np.zeros((1, 3)), Trajectories(np.array([[1]]), np.array([[0]]), np.array([[0.0]])),
            discount=1.0,
        )
    with pytest.raises(ValueError, match="traj.actions"):
        reinforce_gradients(
            np.zeros((2, 2)), Trajectories(np.array([[1]]), np.array([[2]]), np.array([[0.0]])),
            discount=1.0,
        )
    with pytest.raises(ValueError, match="weighting"):
        reinforce_gradients(theta, tr, discount=1.0, weighting="gae")
    with pytest.raises(TypeError, match="discount"):
        reinforce_gradients(theta, tr)  # type: ignore[call-arg]  # no silent default
    for bad in (-0.5, 1.01, float("nan")):
        with pytest.raises(ValueError, match="discount"):
            reinforce_gradients(theta, tr, discount=bad)
    with pytest.raises(ValueError, match="baseline"):
        reinforce_gradients(theta, tr, discount=1.0, baseline=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="baseline"):
        reinforce_gradients(theta, tr, discount=1.0, baseline=np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="baseline"):
        reinforce_gradients(theta, tr, discount=1.0, baseline=np.zeros(3))
