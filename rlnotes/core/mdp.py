r"""Finite Markov decision processes: ``P[s, a, s']``, ``R[s, a]``, ``mu0[s]`` and ``gamma``.

A :class:`TabularMDP` is immutable and validated once, so every algorithm that takes one
can trust its shapes and probabilities. The transition model is held either densely, as an
``(S, A, S)`` array, or sparsely, as an ``(S A) x S`` :class:`scipy.sparse.csr_array` whose row
``s * A + a`` is :math:`P(\cdot \mid s, a)`. Every algorithm of rlnotes accepts both; code that
needs the model as a matrix uses ``TabularMDP.P_matrix``, which has that ``(S A) x S``
layout in both cases (a read-only view of the dense array, or the sparse matrix itself).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as scipy_sparse

from rlnotes.core.validation import (
    PROB_ATOL,
    FloatArray,
    as_array,
    check_distribution,
    check_gamma,
    check_positive_int,
    check_random_state,
    check_real,
    check_shape,
    read_only_copy,
)

__all__ = [
    "TabularMDP",
    "check_mdp",
    "discrete_space_size",
    "is_sparse_matrix",
    "random_mdp",
    "row_sum_error",
    "slip_chain",
]


def is_sparse_matrix(x: Any) -> bool:
    """Whether ``x`` is a scipy.sparse matrix or array (of any format)."""
    return bool(scipy_sparse.issparse(x))


def _check_sparse_P(P_in: Any, n_states: int, n_actions: int) -> Any:
    """Validate a sparse ``(S A) x S`` model and return it as a canonical read-only CSR array.

    Rows within ``PROB_ATOL`` of summing to one are divided by
    their sums, as dense models are.
    """
    kind = np.dtype(P_in.dtype).kind
    if kind not in "iuf":
        raise TypeError(f"P must hold real numbers, got a sparse matrix of dtype {P_in.dtype}")
    want = (n_states * n_actions, n_states)
    if P_in.shape != want:
        raise ValueError(
            f"P as a sparse matrix must have shape (S*A, S) = {want} for R of shape "
            f"({n_states}, {n_actions}), got shape {P_in.shape}"
        )
    P = scipy_sparse.csr_array(P_in, dtype=np.float64, copy=True)
    P.sum_duplicates()
    P.sort_indices()
    data = P.data
    if np.isnan(data).any():
        raise ValueError("P contains NaN")
    if not np.isfinite(data).all():
        raise ValueError("P must be finite, got inf")
    if (data < 0).any():
        k = int(np.argmax(data < 0))
        row = int(np.searchsorted(P.indptr, k, side="right") - 1)
        s, a = divmod(row, n_actions)
        raise ValueError(
            f"P must be non-negative, got {data[k]:.3g} at (s, a, s') = ({s}, {a}, {P.indices[k]})"
        )
    sums = np.asarray(P.sum(axis=1), dtype=np.float64).ravel()
    bad = np.abs(sums - 1.0) > PROB_ATOL
    if bad.any():
        row = int(np.argmax(np.abs(sums - 1.0)))
        s, a = divmod(row, n_actions)
        raise ValueError(
            f"P must sum to 1 over s' for every (s, a); P[{s}, {a}] sums to {sums[row]:.10g}"
        )
    counts = np.diff(P.indptr)
    P.data = data / np.repeat(sums, counts)
    for arr in (P.data, P.indices, P.indptr):
        arr.setflags(write=False)
    return P


@dataclass(frozen=True, eq=False)
class TabularMDP:
    r"""A finite discounted MDP (Puterman 1994, ch. 2).

    Parameters
    ----------
    P : array of shape (S, A, S), or scipy.sparse matrix of shape (S*A, S)
        Transition probabilities ``P[s, a, s'] = Pr(s' | s, a)``; each ``P[s, a]`` sums to 1.
        A scipy.sparse matrix (any format) is kept sparse, as a CSR array whose row
        ``s * A + a`` holds :math:`P(\cdot \mid s, a)`.
    R : array, shape (S, A)
        Expected immediate reward ``R[s, a] = E[r | s, a]``.
    gamma : float
        Discount factor in [0, 1).
    mu0 : array, shape (S,), optional
        Initial-state distribution; uniform when omitted.

    Notes
    -----
    Rows of ``P`` and ``mu0`` that sum to one within ``PROB_ATOL`` (1e-8) are accepted and
    divided by their sums, so every algorithm sees exact distributions (an unnormalized row
    with ``gamma`` near 1 would otherwise change the values by orders of magnitude). The
    arrays are copied and made read-only. ``from_gymnasium`` builds the (sparse) model of
    a gymnasium toy-text environment; ``to_dense`` and ``to_sparse`` convert.
    """

    P: Any
    R: FloatArray
    gamma: float
    mu0: FloatArray = field(default=None)  # type: ignore[arg-type]
    _max_branching: int = field(default=0, init=False, repr=False, compare=False)
    _row_sum_error: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gamma = check_gamma(self.gamma)
        R = as_array("R", self.R, ndim=2)
        if is_sparse_matrix(self.P):
            n_states, n_actions = R.shape
            if n_states == 0 or n_actions == 0:
                raise ValueError(
                    f"R must have at least one state and one action, got shape {R.shape}"
                )
            P: Any = _check_sparse_P(self.P, n_states, n_actions)
            branching = int(np.diff(P.indptr).max())
        else:
            P_arr = as_array("P", self.P, ndim=3)
            n_states, n_actions, n_next = P_arr.shape
            if n_states == 0 or n_actions == 0:
                raise ValueError(
                    f"P must have at least one state and one action, got shape {P_arr.shape}"
                )
            if n_next != n_states:
                raise ValueError(f"P must have shape (S, A, S), got shape {P_arr.shape}")
            P = read_only_copy(check_distribution("P", P_arr, axis=2))
            branching = int((P != 0.0).sum(axis=2).max())
            check_shape("R", R, (n_states, n_actions))
        if self.mu0 is None:
            mu0 = np.full(n_states, 1.0 / n_states)
        else:
            mu0 = check_distribution("mu0", as_array("mu0", self.mu0, shape=(n_states,)))
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", read_only_copy(R))
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "mu0", read_only_copy(mu0))
        object.__setattr__(self, "_max_branching", branching)
        object.__setattr__(self, "_row_sum_error", row_sum_error(self.P_matrix))

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return int(self.R.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return int(self.R.shape[1])

    @property
    def is_sparse(self) -> bool:
        """Whether ``P`` is held as a sparse ``(S A) x S`` CSR array."""
        return is_sparse_matrix(self.P)

    @property
    def P_matrix(self) -> Any:
        r"""The model as an ``(S A) x S`` matrix: row ``s * A + a`` is :math:`P(\cdot|s, a)`.

        A read-only dense view for a dense model, the CSR array itself for a sparse one; in
        both cases ``P_matrix @ v`` is :math:`(P v)(s, a)` flattened, and
        ``P_matrix.T @ x`` is :math:`\sum_{s, a} x(s, a) P(\cdot \mid s, a)` (the flow that
        occupancy measures and the LP balance).
        """
        if self.is_sparse:
            return self.P
        return self.P.reshape(self.n_states * self.n_actions, self.n_states)

    @property
    def max_branching(self) -> int:
        """The largest number of next states with non-zero probability from any ``(s, a)``.

        It enters the floating-point error bound of a product ``P v`` (a sum of that many
        non-zero terms), and so every certified bound of rlnotes.
        """
        return self._max_branching

    @property
    def row_sum_error(self) -> float:
        r"""A bound on :math:`\max_{s, a} |\sum_{s'} P(s' \mid s, a) - 1|` for the stored floats.

        The rows are renormalized on construction, but in floating point they sum to 1 only
        within a few ulp; the certified bounds of rlnotes account for it
        (``row_sum_error``).
        """
        return self._row_sum_error

    def to_dense(self) -> TabularMDP:
        """The same MDP with ``P`` as a dense ``(S, A, S)`` array (itself if already dense)."""
        if not self.is_sparse:
            return self
        P = self.P.toarray().reshape(self.n_states, self.n_actions, self.n_states)
        return TabularMDP(P=P, R=self.R, gamma=self.gamma, mu0=self.mu0)

    def to_sparse(self) -> TabularMDP:
        """The same MDP with ``P`` as a sparse ``(S A) x S`` CSR array (itself if already)."""
        if self.is_sparse:
            return self
        P = scipy_sparse.csr_array(self.P_matrix)
        return TabularMDP(P=P, R=self.R, gamma=self.gamma, mu0=self.mu0)

    @classmethod
    def from_gymnasium(cls, env: Any, gamma: float, *, sparse: bool = True) -> TabularMDP:
        r"""The tabular model of a gymnasium toy-text environment, plus one absorbing state.

        Reads the model ``env.unwrapped.P[s][a]``, a list of
        ``(prob, next_state, reward, terminated)`` outcomes, and sets

        .. math::

            P(s' \mid s, a) = \sum_{k:\, s'_k = s',\, \neg d_k} p_k, \qquad
            P(\bar s \mid s, a) = \sum_{k:\, d_k} p_k, \qquad
            R(s, a) = \sum_k p_k r_k,

        where :math:`d_k` is the ``terminated`` flag of outcome :math:`k`. Outcomes listed twice
        are summed. Every terminated outcome leads to one extra absorbing state :math:`\bar s`
        (index ``S``, the last) with :math:`P(\bar s \mid \bar s, a) = 1` and
        :math:`R(\bar s, a) = 0`, so :math:`V^\pi(\bar s) = 0` for every policy and the
        discounted values of the model equal the expected discounted returns of the episodic
        environment (Sutton and Barto 2018, sec. 3.4). This matters because CliffWalking's goal
        and Taxi's drop-off state are not absorbing in ``P``: their rows describe moves that the
        environment never makes after termination. The returned MDP therefore has
        ``env.observation_space.n + 1`` states; ``mu0`` is the environment's
        ``initial_state_distrib`` (FrozenLake: the start cell; CliffWalking: the start cell;
        Taxi: uniform over the 300 valid starts), with mass 0 on :math:`\bar s`.

        Covers FrozenLake-v1, CliffWalking-v1 and Taxi-v4 (dry or rainy; not
        ``fickle_passenger=True``, whose dynamics are not in ``P``).

        Parameters
        ----------
        env : gymnasium.Env
            A toy-text environment (wrapped or not) with discrete spaces and a model ``P``.
        gamma : float
            Discount factor in [0, 1); the environment has none of its own.
        sparse : bool, optional
            Build ``P`` as a sparse CSR array (default; the dense array is never formed) or as
            a dense ``(S + 1, A, S + 1)`` array.

        Returns
        -------
        TabularMDP
            With ``S + 1`` states, where ``S = env.observation_space.n``.

        Raises
        ------
        ValueError
            If the model is missing or malformed: an outcome that is not a 4-tuple, a
            probability outside [0, 1], a next state out of range, a non-finite reward, or
            outcomes of one ``(s, a)`` whose probabilities do not sum to 1.
        TypeError
            If an outcome's probability or reward is not a real number, its next state not an
            integer, or its ``terminated`` flag not a bool.
        """
        g = check_gamma(gamma)
        if not isinstance(sparse, bool | np.bool_):
            raise TypeError(f"sparse must be a bool, got {type(sparse).__name__}")
        base = getattr(env, "unwrapped", env)
        model = getattr(base, "P", None)
        if not isinstance(model, dict):
            raise ValueError(
                "env must expose its model as a dict env.unwrapped.P[s][a] "
                f"(a gymnasium toy-text environment), got {type(base).__name__}"
            )
        if getattr(base, "fickle_passenger", False):
            raise ValueError(
                "env has fickle_passenger=True: its dynamics are not described by env.unwrapped.P"
            )
        obs_space = getattr(base, "observation_space", None)
        n_states = discrete_space_size("env.observation_space", obs_space)
        n_actions = discrete_space_size("env.action_space", getattr(base, "action_space", None))
        absorbing = n_states
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        R = np.zeros((n_states + 1, n_actions))
        for s in range(n_states):
            row = model.get(s)
            if not isinstance(row, dict):
                raise ValueError(f"env.unwrapped.P has no entry for state {s}")
            for a in range(n_actions):
                outcomes = row.get(a)
                if not outcomes:
                    raise ValueError(f"env.unwrapped.P[{s}][{a}] lists no outcomes")
                for k, outcome in enumerate(outcomes):
                    where = f"env.unwrapped.P[{s}][{a}][{k}]"
                    prob, nxt, reward, terminated = _outcome(where, outcome, n_states)
                    rows.append(s * n_actions + a)
                    cols.append(absorbing if terminated else nxt)
                    vals.append(prob)
                    R[s, a] += prob * reward
        totals = np.bincount(rows, weights=vals, minlength=n_states * n_actions)
        if not np.allclose(totals, 1.0, atol=PROB_ATOL, rtol=0.0):
            worst = int(np.argmax(np.abs(totals - 1.0)))
            s_bad, a_bad = divmod(worst, n_actions)
            raise ValueError(
                f"env.unwrapped.P[{s_bad}][{a_bad}] probabilities sum to {totals[worst]:.6g}, not 1"
            )
        for a in range(n_actions):
            rows.append(absorbing * n_actions + a)
            cols.append(absorbing)
            vals.append(1.0)
        isd = getattr(base, "initial_state_distrib", None)
        if isd is None:
            raise ValueError("env has no initial_state_distrib to take mu0 from")
        isd_arr = as_array("env.initial_state_distrib", isd, shape=(n_states,))
        mu0 = np.append(isd_arr, 0.0)
        shape = ((n_states + 1) * n_actions, n_states + 1)
        P: Any = sparse_csr((vals, (rows, cols)), shape)
        if not sparse:
            P = P.toarray().reshape(n_states + 1, n_actions, n_states + 1)
        return cls(P=P, R=R, gamma=g, mu0=mu0)

    def check_policy(self, pi: Any, name: str = "pi") -> FloatArray:
        """Validate a stochastic policy ``pi[s, a]`` for this MDP; return it renormalized."""
        arr = as_array(name, pi, shape=(self.n_states, self.n_actions))
        return check_distribution(name, arr, axis=1)

    def check_q(self, Q: Any, name: str = "Q") -> FloatArray:
        """Validate an action-value table ``Q[s, a]`` for this MDP and return it as float64."""
        arr: FloatArray = as_array(name, Q, shape=(self.n_states, self.n_actions))
        return arr


def _neumaier_row_sums(X: FloatArray) -> FloatArray:
    """Row sums of ``X`` by Neumaier's compensated summation, vectorized over the rows."""
    total = np.zeros(X.shape[0])
    comp = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        x = X[:, j]
        t = total + x
        comp += np.where(np.abs(total) >= np.abs(x), (total - t) + x, (x - t) + total)
        total = t
    out: FloatArray = total + comp
    return out


#: Sparse matrices are padded to (rows, max non-zeros) for the accurate row sums up to this.
_PAD_LIMIT = 50_000_000

_U64 = float(np.finfo(np.float64).eps) / 2.0
_ULD = float(np.finfo(np.longdouble).eps) / 2.0


def _row_deviation(X: FloatArray) -> float:
    """A rigorous bound on ``max_i |sum_j X[i, j] - 1|`` for a non-negative ``X``."""
    n = int(X.shape[1])
    if _ULD < 1e-3 * _U64:  # an extended long double (x86): sum blocks of rows in it
        worst = 0.0
        top = 0.0
        for i in range(0, X.shape[0], 256):
            sums = X[i : i + 256].astype(np.longdouble).sum(axis=1)
            worst = max(worst, float(np.max(np.abs(sums - 1))))
            top = max(top, float(np.max(sums)))
        # numpy sums pairwise (blocks of 128 with 8 accumulators): depth <= log2(n) + 16
        depth = int(np.ceil(np.log2(max(n, 2)))) + 16
        return float((worst + 1.01 * depth * _ULD * top) * (1.0 + 2.0 * _U64))
    sums = _neumaier_row_sums(X)
    top = float(np.max(sums))
    return float(np.max(np.abs(sums - 1.0))) + (2.02 * _U64 + 4.0 * n * n * _U64 * _U64) * top


def row_sum_error(M: Any) -> float:
    r"""A rigorous bound on :math:`\max_i |\sum_j M_{ij} - 1|` for a non-negative matrix.

    The row sums are computed accurately and their own error is added: in the x86 extended
    long double (:math:`u = 2^{-64}`) where numpy has one, otherwise by Neumaier's
    compensated summation (Higham 2002, sec. 4.4), whose error is at most
    :math:`2u \sum_j M_{ij} + O(n^2 u^2)`. Either way the bound is within a few float64 ulp of
    the true deviation. (A sparse matrix too large to pad falls back to plain sums with their
    worst-case error :math:`k u \sum_j M_{ij}`, :math:`k` the most non-zeros of a row.)
    """
    if is_sparse_matrix(M):
        csr = scipy_sparse.csr_array(M)
        m = csr.shape[0]
        if m == 0 or csr.nnz == 0:
            return 1.0 if m else 0.0
        counts = np.diff(csr.indptr)
        k = int(counts.max())
        if m * k > _PAD_LIMIT:
            sums = np.asarray(csr.sum(axis=1), dtype=np.float64).ravel()
            return float(np.max(np.abs(sums - 1.0)) + 1.01 * k * _U64 * np.max(sums))
        padded = np.zeros((m, k))
        pos = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], counts)
        padded[np.repeat(np.arange(m), counts), pos] = csr.data
        return _row_deviation(padded)
    arr = np.asarray(M, dtype=np.float64)
    if arr.size == 0:
        return 0.0
    return _row_deviation(arr.reshape(-1, arr.shape[-1]))


