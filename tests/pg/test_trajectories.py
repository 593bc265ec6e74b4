"""Tests of rlnotes.pg.trajectories: enumeration, sampling, the exact finite-horizon objective."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rlnotes import (
    TabularMDP,
    Trajectories,
    enumerate_trajectories,
    finite_horizon_objective,
    random_mdp,
    sample_trajectories,
    softmax_policy,
)


def _sparse_mdp_and_policy(seed: int) -> tuple[TabularMDP, np.ndarray]:
    """A 3-state, 2-action MDP with zero transitions, a non-uniform mu0 and a policy with a zero."""
    base = random_mdp(3, 2, 0.8, seed=seed, branching=2)
    mdp = TabularMDP(P=base.P, R=base.R, gamma=0.8, mu0=[0.5, 0.0, 0.5])
    pi = np.array([[0.3, 0.7], [1.0, 0.0], [0.6, 0.4]])
    return mdp, pi


def _brute_force(mdp: TabularMDP, pi: np.ndarray, H: int) -> dict[tuple[int, ...], float]:
    """p(tau) of every (s_0, a_0, ..., s_{H-1}, a_{H-1}) by a plain loop over all sequences."""
    out = {}
    S, A = mdp.n_states, mdp.n_actions
    for seq in itertools.product(range(S), range(A), repeat=H):
        s, a = seq[0::2], seq[1::2]
        p = mdp.mu0[s[0]]
        for i in range(H):
            p *= pi[s[i], a[i]]
            if i + 1 < H:
                p *= mdp.P[s[i], a[i], s[i + 1]]
        if p > 0:
            out[tuple(seq)] = float(p)
    return out


@pytest.mark.parametrize("H", [1, 2, 3])
def test_enumeration_equals_brute_force(H: int) -> None:
    mdp, pi = _sparse_mdp_and_policy(seed=3)
    tr = enumerate_trajectories(mdp, pi, H)
    assert tr.prob is not None
    got = {}
    for n in range(tr.n_trajectories):
        key = tuple(
            int(x) for pair in zip(tr.states[:, n], tr.actions[:, n], strict=True) for x in pair
        )
        assert key not in got, "a trajectory is listed twice"
        got[key] = float(tr.prob[n])
    expected = _brute_force(mdp, pi, H)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-12)
    np.testing.assert_allclose(tr.rewards, mdp.R[tr.states, tr.actions])
    assert tr.prob.sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(S=st.integers(1, 3), A=st.integers(1, 3), H=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_enumeration_marginals_match_forward_recursion(S: int, A: int, H: int, seed: int) -> None:
    mdp = random_mdp(S, A, 0.9, seed=seed)
    pi = softmax_policy(np.random.default_rng(seed).normal(size=(S, A)))
    tr = enumerate_trajectories(mdp, pi, H)
    assert tr.prob is not None
    assert tr.prob.sum() == pytest.approx(1.0, abs=1e-12)
    d = mdp.mu0.copy()
    for t in range(H):
        joint = d[:, None] * pi  # Pr(s_t = s, a_t = a)
        emp = np.zeros((S, A))
        np.add.at(emp, (tr.states[t], tr.actions[t]), tr.prob)
        np.testing.assert_allclose(emp, joint, atol=1e-12)
        d = np.einsum("sa,sap->p", joint, mdp.P)


def test_enumeration_cap() -> None:
    mdp = random_mdp(3, 3, 0.9, seed=0)
    pi = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="max_trajectories"):
        enumerate_trajectories(mdp, pi, 4, max_trajectories=100)
    tr = enumerate_trajectories(mdp, pi, 2, max_trajectories=81)
    assert tr.n_trajectories == 81


def test_sampled_frequencies_match_enumeration() -> None:
    mdp, pi = _sparse_mdp_and_policy(seed=5)
    H = 3
    exact = enumerate_trajectories(mdp, pi, H)
    assert exact.prob is not None
    index = {
        (tuple(exact.states[:, n]), tuple(exact.actions[:, n])): n
        for n in range(exact.n_trajectories)
    }
    N = 40_000
    tr = sample_trajectories(mdp, pi, H, N, seed=123)
    assert tr.prob is None
    counts = np.zeros(exact.n_trajectories)
    for n in range(N):
        key = (tuple(tr.states[:, n]), tuple(tr.actions[:, n]))
        assert key in index, "a sampled trajectory has probability zero"
        counts[index[key]] += 1
    expected = N * exact.prob
    chi2 = stats.chisquare(counts, expected)
    assert chi2.pvalue > 1e-3, chi2
    z = (counts - expected) / np.sqrt(expected * (1 - exact.prob))
    assert np.abs(z).max() < 4.5
    np.testing.assert_allclose(tr.rewards, mdp.R[tr.states, tr.actions])


def test_sampling_is_seeded() -> None:
    mdp = random_mdp(4, 3, 0.9, seed=1)
    pi = softmax_policy(np.zeros((4, 3)))
    a = sample_trajectories(mdp, pi, 5, 50, seed=7)
    b = sample_trajectories(mdp, pi, 5, 50, seed=7)
    c = sample_trajectories(mdp, pi, 5, 50, seed=8)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.states, c.states) or not np.array_equal(a.actions, c.actions)
    g = sample_trajectories(mdp, pi, 5, 50, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a.states, g.states)


@settings(max_examples=25, deadline=None)
@given(
    S=st.integers(1, 3),
    A=st.integers(1, 3),
    H=st.integers(1, 4),
    discount=st.sampled_from([None, 0.0, 0.5, 1.0]),
    seed=st.integers(0, 10**6),
)
def test_objective_equals_enumeration(
    S: int, A: int, H: int, discount: float | None, seed: int
) -> None:
    mdp = random_mdp(S, A, 0.7, seed=seed)
    theta = np.random.default_rng(seed).normal(size=(S, A))
    tr = enumerate_trajectories(mdp, softmax_policy(theta), H)
    assert tr.prob is not None
    g = mdp.gamma if discount is None else discount
    returns = (tr.rewards * g ** np.arange(H)[:, None]).sum(axis=0)
    expected = float(tr.prob @ returns)
    got = finite_horizon_objective(mdp, theta, H, discount)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)
    got_t = finite_horizon_objective(mdp, torch.tensor(theta), H, discount)
    assert isinstance(got_t, torch.Tensor) and got_t.ndim == 0
    assert float(got_t) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_objective_torch_is_differentiable() -> None:
    mdp = random_mdp(3, 2, 0.9, seed=2)
    theta = torch.zeros((3, 2), dtype=torch.float64, requires_grad=True)
    J = finite_horizon_objective(mdp, theta, 3)
    (grad,) = torch.autograd.grad(J, theta)
    # central finite differences of the numpy objective as an independent route
    eps = 1e-6
    fd = np.zeros((3, 2))
    for idx in np.ndindex(3, 2):
        e = np.zeros((3, 2))
        e[idx] = eps
        fd[idx] = (finite_horizon_objective(mdp, e, 3) - finite_horizon_objective(mdp, -e, 3)) / (
            2 * eps
        )
    np.testing.assert_allclose(grad.numpy(), fd, atol=1e-8)


def test_validation_errors() -> None:
    mdp = random_mdp(2, 2, 0.9, seed=0)
    pi = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match="mdp"):
        enumerate_trajectories("mdp", pi, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pi"):
        enumerate_trajectories(mdp, np.full((2, 3), 1 / 3), 2)
    with pytest.raises(ValueError, match="pi"):
        enumerate_trajectories(mdp, [[0.5, 0.6], [0.5, 0.5]], 2)
    with pytest.raises(ValueError, match="pi"):
        enumerate_trajectories(mdp, [[np.nan, 0.5], [0.5, 0.5]], 2)
    for bad_h in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="horizon"):
            enumerate_trajectories(mdp, pi, bad_h)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="horizon"):
            sample_trajectories(mdp, pi, bad_h, 3, 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="horizon"):
            finite_horizon_objective(mdp, np.zeros((2, 2)), bad_h)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_trajectories"):
        enumerate_trajectories(mdp, pi, 2, max_trajectories=0)
    with pytest.raises(ValueError, match="mdp"):
        sample_trajectories(None, pi, 2, 3, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pi"):
        sample_trajectories(mdp, [[1.0, 0.5], [0.5, 0.5]], 2, 3, 0)
    with pytest.raises(ValueError, match="n_episodes"):
        sample_trajectories(mdp, pi, 2, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        sample_trajectories(mdp, pi, 2, 3, -1)
    with pytest.raises(ValueError, match="seed"):
        sample_trajectories(mdp, pi, 2, 3, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mdp"):
        finite_horizon_objective(object(), np.zeros((2, 2)), 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="theta"):
        finite_horizon_objective(mdp, np.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match="theta"):
        finite_horizon_objective(mdp, [[np.nan, 0], [0, 0]], 2)
    with pytest.raises(ValueError, match="theta"):
        finite_horizon_objective(mdp, torch.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match="theta"):
        finite_horizon_objective(mdp, torch.zeros((2, 2), dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="theta"):
        finite_horizon_objective(mdp, torch.full((2, 2), float("nan")), 2)
    for bad_d in (-0.1, 1.5, float("nan"), "x"):
        with pytest.raises(ValueError, match="discount"):
            finite_horizon_objective(mdp, np.zeros((2, 2)), 2, bad_d)  # type: ignore[arg-type]


def test_trajectories_validation() -> None:
    s = np.zeros((2, 3), dtype=np.int64)
    r = np.zeros((2, 3))
    Trajectories(s, s, r, np.full(3, 1 / 3))  # valid
    with pytest.raises(ValueError, match="states"):
        Trajectories(s.astype(float), s, r)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="states"):
        Trajectories(s[0], s[0], r[0])
    with pytest.raises(ValueError, match="states"):
        Trajectories(s - 1, s, r)
    with pytest.raises(ValueError, match="states"):
        Trajectories(np.zeros((0, 3), dtype=np.int64), np.zeros((0, 3), dtype=np.int64), r[:0])
    with pytest.raises(ValueError, match="actions"):
        Trajectories(s, s[:, :2], r)
    with pytest.raises(ValueError, match="rewards"):
        Trajectories(s, s, r[:, :2])
    with pytest.raises(ValueError, match="rewards"):
        Trajectories(s, s, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="prob"):
        Trajectories(s, s, r, np.full(3, 0.5))
    with pytest.raises(ValueError, match="prob"):
        Trajectories(s, s, r, np.full(2, 0.5))
    tr = Trajectories(s, s, r)
    assert tr.horizon == 2 and tr.n_trajectories == 3
    with pytest.raises(ValueError):
        tr.states[0, 0] = 1  # read-only
