"""Discounted returns, reward-to-go, TD errors, GAE and lambda-returns.

Every function here solves one backward linear recursion along the time axis,

.. math:: y_t = x_t + c_t \\, y_{t+1}, \\qquad y_T = 0,

where :math:`c_t` is a constant discount that is set to zero after a step that ends an
episode. Arrays are time-major, ``(T,)`` or ``(T, B)`` for ``B`` parallel environments.
The recursion is solved exactly in float64 (no truncated kernels); which compiled routine
solves it depends on the shape and on the episode boundaries, see :func:`_recurrence`.

Sources: Sutton and Barto (2018), chapter 12, for lambda-returns; Schulman et al. (2016),
"High-Dimensional Continuous Control Using Generalized Advantage Estimation", for GAE.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import lapack
from scipy.signal import lfilter

from rlnotes._validation import (
    FloatArray,
    as_float_array,
    check_bool_flags,
    check_finite,
    check_gamma,
    check_shape,
)

BoolArray = NDArray[np.bool_]

__all__ = ["discounted_cumsum", "gae", "lambda_returns", "reward_to_go"]

# -- dispatch thresholds (measured on a 2-core machine; see benchmarks/returns.py) -----------
#: With at least this many environments the recursion runs as a numpy loop over time,
#: vectorized across environments; with fewer, each environment's sequence goes to a
#: compiled one-dimensional solver.
_MIN_ENVS_FOR_TIME_LOOP = 128
#: Boundary-free sequences at least this long are split in two halves solved in parallel
#: (``lfilter`` releases the GIL); the halves are joined with the exact carry.
_MIN_STEPS_FOR_THREADS = 1 << 16

_POOL: ThreadPoolExecutor | None = None


def _n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _pool() -> ThreadPoolExecutor | None:
    """A two-thread pool, created on first use; ``None`` on a single-core machine."""
    global _POOL
    if _POOL is None and _n_cpus() >= 2:
        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rlnotes-returns")
    return _POOL


# -- kernels -------------------------------------------------------------------------------
def _lfilter_rows(x: FloatArray, c: float) -> FloatArray:
    """Solve ``y[:, t] = x[:, t] + c * y[:, t + 1]`` for every row of a 2-D array."""
    y: FloatArray = lfilter([1.0], [1.0, -c], x[:, ::-1], axis=1)[:, ::-1]
    return y


def _carry_powers(c: float, m: int) -> FloatArray:
    """``[c**m, ..., c**2, c]`` as exact running products of ``c`` (no pow, no division)."""
    p = np.cumprod(np.full(m, c))
    return p[::-1]


def _rows_constant(x: FloatArray, c: float) -> FloatArray:
    """Boundary-free recursion along axis 1 of a C-contiguous ``(R, L)`` array."""
    n_rows, length = x.shape
    pool = _pool()
    if pool is None or n_rows * length < _MIN_STEPS_FOR_THREADS or (n_rows == 1 and length < 2):
        return _lfilter_rows(x, c)
    if n_rows >= 2:  # independent rows: half of them on each thread
        half_rows = n_rows // 2
        fut_rows: Future[FloatArray] = pool.submit(_lfilter_rows, x[half_rows:], c)
        top = _lfilter_rows(x[:half_rows], c)
        out_rows = np.empty_like(x)
        out_rows[:half_rows] = top
        out_rows[half_rows:] = fut_rows.result()
        return out_rows
    # One long row: solve both halves at once, then add the carry of the second half to the
    # first, y_t += (c ** (h - t)) * y_h. Where c ** k has underflowed to exactly 0 the carry
    # adds exactly 0, so the update stops there: the result is the full recursion.
    h = length // 2
    fut: Future[FloatArray] = pool.submit(_lfilter_rows, x[:, h:], c)
    first = _lfilter_rows(x[:, :h], c)
    out = np.empty_like(x)
    out[:, :h] = first
    second = fut.result()
    out[:, h:] = second
    carry = float(second[0, 0])
    if c > 0.0 and carry != 0.0:
        m = h if c >= 1.0 else min(h, int(-746.0 / math.log(c)) + 2)
        seg = out[0, h - m : h]
        seg += _carry_powers(c, m) * carry
    return out


def _flat_with_boundaries(x: FloatArray, c: float, done: BoolArray, overwrite: bool) -> FloatArray:
    """Recursion on a 1-D sequence with per-step coefficients ``c * (1 - done_t)``.

    Written as the unit upper-bidiagonal system ``(I - diag_1(c_t)) y = x`` and solved by
    LAPACK's banded triangular solver: one back-substitution, no division.
    """
    n = x.shape[0]
    ab = np.empty((2, n), dtype=np.float64, order="F")  # row 1 (the unit diagonal) is unused
    ab[0, 0] = 0.0
    np.multiply(done[:-1], c, out=ab[0, 1:])
    np.subtract(ab[0, 1:], c, out=ab[0, 1:])  # = -c * (1 - done_t)
    y, info = lapack.dtbtrs(ab, x.reshape(n, 1), uplo="U", trans="N", diag="U",
                            overwrite_b=int(overwrite))
    if info != 0:  # pragma: no cover - a unit triangular system is never singular
        raise RuntimeError(f"dtbtrs failed with info={info}")
    out: FloatArray = y.reshape(n)
    return out


def _time_loop(x: FloatArray, c: float, done: BoolArray | None, overwrite: bool) -> FloatArray:
    """Recursion along axis 0 of a ``(T, B)`` array as a loop over time, vectorized over B."""
    n_steps = x.shape[0]
    out = x if overwrite else np.empty_like(x)
    if not overwrite:
        out[n_steps - 1] = x[n_steps - 1]
    tmp = np.empty_like(x[0])
    mul, add = np.multiply, np.add
    x_rows = list(x)
    y_rows = list(out)
    if done is None:
        for t in range(n_steps - 2, -1, -1):
            mul(y_rows[t + 1], c, out=tmp)
            add(x_rows[t], tmp, out=y_rows[t])
    else:
        coef = np.where(done, 0.0, c)
        c_rows = list(coef)
        for t in range(n_steps - 2, -1, -1):
            mul(y_rows[t + 1], c_rows[t], out=tmp)
            add(x_rows[t], tmp, out=y_rows[t])
    return out


def _recurrence(x: FloatArray, c: float, done: BoolArray | None, overwrite: bool) -> FloatArray:
    """Solve ``y_t = x_t + c * (1 - done_t) * y_{t+1}``, ``y_T = 0``, along axis 0.

    ``x`` is float64 of shape ``(T,)`` or ``(T, B)``; ``done`` is ``None`` (no boundaries) or
    bool of the same shape. With ``overwrite`` the result may be written into ``x``.
    Dispatch: no boundaries -> ``scipy.signal.lfilter`` per sequence (two threads for long
    inputs); boundaries and few environments -> one LAPACK banded solve over all
    environments laid end to end; many environments -> a numpy loop over time.
    """
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.float64)
    if c == 0.0:
        return x if overwrite else x.copy()
    if done is not None and not done.any():
        done = None
    if x.ndim == 2 and x.shape[1] >= _MIN_ENVS_FOR_TIME_LOOP:
        return _time_loop(x, c, done, overwrite)
    n_steps = x.shape[0]
    n_envs = 1 if x.ndim == 1 else x.shape[1]
    # environment-major layout: row b is environment b's sequence, contiguous in time
    rows = x.reshape(1, n_steps) if x.ndim == 1 else np.ascontiguousarray(x.T)
    if done is None:
        y = _rows_constant(rows, c)
    else:
        d_rows = done.reshape(1, n_steps) if done.ndim == 1 else np.ascontiguousarray(done.T)
        d_flat = d_rows.reshape(-1)
        if n_envs > 1:  # an environment's last step must not see the next environment
            d_flat = d_flat.copy()
            d_flat[n_steps - 1 :: n_steps] = True
        # a transposed copy is ours to overwrite; a view of the caller's array is not
        own = overwrite or not np.may_share_memory(rows, x)
        y = _flat_with_boundaries(rows.reshape(-1), c, d_flat, own).reshape(n_envs, n_steps)
    return y.reshape(n_steps) if x.ndim == 1 else y.T


# -- validation ----------------------------------------------------------------------------
def _time_major(name: str, x: Any) -> FloatArray:
    arr = check_finite(name, as_float_array(name, x, ndim=(1, 2)))
    return arr


def _same_shape(name: str, x: Any, shape: tuple[int, ...]) -> FloatArray:
    arr = check_finite(name, as_float_array(name, x))
    check_shape(name, arr, shape)
    return arr


def _done_flags(terminated: Any, truncated: Any, shape: tuple[int, ...]) -> tuple[
    BoolArray, BoolArray
]:
    term = check_bool_flags("terminated", terminated, shape)
    trunc = check_bool_flags("truncated", truncated, shape)
    return term, trunc


# -- public API ----------------------------------------------------------------------------
def discounted_cumsum(x: Any, discount: float, axis: int = 0) -> FloatArray:
    r"""Discounted cumulative sum from the end of an axis.

    Computes :math:`y_t = x_t + d \, y_{t+1}` with :math:`y_T = 0`, that is
    :math:`y_t = \sum_{k \ge t} d^{\,k-t} x_k`, along ``axis``.

    Parameters
    ----------
    x : array_like
        Finite real array with at least one dimension.
    discount : float
        The factor :math:`d`, in [0, 1].
    axis : int, optional
        The time axis (default 0).

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``x``.

    Notes
    -----
    Book: eq-vr-reward-to-go (the case without episode boundaries).
    Source: Sutton and Barto (2018), eq. 3.8.
    """
    arr = check_finite("x", as_float_array("x", x))
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension, got a scalar")
    d = check_gamma(discount, "discount", allow_one=True)
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"axis must be an integer, got {axis!r}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis must lie in [{-arr.ndim}, {arr.ndim}), got {axis}")
    moved = np.moveaxis(arr, int(axis), 0)
    flat = moved.reshape(moved.shape[0], -1) if moved.ndim > 1 else moved
    y = _recurrence(flat, d, None, overwrite=False)
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
    Book: eq-vr-reward-to-go. Source: Sutton and Barto (2018), eq. 3.8; Williams (1992).
    """
    r = _time_major("rewards", rewards)
    g = check_gamma(gamma, "gamma", allow_one=True)
    term, trunc = _done_flags(terminated, truncated, r.shape)
    done = np.logical_or(term, trunc)
    return _recurrence(r, g, done, overwrite=False)


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
    # delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t), computed in place
    delta = np.multiply(nv, g)
    if term.any():
        np.copyto(delta, 0.0, where=term)
    delta += r
    delta -= v
    done = np.logical_or(term, trunc)
    adv = _recurrence(delta, g * lm, done, overwrite=True)
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
    Source: Schulman et al. (2016), eqs. 11-16.
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
    Book: eq-vr-lambda-return. Source: Sutton and Barto (2018), eq. 12.3;
    Schulman et al. (2016), sec. 3.
    """
    adv, v = _gae_validated(rewards, values, next_values, gamma, lam, terminated, truncated)
    adv += v
    return adv
