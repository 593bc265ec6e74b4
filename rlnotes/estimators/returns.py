"""Discounted returns, reward-to-go, TD errors, GAE and lambda-returns.

Every function here solves one backward linear recursion along the time axis,

.. math:: y_t = x_t + c_t \\, y_{t+1}, \\qquad y_T = 0,

where :math:`c_t` is a constant discount that is set to zero after a step that ends an
episode. Arrays are time-major, ``(T,)`` or ``(T, B)`` for ``B`` parallel environments.
The recursion is solved exactly in float64, step by step (no truncated kernels, no
divisions), by compiled code chosen by shape: with many environments a loop over time
whose steps are BLAS ``daxpy`` calls across environments; with few, every environment's
sequence, laid end to end, as one unit bidiagonal system for LAPACK's banded triangular
solver ``dtbtrs``.

Sources: Sutton and Barto (2018), chapter 12, for lambda-returns; Schulman et al. (2016),
"High-Dimensional Continuous Control Using Generalized Advantage Estimation", for GAE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import blas, lapack

from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_bool_flags,
    check_finite,
    check_gamma,
    check_shape,
)

BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.intp]

__all__ = ["discounted_cumsum", "gae", "lambda_returns", "reward_to_go"]

# -- dispatch thresholds (measured on a 2-core machine; see benchmarks/returns.py) -----------
#: With at least this many environments the recursion runs as a loop over time, vectorized
#: across environments (one BLAS axpy per step); with fewer, each environment's sequence goes
#: to a compiled one-dimensional solver.
_MIN_ENVS_FOR_TIME_LOOP = 96
#: In the time loop, episode ends are patched one by one while there are at most this many
#: per step on average; denser boundaries use a per-step coefficient row instead.
_MAX_SPARSE_ENDS_PER_STEP = 4.0
#: Chunk length of the banded solver (its band matrix then takes 1 MiB, within L2 cache).
_CHUNK = 1 << 16


# -- kernels -------------------------------------------------------------------------------
def _banded_solve(x: FloatArray, c: float, cuts: IndexArray, out: FloatArray) -> FloatArray:
    """Recursion ``y_t = x_t + c_t y_{t+1}`` on a 1-D sequence, ``c_t = 0`` at ``cuts``, else c.

    Each chunk of the sequence, from the end, is the unit upper-bidiagonal system
    ``(I - diag_1(c_t)) y = x`` solved by LAPACK's banded triangular solver ``dtbtrs`` (one
    back-substitution, no division); the chunk's last step first takes the carry
    ``c_t y_{t+1}`` from the chunk after it, the same multiply-add the recursion does there.
    Chunks keep the band matrix small and in cache. ``out`` is a contiguous 1-D array of the
    length of ``x``; it may be ``x`` itself.
    """
    n = x.shape[0]
    m = min(n, _CHUNK)
    # band storage: ab[0, j] = A[j - 1, j] = -c_{j-1}; row 1, the unit diagonal, is never read
    ab = np.empty((2, m), dtype=np.float64, order="F")
    sup = ab[0]
    sup.fill(-c)
    cuts = np.sort(cuts)
    his = np.arange(n, 0, -m)  # chunk [lo, hi), from the end
    los = np.maximum(his - m, 0)
    # the cuts of a chunk are cuts[first:last]; cuts[last] == hi - 1 cuts it from the next
    firsts = np.searchsorted(cuts, los).tolist()
    lasts = np.searchsorted(cuts, his - 1).tolist()
    solve = lapack.dtbtrs
    copy = out is not x
    carry = 0.0
    for i, hi in enumerate(his.tolist()):
        lo, first, last = max(hi - m, 0), firsts[i], lasts[i]
        seg = out[lo:hi]
        if copy:
            seg[...] = x[lo:hi]
        if i and not (last < cuts.size and cuts[last] == hi - 1):
            seg[-1] += c * carry
        inner = cuts[first:last] - (lo - 1) if last > first else None
        if inner is not None:
            sup[inner] = 0.0
        k = hi - lo
        _, info = solve(ab[:, :k], seg.reshape(k, 1), uplo="U", trans="N", diag="U", overwrite_b=1)
        if info != 0:  # pragma: no cover - a unit triangular system is never singular
            raise RuntimeError(f"dtbtrs failed with info={info}")
        if inner is not None:
            sup[inner] = -c
        carry = float(seg[0])
    return out


def _time_loop(
    x: FloatArray, c: float, done: BoolArray | None, ends: IndexArray, overwrite: bool
) -> FloatArray:
    """Recursion along axis 0 of a ``(T, B)`` array as a loop over time, vectorized over B.

    Each step is one BLAS ``daxpy``, ``y[t] += c * y[t + 1]``, on rows that start as ``x``.
    An episode end at ``(t, b)`` then restores ``y[t, b] = x[t, b]`` exactly.
    """
    n_steps, n_envs = x.shape
    y = x if overwrite else x.copy()
    rows = list(y)
    axpy = blas.daxpy  # axpy(x, y, n, a): y += a * x, in place
    if done is None:
        for t in range(n_steps - 2, -1, -1):
            axpy(rows[t + 1], rows[t], n_envs, c)
        return y
    if ends.size <= _MAX_SPARSE_ENDS_PER_STEP * n_steps:
        ends_t, ends_b = np.divmod(ends, n_envs)
        saved = y[ends_t, ends_b].tolist()
        et, eb = ends_t.tolist(), ends_b.tolist()
        k = len(et) - 1
        for t in range(n_steps - 2, -1, -1):
            row = rows[t]
            axpy(rows[t + 1], row, n_envs, c)
            while k >= 0 and et[k] == t:
                row[eb[k]] = saved[k]
                k -= 1
        return y
    coef = np.where(done, 0.0, c)
    c_rows = list(coef)
    tmp = np.empty_like(rows[0])
    mul, add = np.multiply, np.add
    for t in range(n_steps - 2, -1, -1):
        mul(rows[t + 1], c_rows[t], tmp)
        add(rows[t], tmp, rows[t])
    return y


def _episode_ends(done: BoolArray | None) -> tuple[BoolArray | None, IndexArray]:
    """``(done, ends)``: ``ends`` are the flat (C-order) indices of the steps before the last
    one that end an episode; ``done`` becomes ``None`` if there are none (an end at the last
    step changes nothing).
    """
    if done is None:
        return None, np.zeros(0, dtype=np.intp)
    ends = np.flatnonzero(done[:-1])
    return (done if ends.size else None), ends


def _recurrence(
    x: FloatArray, c: float, done: BoolArray | None, ends: IndexArray, overwrite: bool
) -> FloatArray:
    """Solve ``y_t = x_t + c * (1 - done_t) * y_{t+1}``, ``y_T = 0``, along axis 0.

    ``x`` is float64 of shape ``(T,)`` or ``(T, B)``; ``done`` is ``None`` (no boundaries) or
    bool of the same shape, and ``ends`` comes from :func:`_episode_ends`. With ``overwrite``
    the result may be written into ``x`` (then C-contiguous).
    Dispatch: many environments -> a BLAS loop over time; otherwise the environments'
    sequences, laid end to end, go to the LAPACK banded solver.
    """
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.float64)
    if c == 0.0:
        return x if overwrite else x.copy()
    if x.ndim == 2 and x.shape[1] >= _MIN_ENVS_FOR_TIME_LOOP:
        return _time_loop(x, c, done, ends, overwrite)
    n_steps = x.shape[0]
    n_envs = 1 if x.ndim == 1 else x.shape[1]
    # environment-major layout: row b is environment b's sequence, contiguous in time
    rows = x.reshape(1, n_steps) if x.ndim == 1 else np.ascontiguousarray(x.T)
    # a transposed copy is ours to overwrite; a view of the caller's array is not
    own = overwrite or not np.may_share_memory(rows, x)
    # the sequences end to end; in that order an end at (t, b) sits at b * T + t, and an
    # environment's last step must not see the next environment's first
    ends_t, ends_b = np.divmod(ends, n_envs)
    cuts = ends_b * n_steps + ends_t
    if n_envs > 1:
        cuts = np.concatenate([cuts, np.arange(1, n_envs) * n_steps - 1])
    flat = rows.reshape(-1)
    dest = flat if own and flat.flags.c_contiguous else np.empty(flat.shape[0])
    y = _banded_solve(flat, c, cuts, dest).reshape(n_envs, n_steps)
    return y.reshape(n_steps) if x.ndim == 1 else y.T


def _check_result(
    y: FloatArray, c: float, ends: IndexArray, inputs: tuple[tuple[str, FloatArray], ...]
) -> FloatArray:
    """Reject inf in the inputs (NaN is rejected on entry) by looking at the result.

    Inside an episode the recursion carries a non-finite value back to the episode's first
    step (for ``c > 0``), so the result is finite everywhere iff it is finite at the first
    step of every episode; only where ``c == 0`` does every entry need a look. On failure the
    inputs are checked one by one, so that the error names the argument.
    """
    if y.size == 0:
        return y
    if c == 0.0:
        ok = bool(np.isfinite(y).all())
    else:
        ok = bool(np.isfinite(y[0]).all())
        if ok and ends.size:
            if y.ndim == 1:
                starts = y[ends + 1]
            else:
                ends_t, ends_b = np.divmod(ends, y.shape[1])
                starts = y[ends_t + 1, ends_b]
            ok = bool(np.isfinite(starts).all())
    if not ok:
        for name, arr in inputs:
            check_finite(name, arr)
        raise OverflowError(
            f"{inputs[0][0]} too large in magnitude: the result overflows float64; rescale it"
        )
    return y


# -- validation ----------------------------------------------------------------------------
# NaN is rejected here; inf is rejected by _check_result, which looks at the result instead
# of taking another pass over every input.
def _time_major(name: str, x: Any) -> FloatArray:
    return as_float_array(name, x, ndim=(1, 2))


def _same_shape(name: str, x: Any, shape: tuple[int, ...]) -> FloatArray:
    arr = as_float_array(name, x)
    check_shape(name, arr, shape)
    return arr


def _done_flags(
    terminated: Any, truncated: Any, shape: tuple[int, ...]
) -> tuple[BoolArray, BoolArray]:
    term = check_bool_flags("terminated", terminated, shape)
    trunc = check_bool_flags("truncated", truncated, shape)
    return term, trunc


# -- public API ----------------------------------------------------------------------------
def discounted_cumsum(x: Any, gamma: float, axis: int = 0) -> FloatArray:
    r"""Discounted cumulative sum from the end of an axis.

    Computes :math:`y_t = x_t + \gamma \, y_{t+1}` with :math:`y_T = 0`, that is
    :math:`y_t = \sum_{k \ge t} \gamma^{\,k-t} x_k`, along ``axis``.

    Parameters
    ----------
    x : array_like
        Finite real array with at least one dimension.
    gamma : float
        The discount factor :math:`\gamma`, in [0, 1].
    axis : int, optional
        The time axis (default 0).

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``x``.

    Raises
    ------
    OverflowError
        If the sum overflows float64 although every input is finite.

    Notes
    -----
    Book: eq-vr-reward-to-go (the case without episode boundaries).
    Source: Sutton and Barto (2018), sec. 3.3 (the discounted return).
    """
    arr = as_float_array("x", x)
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension, got a scalar")
    d = check_gamma(gamma, "gamma", allow_one=True)
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis must lie in [{-arr.ndim}, {arr.ndim}), got {axis}")
    moved = np.moveaxis(arr, int(axis), 0)
    flat = moved.reshape(moved.shape[0], -1) if moved.ndim > 1 else moved
    with np.errstate(invalid="ignore", over="ignore"):  # inf is reported below, by name
        none, ends = _episode_ends(None)
        y = _recurrence(flat, d, none, ends, overwrite=False)
        y = _check_result(y, d, ends, (("x", flat),))
    return np.moveaxis(y.reshape(moved.shape), 0, int(axis))


def reward_to_go(
    rewards: Any,
    gamma: float,
    terminated: Any = None,
    truncated: Any = None,
) -> FloatArray:
    r"""Discounted reward-to-go inside each episode, without bootstrapping.

    Computes :math:`G_t = r_t + \gamma \, (1 - d_t) \, G_{t+1}` with :math:`G_T = 0`, where
    :math:`d_t = \mathrm{terminated}_t \lor \mathrm{truncated}_t`: either flag ends the
    episode, and nothing is added for the steps after a truncation.

    Parameters
    ----------
    rewards : array_like
        Rewards, time-major, shape ``(T,)`` or ``(T, B)``.
    gamma : float
        Discount factor in [0, 1].
    terminated, truncated : array_like of bool, optional
        Episode-boundary flags of the shape of ``rewards`` (bool, or integers 0/1).
        ``None`` means no boundary.

    Returns
    -------
    numpy.ndarray
        float64 array :math:`G` of the shape of ``rewards``.

    Notes
    -----
    Book: eq-vr-reward-to-go. Source: Sutton and Barto (2018), sec. 3.3; Williams (1992).
    """
    r = _time_major("rewards", rewards)
    g = check_gamma(gamma, "gamma", allow_one=True)
    term, trunc = _done_flags(terminated, truncated, r.shape)
    done, ends = _episode_ends(np.logical_or(term, trunc, order="C"))
    with np.errstate(invalid="ignore", over="ignore"):  # inf is reported below, by name
        y = _recurrence(r, g, done, ends, overwrite=False)
    return _check_result(y, g, ends, (("rewards", r),))


def _gae_validated(
    rewards: Any,
    values: Any,
    next_values: Any,
    gamma: float,
    lam: float,
    terminated: Any,
    truncated: Any,
) -> tuple[FloatArray, FloatArray]:
    """Return ``(advantages, values)`` after validating every argument."""
    r = _time_major("rewards", rewards)
    v = _same_shape("values", values, r.shape)
    nv = _same_shape("next_values", next_values, r.shape)
    g = check_gamma(gamma, "gamma", allow_one=True)
    lm = check_gamma(lam, "lam", allow_one=True)
    term, trunc = _done_flags(terminated, truncated, r.shape)
    # delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t), in one buffer
    done, ends = _episode_ends(np.logical_or(term, trunc, order="C"))
    c = g * lm
    with np.errstate(invalid="ignore", over="ignore"):  # inf is reported below, by name
        delta = np.subtract(r, v, order="C")
        if g != 0.0 and delta.size:  # delta += gamma * next_values, one fused BLAS pass
            blas.daxpy(np.ravel(nv), delta.reshape(-1), a=g)
        else:  # next_values are not used; an inf among them is still an error
            check_finite("next_values", nv)
        terminal = np.flatnonzero(term)
        if terminal.size:  # no bootstrap after a termination
            at = np.unravel_index(terminal, r.shape)
            if not np.isfinite(nv[at]).all():
                check_finite("next_values", nv)
            delta[at] = r[at] - v[at]
        adv = _recurrence(delta, c, done, ends, overwrite=True)
    _check_result(adv, c, ends, (("rewards", r), ("values", v), ("next_values", nv)))
    return adv, v


def gae(
    rewards: Any,
    values: Any,
    next_values: Any,
    gamma: float,
    lam: float,
    terminated: Any = None,
    truncated: Any = None,
) -> FloatArray:
    r"""Generalized advantage estimates GAE(:math:`\gamma, \lambda`).

    With the TD error
    :math:`\delta_t = r_t + \gamma \, (1 - \mathrm{terminated}_t) \, V(s_{t+1}) - V(s_t)`,
    computes :math:`\hat A_t = \delta_t + \gamma \lambda \, (1 - d_t) \, \hat A_{t+1}`
    with :math:`\hat A_T = 0` and :math:`d_t = \mathrm{terminated}_t \lor \mathrm{truncated}_t`.
    A terminated step does not bootstrap; a truncated step bootstraps from the value of its
    true next observation but cuts the trace.

    Parameters
    ----------
    rewards : array_like
        Rewards :math:`r_t`, time-major, shape ``(T,)`` or ``(T, B)``.
    values : array_like
        :math:`V(s_t)`, the shape of ``rewards``.
    next_values : array_like
        :math:`V(s_{t+1})`, the value of the true next observation: at a truncated step the
        final observation of the episode, not the observation after the reset.
    gamma : float
        Discount factor in [0, 1].
    lam : float
        Trace parameter :math:`\lambda` in [0, 1].
    terminated, truncated : array_like of bool, optional
        Episode-boundary flags (bool, or integers 0/1); ``None`` means no boundary.

    Returns
    -------
    numpy.ndarray
        float64 advantages :math:`\hat A` of the shape of ``rewards``.

    Notes
    -----
    Book: eq-vr-td-error (:math:`\delta_t`) and eq-vr-gae (:math:`\hat A_t`).
    :math:`\lambda = 0` gives :math:`\delta_t`; :math:`\lambda = 1` gives the Monte Carlo
    return minus :math:`V(s_t)` inside an episode.
    Source: Schulman et al. (2016), sec. 3.
    """
    adv, _ = _gae_validated(rewards, values, next_values, gamma, lam, terminated, truncated)
    return adv


def lambda_returns(
    rewards: Any,
    values: Any,
    next_values: Any,
    gamma: float,
    lam: float,
    terminated: Any = None,
    truncated: Any = None,
) -> FloatArray:
    r"""TD(:math:`\lambda`) value targets, :math:`G^\lambda_t = \hat A_t + V(s_t)`.

    When ``next_values[t] == values[t + 1]`` at every step that does not end an episode (the
    values of one rollout), this is the recursion
    :math:`G^\lambda_t = r_t + \gamma \, (1 - \mathrm{terminated}_t)
    \big[(1 - \lambda_t) V(s_{t+1}) + \lambda_t G^\lambda_{t+1}\big]` with
    :math:`\lambda_t = \lambda \, (1 - \mathrm{truncated}_t)` (and :math:`\lambda_{T-1} = 0`):
    at a truncated step the target bootstraps fully from the next observation's value.

    Parameters
    ----------
    rewards, values, next_values, gamma, lam, terminated, truncated
        As in :func:`gae`.

    Returns
    -------
    numpy.ndarray
        float64 targets of the shape of ``rewards``.

    Notes
    -----
    Book: eq-vr-lambda-return. Source: Sutton and Barto (2018), sec. 12.1;
    Schulman et al. (2016), sec. 3.
    """
    adv, v = _gae_validated(rewards, values, next_values, gamma, lam, terminated, truncated)
    adv += v
    return adv
