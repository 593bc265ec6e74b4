"""Finite Markov decision processes: ``P[s, a, s']``, ``R[s, a]``, ``mu0[s]`` and ``gamma``.

A :class:`TabularMDP` is immutable and validated once, so every algorithm that takes one
can trust its shapes and probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlnotes.core.validation import (
    PROB_ATOL,
    FloatArray,
    as_float_array,
    check_distribution,
    check_finite,
    check_gamma,
    check_positive_int,
    check_shape,
    read_only_copy,
)


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite discounted MDP (Puterman 1994, ch. 2).

    Parameters
    ----------
    P : array, shape (S, A, S)
        Transition probabilities ``P[s, a, s'] = Pr(s' | s, a)``; each ``P[s, a]`` sums to 1.
    R : array, shape (S, A)
        Expected immediate reward ``R[s, a] = E[r | s, a]``.
    gamma : float
        Discount factor in [0, 1).
    mu0 : array, shape (S,), optional
        Initial-state distribution; uniform when omitted.

    The arrays are copied and made read-only. ``TabularMDP.from_gymnasium`` builds one from the
    model of a gymnasium toy-text environment.
    """

    P: FloatArray
    R: FloatArray
    gamma: float
    mu0: FloatArray = field(default=None)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        P = as_float_array("P", self.P, ndim=3)
        n_states, n_actions, n_next = P.shape
        if n_states == 0 or n_actions == 0:
            raise ValueError(f"P must have at least one state and one action, got shape {P.shape}")
        if n_next != n_states:
            raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
        check_distribution("P", check_finite("P", P), axis=2)
        R = check_finite("R", as_float_array("R", self.R, ndim=2))
        check_shape("R", R, (n_states, n_actions))
        gamma = check_gamma(self.gamma)
        if self.mu0 is None:
            mu0 = np.full(n_states, 1.0 / n_states)
        else:
            mu0 = check_finite("mu0", as_float_array("mu0", self.mu0, ndim=1))
            check_shape("mu0", mu0, (n_states,))
            check_distribution("mu0", mu0)
        object.__setattr__(self, "P", read_only_copy(P))
        object.__setattr__(self, "R", read_only_copy(R))
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "mu0", read_only_copy(mu0))

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return int(self.P.shape[1])

    @classmethod
    def from_gymnasium(cls, env: Any, gamma: float) -> TabularMDP:
        """The tabular model of a gymnasium toy-text environment, plus one absorbing state.

        Reads the model ``env.unwrapped.P[s][a]``, a list of
        ``(prob, next_state, reward, terminated)`` outcomes, and sets

        .. math::

            P(s' \\mid s, a) = \\sum_{k:\\, s'_k = s',\\, \\neg d_k} p_k, \\qquad
            P(\\bar s \\mid s, a) = \\sum_{k:\\, d_k} p_k, \\qquad
            R(s, a) = \\sum_k p_k r_k,

        where :math:`d_k` is the ``terminated`` flag of outcome :math:`k`. Outcomes listed twice
        are summed. Every terminated outcome leads to one extra absorbing state :math:`\\bar s`
        (index ``S``, the last) with :math:`P(\\bar s \\mid \\bar s, a) = 1` and
        :math:`R(\\bar s, a) = 0`, so :math:`V^\\pi(\\bar s) = 0` for every policy and the
        discounted values of the model equal the expected discounted returns of the episodic
        environment (Sutton and Barto 2018, sec. 3.4). This matters because CliffWalking's goal and
        Taxi's drop-off state are not absorbing in ``P``: their rows describe moves that the
        environment never makes after termination. The returned MDP therefore has
        ``env.observation_space.n + 1`` states; ``mu0`` is the environment's
        ``initial_state_distrib`` (FrozenLake: the start cell; CliffWalking: the start cell;
        Taxi: uniform over the 300 valid starts), with mass 0 on :math:`\\bar s`.

        Covers FrozenLake-v1, CliffWalking-v1 and Taxi-v4 (dry or rainy; not
        ``fickle_passenger=True``, whose dynamics are not in ``P``).

        Parameters
        ----------
        env : gymnasium.Env
            A toy-text environment (wrapped or not) with discrete spaces and a model ``P``.
        gamma : float
            Discount factor in [0, 1); the environment has none of its own.

        Returns
        -------
        TabularMDP
            With ``S + 1`` states, where ``S = env.observation_space.n``.
        """
        g = check_gamma(gamma)
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
        P = np.zeros((n_states + 1, n_actions, n_states + 1))
        R = np.zeros((n_states + 1, n_actions))
        for s in range(n_states):
            row = model.get(s)
            if not isinstance(row, dict):
                raise ValueError(f"env.unwrapped.P has no entry for state {s}")
            for a in range(n_actions):
                outcomes = row.get(a)
                if not outcomes:
                    raise ValueError(f"env.unwrapped.P[{s}][{a}] lists no outcomes")
                for outcome in outcomes:
                    prob, nxt, reward, terminated = outcome
                    nxt_i = int(nxt)
                    if not 0 <= nxt_i < n_states:
                        raise ValueError(
                            f"env.unwrapped.P[{s}][{a}] leads to state {nxt_i}, "
                            f"outside 0..{n_states - 1}"
                        )
                    P[s, a, absorbing if terminated else nxt_i] += float(prob)
                    R[s, a] += float(prob) * float(reward)
        totals = P[:n_states].sum(axis=2)
        if not np.allclose(totals, 1.0, atol=PROB_ATOL, rtol=0.0):
            s_bad, a_bad = np.unravel_index(np.argmax(np.abs(totals - 1.0)), totals.shape)
            raise ValueError(
                f"env.unwrapped.P[{s_bad}][{a_bad}] probabilities sum to "
                f"{totals[s_bad, a_bad]:.6g}, not 1"
            )
        P[absorbing, :, absorbing] = 1.0
        isd = getattr(base, "initial_state_distrib", None)
        if isd is None:
            raise ValueError("env has no initial_state_distrib to take mu0 from")
        isd_arr = as_float_array("env.initial_state_distrib", isd, ndim=1)
        check_shape("env.initial_state_distrib", isd_arr, (n_states,))
        mu0 = np.append(isd_arr, 0.0)
        return cls(P=P, R=R, gamma=g, mu0=mu0)

    def check_policy(self, pi: Any, name: str = "pi") -> FloatArray:
        """Validate a stochastic policy ``pi[s, a]`` for this MDP and return it as float64."""
        arr = check_finite(name, as_float_array(name, pi, ndim=2))
        check_shape(name, arr, (self.n_states, self.n_actions))
        return check_distribution(name, arr, axis=1)

    def check_q(self, Q: Any, name: str = "Q") -> FloatArray:
        """Validate an action-value table ``Q[s, a]`` for this MDP and return it as float64."""
        arr = check_finite(name, as_float_array(name, Q, ndim=2))
        check_shape(name, arr, (self.n_states, self.n_actions))
        return arr


