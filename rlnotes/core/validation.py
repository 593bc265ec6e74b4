"""Argument checks shared by every public function of rlnotes.

One rule for the whole package: a wrong *type* (a string, a bool where a number is meant, a
complex number, an arbitrary object) raises :class:`TypeError`; a wrong *value* (a shape, NaN,
a number out of range, rows that do not sum to one) raises :class:`ValueError`. Every message
starts with the argument's name and says, in words, what was expected and what came. A
computed result that overflows raises :class:`OverflowError` instead of being returned.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = [
    "PROB_ATOL",
    "FloatArray",
    "as_array",
    "as_float_array",
    "check_bool_flags",
    "check_distribution",
    "check_finite",
    "check_finite_result",
    "check_flag",
    "check_gamma",
    "check_index_array",
    "check_positive_int",
    "check_positive_real",
    "check_random_state",
    "check_real",
    "check_seed",
    "check_shape",
    "read_only_copy",
]

FloatArray = NDArray[np.float64]

#: Tolerance for "sums to one" checks on probability vectors.
PROB_ATOL = 1e-8

#: Seeds are integers in [0, 2**63), the range numpy, torch and gymnasium all accept.
SEED_LIMIT = 2**63

_KIND_NAMES = {
    "b": "booleans",
    "c": "complex numbers",
    "U": "strings",
    "S": "bytes",
    "O": "Python objects",
    "M": "dates",
    "m": "time deltas",
    "V": "raw records",
}


def _describe(x: Any) -> str:
    """A short description of a value for an error message."""
    if isinstance(x, np.ndarray):
        return f"a {x.ndim}-d {x.dtype} array of shape {x.shape}"
    text = repr(x)
    return f"{type(x).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _from_tensor(x: Any) -> Any:
    """A torch tensor (possibly requiring grad, possibly on a GPU) as a numpy array."""
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


def _shape_text(shape: Sequence[int | None]) -> str:
    inner = ", ".join("any" if n is None else str(n) for n in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def as_array(
    name: str,
    x: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: DTypeLike = np.float64,
    finite: bool = True,
) -> NDArray[Any]:
    """Return ``x`` as an array of ``dtype``, accepting only real numbers.

    Parameters
    ----------
    name : str
        The argument's name, used in every message.
    x : array-like
        Numbers: nested lists, numpy arrays or torch tensors of integers or floats.
        Booleans, complex numbers, strings and objects raise ``TypeError``.
    ndim : int or tuple of int, optional
        The allowed numbers of dimensions.
    shape : sequence of int or None, optional
        The required shape; ``None`` in a position accepts any length there.
    dtype : numpy dtype
        The result's type (float64 by default).
    finite : bool
        Reject infinite entries too (NaN is always rejected for float results).
    """
    x = _from_tensor(x)
    if isinstance(x, str | bytes):
        raise TypeError(f"{name} must be an array of numbers, got a string {x!r:.40}")
    try:
        raw = np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers ({err})") from err
    if raw.dtype.kind in _KIND_NAMES:
        raise TypeError(
            f"{name} must hold real numbers, got {_KIND_NAMES[raw.dtype.kind]} "
            f"({_describe(x) if not isinstance(x, np.ndarray) else _describe(raw)})"
        )
    arr = raw.astype(dtype, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{k}-d" for k in allowed)
            raise ValueError(f"{name} must be a {want} array, got shape {arr.shape}")
    if shape is not None:
        check_shape(name, arr, shape)
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            where = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
            raise ValueError(f"{name} contains NaN (first at index {where})")
        if finite and not np.isfinite(arr).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ValueError(f"{name} must be finite, got inf at index {where}")
    return arr


def as_float_array(name: str, x: Any, ndim: int | tuple[int, ...] | None = None) -> FloatArray:
    """:func:`as_array` as float64 that lets infinities through (NaN is still rejected)."""
    return as_array(name, x, ndim=ndim, finite=False)


def check_finite(name: str, arr: FloatArray) -> FloatArray:
    """Reject infinite entries of an input (NaN is already rejected by :func:`as_array`)."""
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite, got inf at index {where}")
    return arr


def check_finite_result(what: str, arr: Any) -> Any:
    """Raise :class:`OverflowError` when a computed result is not finite."""
    if not np.isfinite(np.asarray(arr)).all():
        raise OverflowError(
            f"{what} overflowed float64 (the inputs are too large for this computation); "
            "rescale them"
        )
    return arr


def check_shape(name: str, arr: NDArray[Any], shape: Sequence[int | None]) -> None:
    """Require ``arr.shape == shape``; ``None`` in ``shape`` matches any length."""
    ok = arr.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(arr.shape, shape, strict=False)
    )
    if not ok:
        raise ValueError(f"{name} must have shape {_shape_text(shape)}, got shape {arr.shape}")


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """Return a real scalar as float, in the interval given by ``low`` and ``high``.

    A bool, a string, a complex number or an array raises ``TypeError``; NaN, an infinity
    (when ``finite``) or a number outside the interval raises ``ValueError``.
    """
    value = _from_tensor(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    x = float(value)
    if np.isnan(x):
        raise ValueError(f"{name} must be a number, got NaN")
    if finite and not np.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and (x >= high if high_open else x > high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{left}, {right}"
        interval += ")" if high_open or high is None else "]"
        raise ValueError(f"{name} must lie in {interval}, got {x}")
    return x


def check_gamma(gamma: Any, name: str = "gamma", *, allow_one: bool = False) -> float:
    """Return a discount factor as float; it must lie in [0, 1) (or [0, 1] if ``allow_one``)."""
    return check_real(name, gamma, low=0.0, high=1.0, high_open=not allow_one)


def check_positive_real(name: str, value: Any) -> float:
    """Return a finite real number > 0 (a tolerance, a step size, a learning rate)."""
    return check_real(name, value, low=0.0, low_open=True)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Require an integer (not a bool, not a float) of at least ``minimum``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_flag(name: str, x: Any) -> bool:
    """A plain bool (or numpy bool): ``TypeError`` for anything else, such as 0/1 or a string."""
    if not isinstance(x, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {_describe(x)}")
    return bool(x)


def check_seed(name: str, seed: Any) -> int:
    """Return a seed as a Python int in [0, 2**63), the range numpy, torch and gymnasium accept."""
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name} must be an integer seed, got {_describe(seed)}")
    if not 0 <= int(seed) < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**63), got {int(seed)}")
    return int(seed)


def check_random_state(name: str, seed: Any) -> np.random.Generator:
    """A numpy Generator from a seed in [0, 2**63) or an existing Generator (used as is).

    In the style of scikit-learn's ``check_random_state``, without a global-state default:
    every result of rlnotes is reproducible from its arguments.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(name, seed))


