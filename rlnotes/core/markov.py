r"""Markov-chain tools: the chain a policy induces on a tabular MDP, and its stationary law.

A stationary policy ``pi[s, a]`` turns a :class:`~rlnotes.core.mdp.TabularMDP` into a Markov
chain :math:`P_\pi[s, s'] = \sum_a \pi(a|s) P(s'|s, a)` with expected rewards
:math:`r_\pi[s] = \sum_a \pi(a|s) R(s, a)` (Puterman 1994, sec. 6.1). Every layer above
(dynamic programming, TD, occupancy measures) builds on these. For a sparse model the chain
:math:`P_\pi` is a sparse ``S x S`` CSR array; for a dense one, a dense array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as scipy_sparse
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from rlnotes.core.mdp import TabularMDP, check_mdp, is_sparse_matrix
from rlnotes.core.validation import (
    PROB_ATOL,
    FloatArray,
    as_array,
    check_distribution,
)

__all__ = [
    "IntArray",
    "deterministic_policy_model",
    "gth_solve",
    "policy_chain",
    "policy_model",
    "stationary_distribution",
]

IntArray = NDArray[np.int64]

#: Sparse chains with more states than this are solved by a sparse LU instead of GTH.
GTH_MAX_STATES = 2000


def policy_model(mdp: TabularMDP, pi: FloatArray) -> tuple[Any, FloatArray]:
    r"""The Markov chain of a (validated) policy: :math:`P_\pi[s, s']` and :math:`r_\pi[s]`.

    Unchecked (``pi`` must come from ``TabularMDP.check_policy``). Deterministic
    policies gather rows of ``P``; stochastic ones mix them. ``P_pi`` is a dense ``(S, S)``
    array for a dense model and a sparse ``S x S`` CSR array for a sparse one.
    """
    S = mdp.n_states
    actions = np.argmax(pi, axis=1)
    rows = np.arange(S)
    if np.array_equal(pi[rows, actions], np.ones(S)):
        return deterministic_policy_model(mdp, actions)
    r_pi: FloatArray = np.einsum("sa,sa->s", pi, mdp.R)
    if mdp.is_sparse:
        A = mdp.n_actions
        mix = scipy_sparse.csr_array(
            (pi.ravel(), (np.repeat(rows, A), np.arange(S * A))), shape=(S, S * A)
        )
        mix.eliminate_zeros()
        return scipy_sparse.csr_array(mix @ mdp.P), r_pi
    P_pi: FloatArray = np.matmul(pi[:, None, :], mdp.P)[:, 0, :]
    return P_pi, r_pi


def deterministic_policy_model(mdp: TabularMDP, actions: IntArray) -> tuple[Any, FloatArray]:
    r""":math:`P_\pi` and :math:`r_\pi` of the deterministic policy ``s -> actions[s]``.

    Unchecked. Dense or sparse like the model, as in ``policy_model``.
    """
    rows = np.arange(mdp.n_states)
    r_pi: FloatArray = mdp.R[rows, actions]
    if mdp.is_sparse:
        return mdp.P[rows * mdp.n_actions + actions], r_pi
    P_pi: FloatArray = mdp.P[rows, actions]
    return P_pi, r_pi


def policy_chain(mdp: TabularMDP, pi: Any) -> tuple[Any, FloatArray]:
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
    P_pi : array of shape (S, S), or a scipy.sparse CSR array for a sparse model
    r_pi : array, shape (S,)
    """
    mdp = check_mdp(mdp)
    return policy_model(mdp, mdp.check_policy(pi))


def gth_solve(A: Any) -> FloatArray:
    r"""The stationary distribution of an irreducible chain by Grassmann–Taksar–Heyman.

    GTH (Grassmann, Taksar and Heyman 1985) is Gaussian elimination on :math:`I - P` in
    which each pivot is computed as the sum of the off-diagonal entries of its row,

    .. math::

        p_{kk} \leftarrow \sum_{j > k} p_{kj}, \qquad
        p_{ij} \leftarrow p_{ij} + \frac{p_{ik}\, p_{kj}}{\sum_{l > k} p_{kl}}
        \quad (i, j > k),

    so no subtraction occurs and the result is accurate to a few ulp relative to each entry,
    however small (QuantEcon's ``gth_solve`` implements the same recursion). Back
    substitution then gives :math:`x_k = \sum_{i > k} x_i\, p_{ik} / \sum_{j>k} p_{kj}`,
    normalized. Unchecked: ``A`` must be a square non-negative matrix of an irreducible
    chain (off-diagonal entries are all that is read).
    """
    M = np.array(A, dtype=np.float64, copy=True)
    n = M.shape[0]
    for k in range(n - 1):
        scale = M[k, k + 1 :].sum()
        if scale <= 0.0:
            raise ValueError("P_pi is reducible: the GTH elimination met a zero pivot")
        M[k + 1 :, k] /= scale
        M[k + 1 :, k + 1 :] += np.outer(M[k + 1 :, k], M[k, k + 1 :])
    x = np.zeros(n)
    x[n - 1] = 1.0
    for k in range(n - 2, -1, -1):
        x[k] = x[k + 1 :] @ M[k + 1 :, k]
    out: FloatArray = x / x.sum()
    return out


