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
    reinforce_gradients,
    sample_trajectories,
    softmax_policy,
)


def _sparse_mdp_and_policy(seed: int) -> tuple[TabularMDP, np.ndarray]:
    """A 3-state, 2-action MDP with zero transitions, a non-uniform mu0 and a policy with a zero."""
    base = random_mdp(3, 2, 0.8, seed=seed, branching=2)
    mdp = TabularMDP(P=base.P, R=base.R, gamma=0.8, mu0=np.array([0.5, 0.0, 0.5]))
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
    with pytest.raises(ValueError, match=r"^max_trajectories=100 is exceeded"):
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
    # the book's union-bound threshold for k cells tested at once
    assert np.abs(z).max() < stats.norm.ppf(1 - 1e-4 / (2 * z.size))
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
    gamma=st.sampled_from([None, 0.0, 0.5, 1.0]),
    seed=st.integers(0, 10**6),
)
def test_objective_equals_enumeration(
    S: int, A: int, H: int, gamma: float | None, seed: int
) -> None:
    mdp = random_mdp(S, A, 0.7, seed=seed)
    theta = np.random.default_rng(seed).normal(size=(S, A))
    tr = enumerate_trajectories(mdp, softmax_policy(theta), H)
    assert tr.prob is not None
    g = mdp.gamma if gamma is None else gamma
    returns = (tr.rewards * g ** np.arange(H)[:, None]).sum(axis=0)
    expected = float(tr.prob @ returns)
    got = finite_horizon_objective(mdp, theta, H, gamma)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)
    got_t = finite_horizon_objective(mdp, torch.tensor(theta), H, gamma)
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


def test_enumeration_at_a_long_horizon() -> None:
    # a deterministic 3-cycle, one action: one trajectory of 4000 steps (back-pointers make
    # this linear in H; the old copy-per-step version took O(H^2))
    P = np.zeros((3, 1, 3))
    P[[0, 1, 2], 0, [1, 2, 0]] = 1.0
    mdp = TabularMDP(
        P=P, R=np.array([[1.0], [2.0], [3.0]]), gamma=0.9, mu0=np.array([1.0, 0.0, 0.0])
    )
    H = 4000
    tr = enumerate_trajectories(mdp, np.ones((3, 1)), H)
    assert tr.prob is not None and tr.n_trajectories == 1
    np.testing.assert_array_equal(tr.states[:, 0], np.arange(H) % 3)
    np.testing.assert_array_equal(tr.rewards[:, 0], np.arange(H) % 3 + 1.0)
    assert tr.prob[0] == 1.0
    # and a branching long run: two actions with equal probability in a 1-state MDP,
    # 2**12 trajectories of horizon 12, each action sequence exactly once
    one = TabularMDP(P=np.ones((1, 2, 1)), R=np.array([[0.0, 1.0]]), gamma=0.9, mu0=np.array([1.0]))
    tr2 = enumerate_trajectories(one, np.full((1, 2), 0.5), 12)
    assert tr2.n_trajectories == 2**12
    codes = (tr2.actions * (2 ** np.arange(12))[:, None]).sum(axis=0)
    np.testing.assert_array_equal(np.sort(codes), np.arange(2**12))


