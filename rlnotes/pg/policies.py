"""Tabular softmax policies and their score function.

A tabular softmax policy has one real logit per state-action pair, ``theta[s, a]``, and
chooses action ``a`` in state ``s`` with probability proportional to ``exp(theta[s, a])``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlnotes.core.validation import FloatArray, as_array, check_index_array

__all__ = ["softmax_policy", "softmax_score"]


def _check_theta(theta: Any, name: str = "theta") -> FloatArray:
    """Validate a logit table of shape (S, A) with S, A >= 1 and finite entries."""
    arr = as_array(name, theta, ndim=2)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one state and one action, got {arr.shape}")
    return arr


def softmax_policy(theta: Any) -> FloatArray:
    r"""The tabular softmax policy of a logit table.

    .. math:: \pi_\theta(a \mid s) = \frac{\exp\theta_{s a}}{\sum_{b} \exp\theta_{s b}}

    computed stably by subtracting each row's maximum before exponentiating.
    Book: def-sf-softmax. Source: Sutton et al. (2000), section 1.

    Parameters
    ----------
    theta : array, shape (S, A)
        Finite real logits.

    Returns
    -------
    pi : array, shape (S, A)
        Each row is a probability vector.
    """
    th = _check_theta(theta)
    z = th - th.max(axis=1, keepdims=True)
    e = np.exp(z)
    pi: FloatArray = e / e.sum(axis=1, keepdims=True)
    return pi


def softmax_score(theta: Any, states: Any, actions: Any, *, dense: bool = False) -> FloatArray:
    r"""The score of a tabular softmax policy at given state-action pairs.

    .. math::
        \frac{\partial \log \pi_\theta(a \mid s)}{\partial \theta_{s' b}}
        = \mathbb{1}[s' = s] \left( \mathbb{1}[b = a] - \pi_\theta(b \mid s) \right)

    Only the row :math:`s' = s` of the score is non-zero, so by default only that row is
    returned: ``score[..., b]`` is the derivative with respect to ``theta[s, b]``, where ``s``
    is the state of the same pair. That takes ``A`` numbers per pair instead of ``S * A``.
    ``dense=True`` returns the whole ``(S, A)`` table per pair (S times the memory; meant for
    small examples).
    Book: eq-sf-softmax-score. Source: Williams (1992), section 6 (exponential-family units).

    Parameters
    ----------
    theta : array, shape (S, A)
        Finite real logits.
    states, actions : int arrays of equal shape
        States in ``[0, S)`` and actions in ``[0, A)``.
    dense : bool
        Return the full table (see above).

    Returns
    -------
    score : array, shape (\*states.shape, A), or (\*states.shape, S, A) with ``dense``
        The non-zero row of the score of each pair, or the whole score.
    """
    th = _check_theta(theta)
    n_states, n_actions = th.shape
    s = check_index_array("states", states, n_states)
    a = check_index_array("actions", actions, n_actions)
    if s.shape != a.shape:
        raise ValueError(f"actions must have the shape of states {s.shape}, got {a.shape}")
    if not isinstance(dense, bool):
        raise TypeError(f"dense must be a bool, got {type(dense).__name__}")
    pi = softmax_policy(th)
    row = -pi[s]  # (*shape, A)
    np.put_along_axis(row, a[..., None], np.take_along_axis(row, a[..., None], -1) + 1.0, -1)
    if not dense:
        out: FloatArray = row
        return out
    full = np.zeros((*s.shape, n_states, n_actions))
    np.put_along_axis(full, s[..., None, None], row[..., None, :], axis=-2)
    return full