def _check_chain(P_pi: Any) -> Any:
    """Validate a row-stochastic matrix (dense or sparse); return it renormalized."""
    if is_sparse_matrix(P_pi):
        if np.dtype(P_pi.dtype).kind not in "iuf":
            raise TypeError(f"P_pi must hold real numbers, got dtype {P_pi.dtype}")
        P = scipy_sparse.csr_array(P_pi, dtype=np.float64, copy=True)
        n = P.shape[0]
        if P.shape != (n, n) or n == 0:
            raise ValueError(f"P_pi must be a non-empty square matrix, got shape {P.shape}")
        P.sum_duplicates()
        if not np.isfinite(P.data).all():
            raise ValueError("P_pi must be finite")
        if (P.data < 0).any():
            raise ValueError("P_pi must be non-negative")
        sums = np.asarray(P.sum(axis=1)).ravel()
        if not np.allclose(sums, 1.0, atol=PROB_ATOL, rtol=0.0):
            worst = float(np.max(np.abs(sums - 1.0)))
            raise ValueError(f"P_pi must have rows that sum to 1; the worst is off by {worst:.3g}")
        P.data = P.data / np.repeat(sums, np.diff(P.indptr))
        return P
    P = as_array("P_pi", P_pi, ndim=2)
    n = P.shape[0]
    if P.shape != (n, n) or n == 0:
        raise ValueError(f"P_pi must be a non-empty square matrix, got shape {P.shape}")
    return check_distribution("P_pi", P, axis=1)


def stationary_distribution(P_pi: Any) -> FloatArray:
    r"""The stationary distribution :math:`d^\top P_\pi = d^\top`, :math:`\sum_s d(s) = 1`.

    The chain must have exactly one closed communicating class (then :math:`d` is unique;
    it vanishes on the transient states). The classes are found from the graph of
    :math:`P_\pi` (strongly connected components with no edge leaving), and :math:`d` on the
    closed class is computed by the GTH algorithm (``gth_solve``; Grassmann, Taksar and
    Heyman 1985), subtraction-free and accurate to a few ulp per entry. A sparse ``P_pi``
    whose closed class has more than ``GTH_MAX_STATES`` states is solved instead by a sparse
    LU factorization of the balance equations (GTH would fill the matrix in).
    Book: thm-bell-tvr (the on-policy weighting :math:`D`). Source: Tsitsiklis and Van Roy
    (1997); Grassmann, Taksar and Heyman (1985).

    Parameters
    ----------
    P_pi : array of shape (S, S), or a scipy.sparse matrix
        A row-stochastic matrix; rows within 1e-8 of summing to 1 are renormalized.

    Returns
    -------
    d : array, shape (S,)

    Raises
    ------
    ValueError
        If ``P_pi`` is not row-stochastic or its stationary distribution is not unique (more
        than one closed class).
    """
    P = _check_chain(P_pi)
    n = P.shape[0]
    graph = scipy_sparse.csr_array(P) if is_sparse_matrix(P) else scipy_sparse.csr_array(P > 0)
    graph.eliminate_zeros()
    n_comp, labels = connected_components(graph, directed=True, connection="strong")
    coo = graph.tocoo()
    leaves = labels[coo.row] != labels[coo.col]
    open_classes = np.unique(labels[coo.row[leaves]])
    closed = np.setdiff1d(np.arange(n_comp), open_classes)
    if closed.size != 1:
        raise ValueError(
            f"P_pi has {closed.size} closed classes, so no unique stationary distribution "
            "(reducible chain)"
        )
    members = np.flatnonzero(labels == closed[0])
    d = np.zeros(n)
    if is_sparse_matrix(P):
        sub = P[members][:, members]
        if members.size > GTH_MAX_STATES:
            d[members] = _sparse_balance_solve(sub)
        else:
            d[members] = gth_solve(sub.toarray())
    else:
        d[members] = gth_solve(P[np.ix_(members, members)])
    return d


def _sparse_balance_solve(P: Any) -> FloatArray:
    """Solve ``d (I - P) = 0, sum d = 1`` for an irreducible sparse chain by sparse LU.

    The last balance equation is replaced by the normalization (a row of ones), which keeps
    the system well scaled however small some stationary probabilities are.
    """
    from scipy.sparse.linalg import splu

    n = P.shape[0]
    M = scipy_sparse.csr_array(scipy_sparse.eye_array(n, format="csr") - P.T)
    ones = scipy_sparse.csr_array(np.ones((1, n)))
    system = scipy_sparse.csc_array(scipy_sparse.vstack([M[: n - 1], ones]))
    rhs = np.zeros(n)
    rhs[n - 1] = 1.0
    d = np.clip(splu(system).solve(rhs), 0.0, None)
    out: FloatArray = d / d.sum()
    return out