def sparse_csr(triplets: tuple[Any, tuple[Any, Any]], shape: tuple[int, int]) -> Any:
    """A float64 CSR array from ``(values, (rows, cols))``, duplicates summed."""
    vals, (rows, cols) = triplets
    coo = scipy_sparse.coo_array(
        (np.asarray(vals, dtype=np.float64), (np.asarray(rows), np.asarray(cols))), shape=shape
    )
    return scipy_sparse.csr_array(coo)


def _outcome(where: str, outcome: Any, n_states: int) -> tuple[float, int, float, bool]:
    """Validate one ``(prob, next_state, reward, terminated)`` outcome of a gymnasium model."""
    if not isinstance(outcome, tuple | list) or len(outcome) != 4:
        got = f"a {len(outcome)}-tuple" if isinstance(outcome, tuple | list) else repr(outcome)
        raise ValueError(
            f"{where} must be a (prob, next_state, reward, terminated) 4-tuple, got {got}"
        )
    prob, nxt, reward, terminated = outcome
    for label, x in (("probability", prob), ("reward", reward)):
        if isinstance(x, bool | np.bool_) or not isinstance(x, numbers.Real):
            raise TypeError(f"{where}: the {label} must be a real number, got {x!r}")
    p, r = float(prob), float(reward)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{where}: the probability must lie in [0, 1], got {p}")
    if not np.isfinite(r):
        raise ValueError(f"{where}: the reward must be finite, got {r}")
    if isinstance(nxt, bool | np.bool_) or not isinstance(nxt, numbers.Integral):
        raise TypeError(f"{where}: the next state must be an integer, got {nxt!r}")
    nxt_i = int(nxt)
    if not 0 <= nxt_i < n_states:
        raise ValueError(f"{where} leads to state {nxt_i}, outside 0..{n_states - 1}")
    if not isinstance(terminated, bool | np.bool_):
        raise TypeError(f"{where}: the terminated flag must be a bool, got {terminated!r}")
    return p, nxt_i, r, bool(terminated)


