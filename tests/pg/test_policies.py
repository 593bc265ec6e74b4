"""Tests of rlnotes.pg.policies: the tabular softmax policy and its score."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes import softmax_policy, softmax_score


def test_softmax_policy_matches_plain_formula_and_torch() -> None:
    theta = np.array([[0.0, 1.0, -2.0], [3.0, 3.0, 3.0]])
    e = np.exp(theta)
    expected = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax_policy(theta), expected, rtol=1e-14)
    torch_pi = torch.softmax(torch.tensor(theta), dim=1).numpy()
    np.testing.assert_allclose(softmax_policy(theta), torch_pi, rtol=1e-14)


def test_softmax_policy_is_stable_for_huge_logits() -> None:
    theta = np.array([[1000.0, 999.0], [-1000.0, -1001.0]])
    pi = softmax_policy(theta)
    assert np.isfinite(pi).all()
    p1 = 1.0 / (1.0 + np.exp(-1.0))
    np.testing.assert_allclose(pi, [[p1, 1 - p1], [p1, 1 - p1]], rtol=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    s=st.integers(1, 4),
    a=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_softmax_score_matches_autograd(s: int, a: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    theta = rng.normal(scale=3.0, size=(s, a))
    states = rng.integers(0, s, size=(2, 3))
    actions = rng.integers(0, a, size=(2, 3))
    score = softmax_score(theta, states, actions, dense=True)
    rows = softmax_score(theta, states, actions)
    assert score.shape == (2, 3, s, a) and rows.shape == (2, 3, a)
    for idx in np.ndindex(states.shape):
        t = torch.tensor(theta, requires_grad=True)
        logp = torch.log_softmax(t, dim=1)[states[idx], actions[idx]]
        (grad,) = torch.autograd.grad(logp, t)
        np.testing.assert_allclose(score[idx], grad.numpy(), atol=1e-12)
        # the compact form is the one non-zero row of the gradient
        np.testing.assert_allclose(rows[idx], grad.numpy()[states[idx]], atol=1e-12)
        other = np.delete(grad.numpy(), states[idx], axis=0)
        assert not other.any()


def test_softmax_score_scalar_pair() -> None:
    theta = np.zeros((2, 2))
    out = softmax_score(theta, np.int64(1), np.int64(0), dense=True)
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.5, -0.5]])
    np.testing.assert_allclose(softmax_score(theta, np.int64(1), np.int64(0)), [0.5, -0.5])


def test_softmax_score_does_not_allocate_a_dense_table() -> None:
    # 10**4 pairs in a 10**5-state table: dense would be 10**4 * 10**5 * 2 * 8 B = 16 GB
    theta = np.zeros((100_000, 2))
    rng = np.random.default_rng(0)
    states = rng.integers(0, 100_000, size=10_000)
    actions = rng.integers(0, 2, size=10_000)
    tracemalloc.start()
    try:
        rows = softmax_score(theta, states, actions)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows.shape == (10_000, 2)
    np.testing.assert_allclose(rows.sum(axis=1), 0.0, atol=1e-15)
    assert peak < 20 * 2**20, f"peak allocation {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("theta", "error", "pattern"),
    [
        (np.zeros(3), ValueError, r"^theta must be a 2-d array"),
        (np.zeros((0, 2)), ValueError, r"^theta must have at least one state"),
        (np.zeros((2, 0)), ValueError, r"^theta must have at least one state"),
        ([[np.nan, 0.0]], ValueError, r"^theta contains NaN"),
        ([[np.inf, 0.0]], ValueError, r"^theta must be finite"),
        ("abc", TypeError, r"^theta must be an array of numbers"),
        ([[1j, 0.0]], TypeError, r"^theta must hold real numbers"),
        ([[True, False]], TypeError, r"^theta must hold real numbers"),
    ],
)
def test_softmax_policy_rejects_bad_theta(
    theta: object, error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        softmax_policy(theta)


def test_softmax_score_validation() -> None:
    theta = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"^theta must be a 2-d array"):
        softmax_score(np.zeros(3), [0], [0])
    with pytest.raises(ValueError, match=r"^states must lie in \[0, 2\)"):
        softmax_score(theta, [2], [0])
    with pytest.raises(ValueError, match=r"^states must lie in \[0, 2\)"):
        softmax_score(theta, [-1], [0])
    with pytest.raises(ValueError, match=r"^states must lie in \[0, 2\)"):
        softmax_score(theta, np.array([2**63], dtype=np.uint64), [0])
    with pytest.raises(TypeError, match=r"^states must be an array of integers"):
        softmax_score(theta, [0.0], [0])
    with pytest.raises(ValueError, match=r"^actions must lie in \[0, 3\)"):
        softmax_score(theta, [0], [3])
    with pytest.raises(TypeError, match=r"^actions must be an array of integers"):
        softmax_score(theta, [0], [True])
    with pytest.raises(ValueError, match=r"^actions must have the shape of states"):
        softmax_score(theta, [0, 1], [0])
    with pytest.raises(TypeError, match=r"^dense must be a bool"):
        softmax_score(theta, [0], [0], dense=1)  # type: ignore[arg-type]
