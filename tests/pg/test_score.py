"""Tests of rlnotes.pg.score.reinforce_gradients against autograd, enumeration and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from rlnotes import (
    TabularMDP,
    Trajectories,
    enumerate_trajectories,
    finite_horizon_objective,
    random_mdp,
    reinforce_gradients,
    reward_to_go,
    sample_trajectories,
    softmax_policy,
)


def _autograd_grad(mdp: TabularMDP, theta: np.ndarray, H: int, gamma: float) -> np.ndarray:
    t = torch.tensor(theta, requires_grad=True)
    (grad,) = torch.autograd.grad(finite_horizon_objective(mdp, t, H, gamma), t)
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
    got = reinforce_gradients(theta, tr, weighting=weighting, gamma=gamma, baseline=b)
    ref = _loop_reference(theta, tr, weighting, gamma, b)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # gamma=1 is the undiscounted return
    got1 = reinforce_gradients(theta, tr, weighting=weighting, gamma=1.0)
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
        g = reinforce_gradients(theta, tr, weighting=weighting, gamma=gamma)
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
        tr.prob[:, None, None] * reinforce_gradients(theta, tr, weighting=weighting, gamma=gamma)
    ).sum(0)
    with_b = (
        tr.prob[:, None, None]
        * reinforce_gradients(theta, tr, weighting=weighting, gamma=gamma, baseline=b)
    ).sum(0)
    np.testing.assert_allclose(with_b, plain, atol=1e-9)


def test_action_dependent_baseline_biases_the_gradient() -> None:
    """Negative control: a baseline that depends on a_i is not allowed, and it shows."""
    mdp = random_mdp(3, 2, 0.9, seed=0)
    theta = np.random.default_rng(0).normal(size=(3, 2))
    tr = enumerate_trajectories(mdp, softmax_policy(theta), 3)
    assert tr.prob is not None
    b = 3.0 * tr.actions.astype(float)
    plain = (tr.prob[:, None, None] * reinforce_gradients(theta, tr, gamma=1.0)).sum(0)
    g_biased = reinforce_gradients(theta, tr, gamma=1.0, baseline=b)
    biased = (tr.prob[:, None, None] * g_biased).sum(0)
    assert np.abs(biased - plain).max() > 1e-2


@pytest.mark.parametrize("weighting", ["total", "reward_to_go"])
def test_monte_carlo_mean_within_the_union_bound_of_exact(weighting: str) -> None:
    mdp = random_mdp(3, 2, 0.8, seed=11)
    theta = np.random.default_rng(11).normal(size=(3, 2))
    H = 4
    expected = _autograd_grad(mdp, theta, H, 0.8)
    tr = sample_trajectories(mdp, softmax_policy(theta), H, 20_000, seed=2024)
    g = reinforce_gradients(theta, tr, weighting=weighting, gamma=0.8)
    se = g.std(axis=0, ddof=1) / np.sqrt(g.shape[0])
    z = (g.mean(axis=0) - expected) / se
    # the book's threshold for k = 6 coordinates at once: Phi^-1(1 - 1e-4 / (2 k))
    assert np.abs(z).max() < norm.ppf(1 - 1e-4 / (2 * z.size)), z


def _tr() -> tuple[np.ndarray, Trajectories]:
    mdp = random_mdp(2, 3, 0.9, seed=0)
    theta = np.zeros((2, 3))
    return theta, sample_trajectories(mdp, softmax_policy(theta), 3, 4, seed=0)


_T1 = Trajectories(np.array([[1]]), np.array([[0]]), np.array([[0.0]]))
_T2 = Trajectories(np.array([[1]]), np.array([[2]]), np.array([[0.0]]))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        ((np.zeros(3), None), {}, ValueError, r"^theta must be a 2-d array"),
        (([[np.nan, 0, 0], [0, 0, 0]], None), {}, ValueError, r"^theta contains NaN"),
        ((None, "traj"), {}, TypeError, r"^traj must be a Trajectories"),
        ((np.zeros((1, 3)), _T1), {}, ValueError, r"^traj\.states must lie in \[0, 1\)"),
        ((np.zeros((2, 2)), _T2), {}, ValueError, r"^traj\.actions must lie in \[0, 2\)"),
        ((None, None), {"weighting": "gae"}, ValueError, r"^weighting must be one of"),
        ((None, None), {"weighting": 1}, TypeError, r"^weighting must be a string"),
        ((None, None), {"gamma": -0.5}, ValueError, r"^gamma must lie in \[0, 1\]"),
        ((None, None), {"gamma": 1.01}, ValueError, r"^gamma must lie in \[0, 1\]"),
        ((None, None), {"gamma": float("nan")}, ValueError, r"^gamma must be a number"),
        ((None, None), {"gamma": True}, TypeError, r"^gamma must be a real number"),
        ((None, None), {"gamma": "0.9"}, TypeError, r"^gamma must be a real number"),
        ((None, None), {"baseline": np.zeros((3, 5))}, ValueError, r"^baseline must have shape"),
        ((None, None), {"baseline": np.full((3, 4), np.nan)}, ValueError, r"^baseline contains"),
        ((None, None), {"baseline": np.zeros(3)}, ValueError, r"^baseline must have shape"),
        ((None, None), {"baseline": "b"}, TypeError, r"^baseline must be an array of numbers"),
    ],
)
def test_validation_errors(
    args: tuple[object, object], kwargs: dict[str, object], error: type[Exception], pattern: str
) -> None:
    theta, tr = _tr()
    th = theta if args[0] is None else args[0]
    traj = tr if args[1] is None else args[1]
    kw: dict[str, object] = {"gamma": 1.0, **kwargs}
    with pytest.raises(error, match=pattern):
        reinforce_gradients(th, traj, **kw)  # type: ignore[arg-type]


def test_gamma_is_required() -> None:
    theta, tr = _tr()
    with pytest.raises(TypeError, match=r"missing 1 required keyword-only argument: 'gamma'"):
        reinforce_gradients(theta, tr)  # type: ignore[call-arg]  # no silent default


def test_overflow_is_the_returns_modules_named_error() -> None:
    # the same rewards give the same OverflowError here as in rlnotes.reward_to_go
    theta = np.zeros((1, 2))
    tr = Trajectories(
        np.zeros((3, 1), dtype=np.int64), np.zeros((3, 1), dtype=np.int64), np.full((3, 1), 1e308)
    )
    with pytest.raises(OverflowError, match=r"^rewards too large in magnitude"):
        reward_to_go(tr.rewards, 1.0)
    for w in ("total", "reward_to_go"):
        with pytest.raises(OverflowError, match=r"^rewards too large in magnitude"):
            reinforce_gradients(theta, tr, gamma=1.0, weighting=w)
