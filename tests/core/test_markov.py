"""Tests of rlnotes.core.markov: policy chains (dense and sparse) and stationary distributions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as scipy_sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes.core.markov import (
    GTH_MAX_STATES,
    gth_solve,
    policy_chain,
    policy_model,
    stationary_distribution,
)
from rlnotes.core.mdp import TabularMDP, random_mdp, slip_chain


def _linear_solve(P: np.ndarray) -> np.ndarray:
    """The balance equations with one replaced by the normalization, solved by LU."""
    n = P.shape[0]
    M = P.T - np.eye(n)
    M[-1, :] = 1.0
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    return np.linalg.solve(M, rhs)


def _birth_death(n: int, up: float, down: float) -> tuple[np.ndarray, np.ndarray]:
    """A birth-death chain and its stationary law by detailed balance, d(i+1)/d(i) = up/down."""
    P = np.zeros((n, n))
    for i in range(n):
        if i + 1 < n:
            P[i, i + 1] = up
        if i > 0:
            P[i, i - 1] = down
        P[i, i] = 1.0 - P[i].sum()
    log_d = np.arange(n) * np.log(up / down)
    d = np.exp(log_d - log_d.max())
    return P, d / d.sum()


# -- policy chains ----------------------------------------------------------------------------


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("branching", [None, 2])
def test_policy_model_dense_and_sparse_agree(deterministic: bool, branching: int | None) -> None:
    dense = random_mdp(9, 3, 0.9, seed=4, branching=branching)
    sparse = random_mdp(9, 3, 0.9, seed=4, branching=branching, sparse=True)
    rng = np.random.default_rng(5)
    pi = np.eye(3)[rng.integers(0, 3, 9)] if deterministic else rng.dirichlet(np.ones(3), 9)
    P_d, r_d = policy_model(dense, dense.check_policy(pi))
    P_s, r_s = policy_model(sparse, sparse.check_policy(pi))
    assert isinstance(P_d, np.ndarray) and scipy_sparse.issparse(P_s)
    assert P_s.shape == (9, 9)
    np.testing.assert_allclose(P_s.toarray(), P_d, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r_s, r_d, rtol=0, atol=1e-15)
    loops = np.einsum("sa,sat->st", pi, dense.P)
    np.testing.assert_allclose(P_d, loops, rtol=0, atol=1e-15)


def test_policy_chain_validates_on_sparse_models() -> None:
    mdp = slip_chain(6, 0.9)
    P_pi, r_pi = policy_chain(mdp, np.full((6, 2), 0.5))
    np.testing.assert_allclose(P_pi.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(r_pi, [0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="^pi must sum to 1"):
        policy_chain(mdp, np.full((6, 2), 0.4))
    with pytest.raises(TypeError, match="^mdp must be a TabularMDP"):
        policy_chain(mdp.P, np.full((6, 2), 0.5))


# -- stationary distributions -------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30))
def test_gth_matches_a_linear_solve(seed: int, n: int) -> None:
    P = np.random.default_rng(seed).dirichlet(np.ones(n), size=n)
    d = stationary_distribution(P)
    np.testing.assert_allclose(d, _linear_solve(P), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(d @ P, d, rtol=0, atol=1e-14)
    assert d.min() >= 0.0 and abs(d.sum() - 1.0) < 1e-14


def test_gth_is_accurate_where_a_linear_solve_is_not() -> None:
    """Stationary probabilities spanning 200 orders of magnitude: GTH (subtraction-free) gets
    each to a few ulp of its own size; the linear solve only to ~1e-16 absolutely."""
    P, d_exact = _birth_death(60, up=1e-4, down=0.5)
    d = gth_solve(P)
    rel = np.abs(d - d_exact) / d_exact
    assert d_exact.min() < 1e-200 and rel.max() < 1e-12
    rel_lu = np.abs(_linear_solve(P) - d_exact) / d_exact
    assert rel_lu.max() > 1e-3  # the linear solve has no relative accuracy in the tail
    np.testing.assert_allclose(stationary_distribution(P), d, rtol=1e-15, atol=0)


def test_transient_states_get_zero_mass() -> None:
    # states 0 and 1 are transient, {2, 3} is the one closed class
    P = np.array(
        [[0.5, 0.5, 0.0, 0.0], [0.2, 0.3, 0.5, 0.0], [0.0, 0.0, 0.1, 0.9], [0.0, 0.0, 0.6, 0.4]]
    )
    d = stationary_distribution(P)
    np.testing.assert_array_equal(d[:2], [0.0, 0.0])
    np.testing.assert_allclose(d[2:], [0.4, 0.6], rtol=1e-14)
    np.testing.assert_allclose(stationary_distribution(scipy_sparse.csr_array(P)), d, rtol=1e-14)


@pytest.mark.parametrize(
    ("P", "k"),
    [(np.eye(3), 3), (np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]]), 2)],
)
def test_several_closed_classes_are_rejected(P: np.ndarray, k: int) -> None:
    with pytest.raises(ValueError, match=f"^P_pi has {k} closed classes"):
        stationary_distribution(P)
    with pytest.raises(ValueError, match=f"^P_pi has {k} closed classes"):
        stationary_distribution(scipy_sparse.csr_array(P))


@pytest.mark.parametrize("n", [50, GTH_MAX_STATES + 500])
def test_sparse_chains(n: int) -> None:
    """Small sparse chains go through GTH, large ones through a sparse LU; both match the
    closed form of a birth-death chain."""
    P, d_exact = _birth_death(n, up=0.3, down=0.35)
    d = stationary_distribution(scipy_sparse.csr_array(P))
    if n < GTH_MAX_STATES:  # GTH: accurate relative to each entry
        np.testing.assert_allclose(d, d_exact, rtol=1e-12, atol=0)
        np.testing.assert_allclose(stationary_distribution(P), d_exact, rtol=1e-12, atol=0)
    else:  # sparse LU: accurate in norm
        np.testing.assert_allclose(d, d_exact, rtol=1e-8, atol=1e-15)
        assert d.min() >= 0.0 and abs(d.sum() - 1.0) < 1e-14


def test_stationary_distribution_of_a_policy_on_a_sparse_model() -> None:
    mdp = random_mdp(40, 2, 0.9, seed=3, branching=3, sparse=True)
    pi = np.full((40, 2), 0.5)
    P_pi, _ = policy_chain(mdp, pi)
    P_dense, _ = policy_chain(mdp.to_dense(), pi)
    d = stationary_distribution(P_pi)
    np.testing.assert_allclose(d, stationary_distribution(P_dense), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(P_pi.T @ d, d, rtol=0, atol=1e-14)


def test_stationary_distribution_renormalizes_and_validates() -> None:
    P = np.array([[0.5, 0.5 + 5e-9], [0.3, 0.7]])
    d = stationary_distribution(P)
    assert abs(d.sum() - 1.0) < 1e-15
    with pytest.raises(ValueError, match="^P_pi must sum to 1"):
        stationary_distribution(np.array([[0.5, 0.6], [0.3, 0.7]]))
    with pytest.raises(ValueError, match="^P_pi must be non-negative"):
        stationary_distribution(np.array([[1.5, -0.5], [0.3, 0.7]]))
    with pytest.raises(ValueError, match="^P_pi must be a non-empty square matrix"):
        stationary_distribution(np.zeros((0, 0)))
    with pytest.raises(ValueError, match="^P_pi must be a non-empty square matrix"):
        stationary_distribution(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="^P_pi must be a 2-d array"):
        stationary_distribution(np.ones(3))
    with pytest.raises(TypeError, match="^P_pi must hold real numbers"):
        stationary_distribution(np.eye(2, dtype=complex))
    with pytest.raises(TypeError, match="^P_pi must hold real numbers"):
        stationary_distribution(scipy_sparse.csr_array(np.eye(2, dtype=complex)))
    with pytest.raises(ValueError, match="^P_pi must be a non-empty square matrix"):
        stationary_distribution(scipy_sparse.csr_array((0, 0)))
    with pytest.raises(ValueError, match="^P_pi must have rows that sum to 1"):
        stationary_distribution(scipy_sparse.csr_array(np.full((2, 2), 0.6)))
    with pytest.raises(ValueError, match="^P_pi contains NaN"):
        stationary_distribution(np.array([[np.nan, 1.0], [0.3, 0.7]]))


def test_one_state() -> None:
    np.testing.assert_array_equal(stationary_distribution(np.ones((1, 1))), [1.0])
    mdp = TabularMDP(P=np.ones((1, 1, 1)), R=np.zeros((1, 1)), gamma=0.5)
    np.testing.assert_array_equal(stationary_distribution(policy_chain(mdp, [[1.0]])[0]), [1.0])