def discrete_space_size(name: str, space: Any) -> int:
    """The size ``n`` of a gymnasium ``Discrete(n)`` space that starts at 0."""
    n = getattr(space, "n", None)
    if n is None or int(getattr(space, "start", 0)) != 0:
        raise ValueError(f"{name} must be a gymnasium Discrete space starting at 0, got {space!r}")
    return check_positive_int(name, int(n))


def check_mdp(mdp: Any, name: str = "mdp") -> TabularMDP:
    """Require a :class:`TabularMDP` (the validated model every tabular algorithm takes)."""
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"{name} must be a TabularMDP, got {type(mdp).__name__}")
    return mdp


def random_mdp(
    n_states: int,
    n_actions: int,
    gamma: float,
    seed: int | np.random.Generator | None = None,
    *,
    branching: int | None = None,
    sparse: bool = False,
) -> TabularMDP:
    """A random MDP with Dirichlet(1) transition rows and standard-normal rewards.

    With ``branching=k`` each ``(s, a)`` reaches only ``k`` random next states; with
    ``sparse=True`` the model is held as a sparse CSR array (and the dense one is never
    formed). The initial distribution is uniform. The same seed gives the same MDP, dense or
    sparse.
    """
    S = check_positive_int("n_states", n_states)
    A = check_positive_int("n_actions", n_actions)
    g = check_gamma(gamma)
    if not isinstance(sparse, bool | np.bool_):
        raise TypeError(f"sparse must be a bool, got {type(sparse).__name__}")
    rng = np.random.default_rng() if seed is None else check_random_state("seed", seed)
    if branching is None:
        P_dense = rng.dirichlet(np.ones(S), size=(S, A))
        R = rng.standard_normal((S, A))
        P: Any = sparse_csr_from_dense(P_dense) if sparse else P_dense
        return TabularMDP(P=P, R=R, gamma=g)
    k = check_positive_int("branching", branching)
    if k > S:
        raise ValueError(f"branching must be <= n_states={S}, got {k}")
    cols = np.empty((S * A, k), dtype=np.int64)
    vals = np.empty((S * A, k))
    for i in range(S * A):
        cols[i] = rng.choice(S, size=k, replace=False)
        vals[i] = rng.dirichlet(np.ones(k))
    R = rng.standard_normal((S, A))
    rows = np.repeat(np.arange(S * A), k)
    P = sparse_csr((vals.ravel(), (rows, cols.ravel())), (S * A, S))
    if not sparse:
        P = P.toarray().reshape(S, A, S)
    return TabularMDP(P=P, R=R, gamma=g)


