"""Tests of rlnotes.td.qlearning.soft_q_learning: the Q-learning loop with the soft target."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from scipy.special import logsumexp
from test_qlearning import BanditEnv, TinyEnv, reference_td_control

from rlnotes.core.mdp import TabularMDP
from rlnotes.dp.soft import soft_value_iteration
from rlnotes.td.qlearning import _soft_max_of_row, q_learning, soft_q_learning


def episodic_soft_model(env: Any, gamma: float, alpha: float) -> TabularMDP:
    """from_gymnasium's model with reward -alpha log A in the absorbing state (value 0)."""
    mdp = TabularMDP.from_gymnasium(env, gamma=gamma, sparse=False)
    R = np.array(mdp.R)
    R[-1] = -alpha * math.log(mdp.n_actions)
    return TabularMDP(P=mdp.P, R=R, gamma=gamma, mu0=mdp.mu0)


def soft_target(alpha: float) -> Any:
    return lambda row: float(alpha * logsumexp(np.asarray(row) / alpha))


@pytest.mark.parametrize("alpha", [0.05, 1.0])
def test_matches_the_independent_loop(alpha: float) -> None:
    env = TinyEnv()
    res = soft_q_learning(env, 3_000, 0.9, alpha, epsilon=0.4, omega=0.7, seed=5)
    ref = reference_td_control(TinyEnv(), 3_000, 0.9, 0.7, 0.4, 5, soft_target(alpha))
    np.testing.assert_allclose(res.Q, ref, rtol=0, atol=1e-12)


def test_converges_to_the_soft_optimum() -> None:
    env = TinyEnv()
    gamma, alpha = 0.8, 0.5
    mdp = episodic_soft_model(env, gamma, alpha)
    plan = soft_value_iteration(mdp, alpha, tol=1e-12)
    assert abs(plan.V[-1]) < 1e-11  # the absorbing state is worth nothing
    res = soft_q_learning(env, 40_000, gamma, alpha, omega=0.7, Q_ref=plan.Q, seed=3)
    assert res.errors is not None
    assert res.errors[-1] < 0.05
    assert res.errors[-1] < res.errors[0] / 10
    # and not to the hard Q*, which differs by far more than the final error
    hard = q_learning(env, 40_000, gamma, omega=0.7, seed=3)
    assert np.max(np.abs(hard.Q - res.Q)) > 5 * res.errors[-1]


def test_small_alpha_is_q_learning() -> None:
    env = TinyEnv()
    a = soft_q_learning(env, 2_000, 0.9, 1e-9, epsilon=0.5, seed=2)
    b = q_learning(env, 2_000, 0.9, epsilon=0.5, seed=2)
    np.testing.assert_allclose(a.Q, b.Q, atol=1e-7)


def test_soft_row_value_is_exact_at_extreme_scales() -> None:
    for alpha, row in [
        (1e-6, np.array([1e3, -1e3, 999.0])),
        (1e-6, np.array([-1e3, -1e3, -1e3])),
        (1e6, np.array([1e3, -1e3, 0.0])),
        (0.3, np.array([0.1, 0.2])),
    ]:
        expected = alpha * logsumexp(row / alpha)
        assert _soft_max_of_row(alpha)(row) == pytest.approx(expected, rel=1e-14, abs=1e-300)


def test_terminated_steps_do_not_bootstrap() -> None:
    res = soft_q_learning(BanditEnv((1.0, 0.0)), 200, 0.9, 10.0, seed=0)
    np.testing.assert_allclose(res.Q[0], [1.0, 0.0])


def test_truncated_steps_bootstrap_the_soft_value() -> None:
    from test_qlearning import LoopEnv

    gamma, alpha = 0.5, 0.7  # one action: the soft value equals the value, 1 / (1 - gamma)
    env = gym.wrappers.TimeLimit(LoopEnv(), max_episode_steps=1)
    res = soft_q_learning(env, 20_000, gamma, alpha, omega=0.55, seed=0)
    assert res.Q[0, 0] == pytest.approx(1 / (1 - gamma), abs=1e-3)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_alpha_values(alpha: float) -> None:
    with pytest.raises(ValueError, match="^alpha") as err:
        soft_q_learning(TinyEnv(), 10, 0.9, alpha)
    if alpha == 0.0:
        assert "q_learning" in str(err.value)


@pytest.mark.parametrize("alpha", ["0.1", True, 1j, object(), None])
def test_bad_alpha_types(alpha: Any) -> None:
    with pytest.raises(TypeError, match="^alpha"):
        soft_q_learning(TinyEnv(), 10, 0.9, alpha)


def test_other_bad_arguments() -> None:
    with pytest.raises(TypeError, match="^env"):
        soft_q_learning("env", 10, 0.9, 0.1)
    with pytest.raises(ValueError, match="^gamma"):
        soft_q_learning(TinyEnv(), 10, 1.0, 0.1)
    with pytest.raises(TypeError, match="^n_steps"):
        soft_q_learning(TinyEnv(), 10.0, 0.9, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^keep_snapshots"):
        soft_q_learning(TinyEnv(), 10, 0.9, 0.1, keep_snapshots=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^seed"):
        soft_q_learning(TinyEnv(), 10, 0.9, 0.1, seed="1")  # type: ignore[arg-type]
