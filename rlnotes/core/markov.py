r"""Markov-chain tools: the chain a policy induces on a tabular MDP, and its stationary law.

A stationary policy ``pi[s, a]`` turns a :class:`~rlnotes.core.mdp.TabularMDP` into a Markov
chain :math:`P_\pi[s, s'] = \sum_a \pi(a|s) P(s'|s, a)` with expected rewards
:math:`r_\pi[s] = \sum_a \pi(a|s) R(s, a)` (Puterman 1994, sec. 6.1). Every layer above
(dynamic programming, TD, occupancy measures) builds on these.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlnotes.core.mdp import TabularMDP, check_mdp
from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_distribution,
    check_finite,
    check_shape,
)

__all__ = [
    "deterministic_policy_model",
    "policy_chain",
    "policy_model",
    "stationary_distribution",
]

IntArray = NDArray[np.int64]


def policy_model(mdp: TabularMDP, pi: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""The Markov chain of a (validated) policy: :math:`P_\pi[s, s']` and :math:`r_\pi[s]`.

    Deterministic policies gather rows of ``P``; stochastic ones mix them.
    """
    S = mdp.n_states
    actions = np.argmax(pi, axis=1)
    rows = np.arange(S)
    if np.array_equal(pi[rows, actions], np.ones(S)):
        return deterministic_policy_model(mdp, actions)
    P_pi: FloatArray = np.matmul(pi[:, None, :], mdp.P)[:, 0, :]
    r_pi: FloatArray = np.einsum("sa,sa->s", pi, mdp.R)
    return P_pi, r_pi


def deterministic_policy_model(mdp: TabularMDP, actions: IntArray) -> tuple[FloatArray, FloatArray]:
    r""":math:`P_\pi` and :math:`r_\pi` of the deterministic policy ``s -> actions[s]``."""
    rows = np.arange(mdp.n_states)
    P_pi: FloatArray = mdp.P[rows, actions]
    r_pi: FloatArray = mdp.R[rows, actions]
    return P_pi, r_pi


def policy_chain(mdp: TabularMDP, pi: Any) -> tuple[FloatArray, FloatArray]:
    """The Markov chain and expected reward of a policy.

    :math:`P_\\pi[s, s'] = \\sum_a \\pi(a|s) P(s'|s, a)` and
    :math:`r_\\pi[s] = \\sum_a \\pi(a|s) R(s, a)` (Puterman 1994, sec. 6.1).
    Book: eq-bell-td-expected (the chain whose expectation the TD update takes).

    Parameters
    ----------
    mdp : TabularMDP
        The model.
    pi : array, shape (S, A)
        A stochastic policy ``pi[s, a]``.

    Returns
    -------
    P_pi : array, shape (S, S)
    r_pi : array, shape (S,)
    """
    mdp = check_mdp(mdp)
    return policy_model(mdp, mdp.check_policy(pi))


def stationary_distribution(P_pi: Any) -> FloatArray:
    """The stationary distribution :math:`d^\\top P_\\pi = d^\\top`, :math:`\\sum_s d(s) = 1`.

    Solved as one linear system (the balance equations with one of them replaced by the
    normalisation). The chain must have a unique stationary distribution. Book: thm-bell-tvr
    (the on-policy weighting :math:`D`). Source: Tsitsiklis and Van Roy (1997).

    Parameters
    ----------
    P_pi : array, shape (S, S)
        A row-stochastic matrix.

    Returns
    -------
    d : array, shape (S,)

    Raises
    ------
    ValueError
        If ``P_pi`` is not row-stochastic or its stationary distribution is not unique.
    """
    P = check_finite("P_pi", as_float_array("P_pi", P_pi, ndim=2))
    n = P.shape[0]
    check_shape("P_pi", P, (n, n))
    check_distribution("P_pi", P, axis=1)
    M = P.T - np.eye(n)
    M[-1, :] = 1.0
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    if np.linalg.matrix_rank(M) < n:
        raise ValueError("P_pi has no unique stationary distribution (reducible chain)")
    d = np.linalg.solve(M, rhs)
    d = np.clip(d, 0.0, None)
    return np.asarray(d / d.sum(), dtype=np.float64)