def slip_chain(
    n_states: int, gamma: float, *, slip: float = 0.1, sparse: bool = True
) -> TabularMDP:
    r"""A chain of ``n_states`` cells with a slippery move: a sparse test bed for planning.

    Action 0 moves left and action 1 right with probability :math:`1 - p` (``slip``), and
    the other way with probability :math:`p`; moves past an end stay put. Every action in
    the rightmost cell earns reward 1, all else 0, and the start is the leftmost cell. So
    :math:`P` has at most :math:`4 S` non-zeros, and the reward must travel :math:`S` cells
    back: the case where value iteration needs many sweeps and a cautious policy iteration
    many evaluations.
    """
    S = check_positive_int("n_states", n_states, minimum=2)
    g = check_gamma(gamma)
    p = check_real("slip", slip, low=0.0, high=1.0)
    if not isinstance(sparse, bool | np.bool_):
        raise TypeError(f"sparse must be a bool, got {type(sparse).__name__}")
    s = np.arange(S)
    left, right = np.maximum(s - 1, 0), np.minimum(s + 1, S - 1)
    rows = np.concatenate([2 * s, 2 * s, 2 * s + 1, 2 * s + 1])
    cols = np.concatenate([left, right, right, left])
    vals = np.concatenate([np.full(S, 1 - p), np.full(S, p), np.full(S, 1 - p), np.full(S, p)])
    keep = vals > 0
    P: Any = sparse_csr((vals[keep], (rows[keep], cols[keep])), (2 * S, S))
    if not sparse:
        P = P.toarray().reshape(S, 2, S)
    R = np.zeros((S, 2))
    R[S - 1] = 1.0
    mu0 = np.zeros(S)
    mu0[0] = 1.0
    return TabularMDP(P=P, R=R, gamma=g, mu0=mu0)


def sparse_csr_from_dense(P: FloatArray) -> Any:
    """The ``(S A) x S`` CSR array of a dense ``(S, A, S)`` model."""
    S, A, _ = P.shape
    return scipy_sparse.csr_array(P.reshape(S * A, S))