def discrete_space_size(name: str, space: Any) -> int:
    """The size ``n`` of a gymnasium ``Discrete(n)`` space that starts at 0."""
    n = getattr(space, "n", None)
    if n is None or int(getattr(space, "start", 0)) != 0:
        raise ValueError(f"{name} must be a gymnasium Discrete space starting at 0, got {space!r}")
    return check_positive_int(name, int(n))


def check_mdp(mdp: Any, name: str = "mdp") -> TabularMDP:
    """Require a :class:`TabularMDP` (the validated model every tabular algorithm takes)."""
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"{name} must be a TabularMDP, got {type(mdp).__name__}")
    return mdp


def random_mdp(
    n_states: int,
    n_actions: int,
    gamma: float,
    seed: int | None = None,
    *,
    branching: int | None = None,
) -> TabularMDP:
    """A random MDP with Dirichlet(1) transition rows and standard-normal rewards.

    With ``branching=k`` each ``(s, a)`` reaches only ``k`` random next states (a sparse model).
    The initial distribution is uniform. The same seed gives the same MDP.
    """
    S = check_positive_int("n_states", n_states)
    A = check_positive_int("n_actions", n_actions)
    g = check_gamma(gamma)
    rng = np.random.default_rng(seed)
    if branching is None:
        P = rng.dirichlet(np.ones(S), size=(S, A))
    else:
        k = check_positive_int("branching", branching)
        if k > S:
            raise ValueError(f"branching must be <= n_states={S}, got {k}")
        P = np.zeros((S, A, S))
        for s in range(S):
            for a in range(A):
                nxt = rng.choice(S, size=k, replace=False)
                P[s, a, nxt] = rng.dirichlet(np.ones(k))
    R = rng.standard_normal((S, A))
    return TabularMDP(P=P, R=R, gamma=g)