def check_index_array(name: str, x: Any, upper: int) -> NDArray[np.int64]:
    """Return ``x`` as an int64 array whose entries lie in ``[0, upper)``.

    Only integer arrays are accepted (a float array is never silently truncated, a bool
    array never mistaken for indices); unsigned values beyond int64 are rejected, not wrapped.
    """
    arr = np.asarray(_from_tensor(x))
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an array of integers, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())  # Python ints: uint64 cannot wrap
        if lo < 0 or hi >= upper:
            raise ValueError(f"{name} must lie in [0, {upper}), got values in [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)


def check_distribution(name: str, arr: FloatArray, axis: int = -1) -> FloatArray:
    """Require non-negative entries that sum to one along ``axis``; return them renormalized.

    Sums within :data:`PROB_ATOL` of one are accepted and divided out, so that every
    downstream computation sees exact probability vectors.
    """
    if (arr < 0).any():
        where = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative, got {arr[where]:.3g} at index {where}")
    sums = arr.sum(axis=axis, keepdims=True)
    if not np.allclose(sums, 1.0, atol=PROB_ATOL, rtol=0.0):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(
            f"{name} must sum to 1 along axis {axis}; the worst row is off by {worst:.3g}"
        )
    out: FloatArray = arr / sums
    return out


def check_bool_flags(name: str, flags: Any, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Return episode-boundary flags as a bool array of ``shape`` (``None`` means all False).

    Bool arrays, and integer arrays holding only 0 and 1, are accepted; a float array (values,
    not a mask), a string or an integer array with other values is an error naming ``name``.
    """
    if flags is None:
        return np.zeros(shape, dtype=bool)
    if isinstance(flags, str | bytes):
        raise TypeError(f"{name} must be a bool array, got a string {flags!r:.40}")
    arr = np.asarray(_from_tensor(flags))
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be a bool array, got dtype {arr.dtype}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold only True/False (or 0/1), got other integers")
        arr = arr.astype(bool)
    check_shape(name, arr, shape)
    return arr


def read_only_copy(arr: Any, dtype: Any = np.float64) -> NDArray[Any]:
    """A private copy of ``arr`` as ``dtype`` that cannot be written to (for frozen dataclasses)."""
    out = np.array(arr, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out
