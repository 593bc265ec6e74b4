"""Tests of rlnotes.pg.policies: the tabular softmax policy and its score."""

from __future__ import annotations

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
    score = softmax_score(theta, states, actions)
    assert score.shape == (2, 3, s, a)
    for idx in np.ndindex(states.shape):
        t = torch.tensor(theta, requires_grad=True)
        logp = torch.log_softmax(t, dim=1)[states[idx], actions[idx]]
        (grad,) = torch.autograd.grad(logp, t)
        np.testing.assert_allclose(score[idx], grad.numpy(), atol=1e-12)


def test_softmax_score_scalar_pair() -> None:
    theta = np.zeros((2, 2))
    out = softmax_score(theta, np.int64(1), np.int64(0))
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.5, -0.5]])


@pytest.mark.parametrize(
    "theta",
    [np.zeros(3), np.zeros((0, 2)), np.zeros((2, 0)), [[np.nan, 0.0]], [[np.inf, 0.0]], "abc"],
)
def test_softmax_policy_rejects_bad_theta(theta: object) -> None:
    with pytest.raises(ValueError, match="theta"):
        softmax_policy(theta)


def test_softmax_score_validation() -> None:
    theta = np.zeros((2, 3))
    with pytest.raises(ValueError, match="theta"):
        softmax_score(np.zeros(3), [0], [0])
    with pytest.raises(ValueError, match="states"):
        softmax_score(theta, [2], [0])
    with pytest.raises(ValueError, match="states"):
        softmax_score(theta, [-1], [0])
    with pytest.raises(ValueError, match="states"):
        softmax_score(theta, [0.0], [0])
    with pytest.raises(ValueError, match="actions"):
        softmax_score(theta, [0], [3])
    with pytest.raises(ValueError, match="actions"):
        softmax_score(theta, [0], [True])
    with pytest.raises(ValueError, match="actions"):
        softmax_score(theta, [0, 1], [0])
