r"""Tabular Q-learning on a gymnasium environment with discrete observations and actions.

The sampled counterpart of :math:`T^*`: each transition :math:`(s, a, r, s')` moves
:math:`Q(s, a)` toward the target :math:`r + \gamma \max_{a'} Q(s', a')`. With step sizes that
satisfy the Robbins--Monro conditions and every pair visited infinitely often, :math:`Q_t \to Q^*`
with probability one (Watkins and Dayan 1992; Tsitsiklis 1994).

Soft Q-learning (Fox, Pakman and Tishby 2016; Haarnoja et al. 2017) is the same loop with the
soft target :math:`r + \gamma\, \alpha \log \sum_{a'} \exp(Q(s', a') / \alpha)`, the sampled
counterpart of the soft Bellman operator :math:`T_\alpha` of :mod:`rlnotes.dp.soft`. The loop
takes the bootstrap value of the next state's row as a function, so both share every line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlnotes.core.mdp import discrete_space_size
from rlnotes.core.validation import (
    FloatArray,
    as_float_array,
    check_finite,
    check_flag,
    check_gamma,
    check_positive_int,
    check_real,
    check_seed,
    check_shape,
)

__all__ = ["QLearningResult", "q_learning", "soft_q_learning"]

IntArray = NDArray[np.int64]

_CHUNK = 65_536


@dataclass(frozen=True, eq=False)
class QLearningResult:
    r"""The output of :func:`q_learning` and :func:`soft_q_learning`.

    Parameters
    ----------
    Q : array, shape (S, A)
        The final table, over the environment's ``S`` states.
    visits : array of int, shape (S, A)
        How many updates each pair received, :math:`n_T(s, a)`.
    steps : array of int, shape (K,)
        The environment steps ``t`` at which ``errors`` (and ``snapshots``) were recorded;
        ``steps[0] == 0`` (the initial table) and ``steps[-1] == n_steps``.
    errors : array, shape (K,) or None
        :math:`\|Q_t - Q_{\mathrm{ref}}\|_\infty` at those steps, when ``Q_ref`` was given.
    snapshots : array, shape (K, S, A) or None
        Copies of :math:`Q_t` at those steps, when ``keep_snapshots=True``.
    episodes : int
        Number of episodes started (resets).

    Notes
    -----
    ``Q`` and ``visits`` are read-only. Book: thm-bell-qlearning, thm-soft-qlearning.
    """

    Q: FloatArray
    visits: IntArray
    steps: IntArray
    errors: FloatArray | None
    snapshots: FloatArray | None
    episodes: int


def _env_sizes(env: Any) -> tuple[int, int]:
    """``(S, A)`` of an environment with ``Discrete`` spaces; TypeError for a non-environment."""
    if not all(hasattr(env, attr) for attr in ("reset", "step", "observation_space")):
        raise TypeError(
            "env must be a gymnasium environment with reset, step and Discrete spaces, "
            f"got {type(env).__name__}"
        )
    S = discrete_space_size("env.observation_space", getattr(env, "observation_space", None))
    A = discrete_space_size("env.action_space", getattr(env, "action_space", None))
    return S, A


def q_learning(
    env: Any,
    n_steps: int,
    gamma: float,
    *,
    omega: float = 0.8,
    epsilon: float = 1.0,
    Q0: Any = None,
    Q_ref: Any = None,
    record_every: int | None = None,
    keep_snapshots: bool = False,
    seed: int | None = None,
) -> QLearningResult:
    r"""Tabular Q-learning with polynomial Robbins--Monro step sizes.

    After each step :math:`(s_t, a_t, r_t, s_{t+1})` of ``env``,

    .. math::

        Q(s_t, a_t) \leftarrow Q(s_t, a_t) + \alpha_t \bigl(r_t
        + \gamma (1 - d_t) \max_{a'} Q(s_{t+1}, a') - Q(s_t, a_t)\bigr),
        \qquad \alpha_t = (1 + n_t(s_t, a_t))^{-\omega},

    where :math:`n_t(s, a)` counts the earlier updates of the pair and :math:`d_t` is the
    ``terminated`` flag. For :math:`\omega \in (1/2, 1]` the steps satisfy
    :math:`\sum_t \alpha_t = \infty` and :math:`\sum_t \alpha_t^2 < \infty` per pair, the
    condition of Watkins and Dayan (1992) for :math:`Q_t \to Q^*`. A ``truncated`` step (a time
    limit) bootstraps from :math:`s_{t+1}`, as the discounted infinite-horizon :math:`Q^*` of
    :class:`~rlnotes.core.mdp.TabularMDP` ``.from_gymnasium`` requires; both flags end the
    episode and the environment is reset. The behaviour is :math:`\varepsilon`-greedy in
    :math:`Q` (ties broken at random); the default :math:`\varepsilon = 1` is the uniform
    policy, which visits every reachable pair infinitely often.
    Book: eq-bell-q-update, thm-bell-qlearning.
    Source: Watkins and Dayan (1992).

    Parameters
    ----------
    env : gymnasium.Env
        An environment with ``Discrete`` observation and action spaces (e.g. FrozenLake-v1).
    n_steps : int
        Number of environment steps (updates).
    gamma : float
        Discount factor in [0, 1).
    omega : float, optional
        Step-size exponent in (0.5, 1] (default 0.8).
    epsilon : float, optional
        Exploration probability in [0, 1] (default 1, uniform behaviour).
    Q0 : array, shape (S, A), optional
        Initial table (default zeros).
    Q_ref : array, shape (S, A) or (S + 1, A), optional
        A reference, usually :math:`Q^*` of the model; a table with one row more (the absorbing
        state added by ``from_gymnasium``) is compared on its first ``S`` rows.
    record_every : int, optional
        Record errors and snapshots every this many steps (default ``max(1, n_steps // 100)``).
    keep_snapshots : bool, optional
        Keep copies of :math:`Q_t` at the recorded steps.
    seed : int, optional
        Seeds the behaviour policy and the first ``env.reset``; the same seed gives the same run.

    Returns
    -------
    QLearningResult
    """
    return _td_control(
        env,
        n_steps,
        gamma,
        _hard_max,
        omega=omega,
        epsilon=epsilon,
        Q0=Q0,
        Q_ref=Q_ref,
        record_every=record_every,
        keep_snapshots=keep_snapshots,
        seed=seed,
    )


def _hard_max(row: FloatArray) -> float:
    return float(row.max())


def _soft_max_of_row(alpha: float) -> Callable[[FloatArray], float]:
    r"""The scalar :math:`\alpha \log \sum_a \exp(q_a / \alpha)` of one row, shifted by its max.

    The same shifted formula as :func:`rlnotes.dp.soft.soft_bellman_operator` (which calls
    ``scipy.special.logsumexp``), written with :mod:`math` because the loop calls it once per
    step on a row of ``A`` numbers, where scipy's per-call overhead would dominate.
    Every term is :math:`\exp(x)` with :math:`x \le 0` and one term is 1, so it cannot overflow
    for any :math:`\alpha > 0`.
    """

    def value(row: FloatArray) -> float:
        xs: list[float] = row.tolist()
        m = max(xs)
        total = 0.0
        for x in xs:
            total += math.exp((x - m) / alpha)
        out = m + alpha * math.log(total)
        if not math.isfinite(out):
            raise OverflowError(f"the soft maximum overflowed float64 (alpha = {alpha:.3g})")
        return out

    return value


def soft_q_learning(
    env: Any,
    n_steps: int,
    gamma: float,
    alpha: float,
    *,
    omega: float = 0.8,
    epsilon: float = 1.0,
    Q0: Any = None,
    Q_ref: Any = None,
    record_every: int | None = None,
    keep_snapshots: bool = False,
    seed: int | None = None,
) -> QLearningResult:
    r"""Tabular soft Q-learning: :func:`q_learning` with the soft target.

    After each step :math:`(s_t, a_t, r_t, s_{t+1})` of ``env``,

    .. math::

        Q(s_t, a_t) \leftarrow Q(s_t, a_t) + \eta_t \Bigl(r_t + \gamma (1 - d_t)\,
        \alpha \log \sum_{a'} \exp\bigl(Q(s_{t+1}, a') / \alpha\bigr) - Q(s_t, a_t)\Bigr),
        \qquad \eta_t = (1 + n_t(s_t, a_t))^{-\omega},

    with everything else (step sizes, ``terminated`` / ``truncated``, the
    :math:`\varepsilon`-greedy behaviour, recording, seeding) exactly as in :func:`q_learning`;
    the two share one loop. Averaged over the next state the target is the soft Bellman
    operator :math:`T_\alpha Q`, a :math:`\gamma`-contraction, so under the same conditions
    :math:`Q_t \to Q^*_\alpha`. The behaviour policy does not change the limit (off-policy).
    A terminated step does not bootstrap: the entropy bonus stops at termination (in the model
    of :meth:`~rlnotes.core.mdp.TabularMDP.from_gymnasium` this is an absorbing state whose
    reward is :math:`-\alpha \log A`). Book: eq-soft-q-update, thm-soft-qlearning.
    Source: Fox, Pakman and Tishby (2016); Haarnoja et al. (2017).

    Parameters
    ----------
    env : gymnasium.Env
        An environment with ``Discrete`` observation and action spaces.
    n_steps : int
        Number of environment steps (updates).
    gamma : float
        Discount factor in [0, 1).
    alpha : float
        Temperature, a finite number > 0 (``alpha -> 0`` is :func:`q_learning`).
    omega, epsilon, Q0, Q_ref, record_every, keep_snapshots, seed
        As in :func:`q_learning`; ``Q_ref`` is usually :math:`Q^*_\alpha` of the model.

    Returns
    -------
    QLearningResult
    """
    a = check_real("alpha", alpha)
    if a <= 0.0:
        hint = "; alpha = 0 is plain Q-learning: use q_learning" if a == 0.0 else ""
        raise ValueError(f"alpha must be a finite number > 0, got {a}{hint}")
    return _td_control(
        env,
        n_steps,
        gamma,
        _soft_max_of_row(a),
        omega=omega,
        epsilon=epsilon,
        Q0=Q0,
        Q_ref=Q_ref,
        record_every=record_every,
        keep_snapshots=keep_snapshots,
        seed=seed,
    )


def _td_control(
    env: Any,
    n_steps: int,
    gamma: float,
    bootstrap: Callable[[FloatArray], float],
    *,
    omega: float,
    epsilon: float,
    Q0: Any,
    Q_ref: Any,
    record_every: int | None,
    keep_snapshots: bool,
    seed: int | None,
) -> QLearningResult:
    """The loop shared by :func:`q_learning` and :func:`soft_q_learning`.

    ``bootstrap(Q[s'])`` is the value of the next state's row: its maximum, or its soft maximum.
    """
    S, A = _env_sizes(env)
    T = check_positive_int("n_steps", n_steps)
    g = check_gamma(gamma)
    w = check_real("omega", omega, low=0.5, high=1.0, low_open=True)
    eps = check_real("epsilon", epsilon, low=0.0, high=1.0)
    if Q0 is None:
        Q = np.zeros((S, A))
    else:
        Q = check_finite("Q0", as_float_array("Q0", Q0, ndim=2)).copy()
        check_shape("Q0", Q, (S, A))
    ref: FloatArray | None = None
    if Q_ref is not None:
        ref = check_finite("Q_ref", as_float_array("Q_ref", Q_ref, ndim=2))
        if ref.shape == (S + 1, A):
            ref = ref[:S]
        check_shape("Q_ref", ref, (S, A))
    every = (
        max(1, T // 100)
        if record_every is None
        else check_positive_int("record_every", record_every)
    )
    snapshots = check_flag("keep_snapshots", keep_snapshots)
    if seed is not None:
        seed = check_seed("seed", seed)

    rng = np.random.default_rng(seed)
    counts = np.zeros((S, A), dtype=np.int64)
    rec_steps: list[int] = []
    rec_errors: list[float] = []
    rec_snaps: list[FloatArray] = []

    def record(t: int) -> None:
        rec_steps.append(t)
        if ref is not None:
            rec_errors.append(float(np.max(np.abs(Q - ref))))
        if snapshots:
            rec_snaps.append(Q.copy())

    record(0)
    obs, _ = env.reset(seed=seed)
    s = _state(obs, S)
    episodes = 1
    done_steps = 0
    while done_steps < T:
        n = min(_CHUNK, T - done_steps)
        explore = rng.random(n) < eps
        random_actions = rng.integers(0, A, size=n)
        tie_break = rng.random((n, A))
        for i in range(n):
            if explore[i]:
                a = int(random_actions[i])
            else:
                q_s = Q[s]
                a = int(np.argmax(np.where(q_s == q_s.max(), tie_break[i], -1.0)))
            obs, reward, terminated, truncated, _ = env.step(a)
            s_next = _state(obs, S)
            target = float(reward)
            if not terminated:
                target += g * bootstrap(Q[s_next])
            c = counts[s, a]
            alpha = (1.0 + c) ** (-w)
            Q[s, a] += alpha * (target - Q[s, a])
            counts[s, a] = c + 1
            t = done_steps + i + 1
            if terminated or truncated:
                obs, _ = env.reset()
                s = _state(obs, S)
                episodes += 1
            else:
                s = s_next
            if t % every == 0 or t == T:
                record(t)
        done_steps += n

    Q.setflags(write=False)
    counts.setflags(write=False)
    return QLearningResult(
        Q=Q,
        visits=counts,
        steps=np.array(rec_steps, dtype=np.int64),
        errors=None if ref is None else np.array(rec_errors),
        snapshots=np.stack(rec_snaps) if snapshots else None,
        episodes=episodes,
    )


def _state(obs: Any, n_states: int) -> int:
    s = int(obs)
    if not 0 <= s < n_states:
        raise ValueError(f"env returned observation {obs!r} outside 0..{n_states - 1}")
    return s