_MDP = random_mdp(2, 2, 0.9, seed=0)
_PI = np.full((2, 2), 0.5)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: enumerate_trajectories("mdp", _PI, 2), TypeError, r"^mdp must be a TabularMDP"),  # type: ignore[arg-type]
        (
            lambda: enumerate_trajectories(_MDP, np.full((2, 3), 1 / 3), 2),
            ValueError,
            r"^pi must have shape \(2, 2\)",
        ),
        (
            lambda: enumerate_trajectories(_MDP, [[0.5, 0.6], [0.5, 0.5]], 2),
            ValueError,
            r"^pi must sum to 1",
        ),
        (
            lambda: enumerate_trajectories(_MDP, [[np.nan, 0.5], [0.5, 0.5]], 2),
            ValueError,
            r"^pi contains NaN",
        ),
        (
            lambda: enumerate_trajectories(_MDP, _PI, 0),
            ValueError,
            r"^horizon must be an integer >= 1",
        ),
        (lambda: enumerate_trajectories(_MDP, _PI, 2.0), TypeError, r"^horizon must be an integer"),  # type: ignore[arg-type]
        (
            lambda: enumerate_trajectories(_MDP, _PI, True),
            TypeError,
            r"^horizon must be an integer",
        ),
        (
            lambda: sample_trajectories(_MDP, _PI, -1, 3, 0),
            ValueError,
            r"^horizon must be an integer >= 1",
        ),
        (
            lambda: finite_horizon_objective(_MDP, np.zeros((2, 2)), 0),
            ValueError,
            r"^horizon must be an integer >= 1",
        ),
        (
            lambda: enumerate_trajectories(_MDP, _PI, 2, max_trajectories=0),
            ValueError,
            r"^max_trajectories must be an integer >= 1",
        ),
        (
            lambda: enumerate_trajectories(_MDP, _PI, 4, max_trajectories=10),
            ValueError,
            r"^max_trajectories=10 is exceeded",
        ),
        (lambda: sample_trajectories(None, _PI, 2, 3, 0), TypeError, r"^mdp must be a TabularMDP"),  # type: ignore[arg-type]
        (
            lambda: sample_trajectories(_MDP, [[1.0, 0.5], [0.5, 0.5]], 2, 3, 0),
            ValueError,
            r"^pi must sum to 1",
        ),
        (
            lambda: sample_trajectories(_MDP, _PI, 2, 0, 0),
            ValueError,
            r"^n_episodes must be an integer >= 1",
        ),
        (
            lambda: sample_trajectories(_MDP, _PI, 2, 3, -1),
            ValueError,
            r"^seed must be an integer in \[0, 2\*\*63\)",
        ),
        (
            lambda: sample_trajectories(_MDP, _PI, 2, 3, 2**64),
            ValueError,
            r"^seed must be an integer in \[0, 2\*\*63\)",
        ),
        (lambda: sample_trajectories(_MDP, _PI, 2, 3, 1.5), TypeError, r"^seed must be an integer"),  # type: ignore[arg-type]
        (
            lambda: sample_trajectories(_MDP, _PI, 2, 3, True),
            TypeError,
            r"^seed must be an integer",
        ),
        (
            lambda: finite_horizon_objective(object(), np.zeros((2, 2)), 2),  # type: ignore[arg-type]
            TypeError,
            r"^mdp must be a TabularMDP",
        ),
        (
            lambda: finite_horizon_objective(_MDP, np.zeros((3, 2)), 2),
            ValueError,
            r"^theta must have shape \(2, 2\)",
        ),
        (
            lambda: finite_horizon_objective(_MDP, [[np.nan, 0], [0, 0]], 2),
            ValueError,
            r"^theta contains NaN",
        ),
        (
            lambda: finite_horizon_objective(_MDP, torch.zeros((3, 2)), 2),
            ValueError,
            r"^theta must have shape \(2, 2\)",
        ),
        (
            lambda: finite_horizon_objective(_MDP, torch.zeros((2, 2), dtype=torch.int64), 2),
            TypeError,
            r"^theta must be a floating-point tensor",
        ),
        (
            lambda: finite_horizon_objective(_MDP, torch.full((2, 2), float("nan")), 2),
            ValueError,
            r"^theta must be finite",
        ),
        (
            lambda: finite_horizon_objective(_MDP, np.zeros((2, 2)), 2, -0.1),
            ValueError,
            r"^gamma must lie in \[0, 1\]",
        ),
        (
            lambda: finite_horizon_objective(_MDP, np.zeros((2, 2)), 2, 1.5),
            ValueError,
            r"^gamma must lie in \[0, 1\]",
        ),
        (
            lambda: finite_horizon_objective(_MDP, np.zeros((2, 2)), 2, float("nan")),
            ValueError,
            r"^gamma must be a number",
        ),
        (
            lambda: finite_horizon_objective(_MDP, np.zeros((2, 2)), 2, "x"),  # type: ignore[arg-type]
            TypeError,
            r"^gamma must be a real number",
        ),
    ],
)
def test_validation_errors(call: object, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        call()  # type: ignore[operator]


_S = np.zeros((2, 3), dtype=np.int64)
_R = np.zeros((2, 3))


@pytest.mark.parametrize(
    ("args", "error", "pattern"),
    [
        ((_S.astype(float), _S, _R), TypeError, r"^states must be an integer array"),
        ((_S, _S.astype(bool), _R), TypeError, r"^actions must be an integer array"),
        ((_S[0], _S[0], _R[0]), ValueError, r"^states must have shape \(H, N\)"),
        ((_S - 1, _S, _R), ValueError, r"^states must lie in \[0, 2\*\*63\)"),
        (
            (np.full((2, 3), 2**63, dtype=np.uint64), _S, _R),
            ValueError,
            r"^states must lie in \[0, 2\*\*63\), got values in \[9223372036854775808",
        ),
        (
            (np.zeros((0, 3), dtype=np.int64), np.zeros((0, 3), dtype=np.int64), _R[:0]),
            ValueError,
            r"^states must have H >= 1 and N >= 1",
        ),
        ((_S, _S[:, :2], _R), ValueError, r"^actions must have shape \(2, 3\)"),
        ((_S, _S, _R[:, :2]), ValueError, r"^rewards must have shape \(2, 3\)"),
        ((_S, _S, np.full((2, 3), np.nan)), ValueError, r"^rewards contains NaN"),
        ((_S, _S, np.full((2, 3), 1j)), TypeError, r"^rewards must hold real numbers"),
        ((_S, _S, _R, np.full(3, 0.5)), ValueError, r"^prob must sum to 1"),
        ((_S, _S, _R, np.full(2, 0.5)), ValueError, r"^prob must have shape \(3,\)"),
    ],
)
def test_trajectories_validation(
    args: tuple[object, ...], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        Trajectories(*args)  # type: ignore[arg-type]


def test_trajectories_uint64_below_the_limit_is_kept_exactly() -> None:
    big = np.full((1, 1), 2**63 - 1, dtype=np.uint64)
    # uint64 is accepted at run time although the field is annotated int64
    tr = Trajectories(big, np.zeros((1, 1), dtype=np.uint64), np.zeros((1, 1)))  # type: ignore[arg-type]
    assert int(tr.states[0, 0]) == 2**63 - 1 and tr.states.dtype == np.int64
    # reinforce_gradients names the out-of-range state instead of wrapping it
    with pytest.raises(ValueError, match=r"^traj\.states must lie in \[0, 2\)"):
        reinforce_gradients(np.zeros((2, 1)), tr, gamma=1.0)


def test_trajectories_is_immutable() -> None:
    tr = Trajectories(_S, _S, _R, np.full(3, 1 / 3))
    assert tr.horizon == 2 and tr.n_trajectories == 3
    with pytest.raises(ValueError, match=r"^assignment destination is read-only"):
        tr.states[0, 0] = 1
    with pytest.raises(AttributeError, match=r"^cannot assign to field 'states'"):
        tr.states = _S  # type: ignore[misc]


def test_sparse_models_give_the_dense_answers() -> None:
    """The tabular policy-gradient tools accept sparse models (from_gymnasium builds them)."""
    import rlnotes

    dense = rlnotes.random_mdp(5, 2, 0.9, seed=0)
    sparse = dense.to_sparse()
    theta = np.random.default_rng(1).normal(size=(5, 2))
    for horizon in (1, 3):
        assert rlnotes.finite_horizon_objective(sparse, theta, horizon) == pytest.approx(
            rlnotes.finite_horizon_objective(dense, theta, horizon), rel=1e-12
        )
    pi = rlnotes.softmax_policy(theta)
    a = rlnotes.enumerate_trajectories(sparse, pi, 2)
    b = rlnotes.enumerate_trajectories(dense, pi, 2)
    assert a.prob is not None and b.prob is not None
    np.testing.assert_allclose(a.prob, b.prob, rtol=1e-12)
    np.testing.assert_allclose(
        rlnotes.finite_horizon_values(sparse, pi, 3)[0],
        rlnotes.finite_horizon_values(dense, pi, 3)[0],
        rtol=1e-12,
    )
