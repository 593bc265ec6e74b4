r"""Off-policy value estimates by importance sampling: ordinary and per-decision.

Episodes of a *behaviour* policy :math:`b` are reweighted to estimate the value of a
*target* policy :math:`\pi`. With the per-step ratios
:math:`\rho_t = \pi(a_t \mid s_t) / b(a_t \mid s_t)` and their running products
:math:`\rho_{0:t} = \prod_{k=0}^{t} \rho_k`, an episode of ``H`` steps gives

.. math::

    \hat V_{\mathrm{IS}} = \rho_{0:H-1} \sum_{t=0}^{H-1} \gamma^t r_t, \qquad
    \hat V_{\mathrm{PD}} = \sum_{t=0}^{H-1} \gamma^t \rho_{0:t}\, r_t .

Both are unbiased for :math:`V^\pi_0(s_0) = \mathbb{E}_\pi[\sum_{t<H} \gamma^t r_t]` when
:math:`b(a \mid s) > 0` wherever :math:`\pi(a \mid s) > 0`; the per-decision form weights the
reward of step ``t`` only by the ratios of the actions taken up to ``t``, which the reward can
depend on. Arrays are time-major, ``(H, N)`` for ``N`` episodes of ``H`` steps.

Sources: Precup, Sutton and Singh (2000), "Eligibility traces for off-policy policy
evaluation"; Sutton and Barto (2018), sec. 5.5 and 5.9.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlnotes.core.validation import FloatArray, as_array, check_finite_result, check_gamma

__all__ = ["importance_ratios", "ordinary_is_values", "per_decision_is_values"]


def _episode_arrays(
    rewards: Any, target_probs: Any, behaviour_probs: Any
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r = as_array("rewards", rewards, ndim=2)
    shape = r.shape
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"rewards must hold at least one step of one episode, got shape {shape}")
    p = as_array("target_probs", target_probs, shape=shape)
    q = as_array("behaviour_probs", behaviour_probs, shape=shape)
    if (p < 0).any() or (p > 1).any():
        raise ValueError(
            "target_probs must lie in [0, 1] (probabilities of the taken actions), "
            f"got values in [{p.min():.3g}, {p.max():.3g}]"
        )
    if (q <= 0).any() or (q > 1).any():
        raise ValueError(
            "behaviour_probs must lie in (0, 1]: an action the behaviour policy took had "
            f"positive probability under it; got values in [{q.min():.3g}, {q.max():.3g}]"
        )
    return r, p, q


def importance_ratios(target_probs: Any, behaviour_probs: Any) -> FloatArray:
    r"""Running products of importance ratios, :math:`\rho_{0:t} = \prod_{k \le t} \pi_k / b_k`.

    Book: eq-qp-per-decision. Source: Precup et al. (2000).

    Parameters
    ----------
    target_probs : array_like, shape (H, N)
        :math:`\pi(a_t \mid s_t)` of the taken actions, in [0, 1].
    behaviour_probs : array_like, shape (H, N)
        :math:`b(a_t \mid s_t)` of the taken actions, in (0, 1].

    Returns
    -------
    numpy.ndarray, shape (H, N)
        ``out[t, n]`` is :math:`\rho_{0:t}` of episode ``n``.
    """
    p = as_array("target_probs", target_probs, ndim=2)
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(
            f"target_probs must hold at least one step of one episode, got shape {p.shape}"
        )
    _, p, q = _episode_arrays(np.zeros(p.shape), p, behaviour_probs)
    with np.errstate(over="ignore", invalid="ignore"):
        out: FloatArray = np.cumprod(p / q, axis=0, dtype=np.float64)
    check_finite_result("the importance ratios", out)
    return out


def ordinary_is_values(
    rewards: Any, target_probs: Any, behaviour_probs: Any, gamma: float
) -> FloatArray:
    r"""Ordinary importance-sampling estimates of :math:`V^\pi_0(s_0)`, one per episode.

    .. math:: \hat V_{\mathrm{IS}} = \rho_{0:H-1} \sum_{t=0}^{H-1} \gamma^t r_t

    Book: eq-qp-per-decision (the estimator it improves on). Source: Precup et al. (2000).

    Parameters
    ----------
    rewards : array_like, shape (H, N)
        Rewards of ``N`` episodes of ``H`` steps drawn with the behaviour policy.
    target_probs : array_like, shape (H, N)
        :math:`\pi(a_t \mid s_t)` of the taken actions, in [0, 1].
    behaviour_probs : array_like, shape (H, N)
        :math:`b(a_t \mid s_t)` of the taken actions, in (0, 1].
    gamma : float
        Discount factor in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (N,)
    """
    r, p, q = _episode_arrays(rewards, target_probs, behaviour_probs)
    g = check_gamma(gamma, allow_one=True)
    disc = g ** np.arange(r.shape[0], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        out: FloatArray = np.prod(p / q, axis=0) * (disc @ r)
    check_finite_result("the importance-sampling estimate", out)
    return out


def per_decision_is_values(
    rewards: Any, target_probs: Any, behaviour_probs: Any, gamma: float
) -> FloatArray:
    r"""Per-decision importance-sampling estimates of :math:`V^\pi_0(s_0)`, one per episode.

    .. math:: \hat V_{\mathrm{PD}} = \sum_{t=0}^{H-1} \gamma^t \rho_{0:t}\, r_t

    Book: eq-qp-per-decision. Source: Precup et al. (2000), "per-decision importance
    sampling".

    Parameters
    ----------
    rewards : array_like, shape (H, N)
        Rewards of ``N`` episodes of ``H`` steps drawn with the behaviour policy.
    target_probs : array_like, shape (H, N)
        :math:`\pi(a_t \mid s_t)` of the taken actions, in [0, 1].
    behaviour_probs : array_like, shape (H, N)
        :math:`b(a_t \mid s_t)` of the taken actions, in (0, 1].
    gamma : float
        Discount factor in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (N,)
    """
    r, p, q = _episode_arrays(rewards, target_probs, behaviour_probs)
    g = check_gamma(gamma, allow_one=True)
    disc = g ** np.arange(r.shape[0], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        rho = np.cumprod(p / q, axis=0, dtype=np.float64)
        out: FloatArray = np.einsum("t,tn->n", disc, rho * r)
    check_finite_result("the per-decision importance-sampling estimate", out)
    return out
