"""Tests of the chapter-2 weightings of rlnotes.nn.reinforce (learned baseline and GAE)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnotes.nn.reinforce import (
    CRITIC_WEIGHTINGS,
    TRAIN_WEIGHTINGS,
    _episode_weights,
    _value_targets,
    train_reinforce,
)


def _loop_rtg(r: np.ndarray, gamma: float) -> np.ndarray:
    T = len(r)
    return np.array([sum(gamma ** (k - t) * r[k] for k in range(t, T)) for t in range(T)])


def _loop_gae(
    r: np.ndarray, v: np.ndarray, last: float, gamma: float, lam: float
) -> np.ndarray:
    T = len(r)
    nxt = [v[t + 1] if t + 1 < T else last for t in range(T)]
    delta = [r[t] + gamma * nxt[t] - v[t] for t in range(T)]
    return np.array(
        [sum((gamma * lam) ** k * delta[t + k] for k in range(T - t)) for t in range(T)]
    )


episode = st.integers(1, 25).flatmap(
    lambda T: st.tuples(
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
    )
)


@settings(max_examples=60, deadline=None)
@given(
    ep=episode,
    gamma=st.floats(0, 1),
    lam=st.floats(0, 1),
    last=st.floats(-5, 5),
)
def test_critic_weights_match_plain_loops(
    ep: tuple[list[float], list[float]], gamma: float, lam: float, last: float
) -> None:
    r, v = np.array(ep[0]), np.array(ep[1])
    scale = gamma ** np.arange(len(r), dtype=float)
    w_b = _episode_weights(r, gamma, "reward_to_go_baseline", v, last_value=last, lam=lam)
    np.testing.assert_allclose(w_b, scale * (_loop_rtg(r, gamma) - v), rtol=1e-9, atol=1e-9)
    w_g = _episode_weights(r, gamma, "gae", v, last_value=last, lam=lam)
    np.testing.assert_allclose(w_g, scale * _loop_gae(r, v, last, gamma, lam), rtol=1e-9, atol=1e-8)
    tgt = _value_targets(r, gamma, "gae", v, last_value=last, lam=lam)
    np.testing.assert_allclose(tgt, _loop_gae(r, v, last, gamma, lam) + v, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(
        _value_targets(r, gamma, "reward_to_go_baseline", v, last_value=last, lam=lam),
        _loop_rtg(r, gamma),
        rtol=1e-9,
        atol=1e-9,
    )


def test_gae_weights_at_lambda_one_equal_baselined_reward_to_go() -> None:
    # eq-vr-gae-limits: lambda = 1 with a terminated end (last value 0) is G_t - V(s_t).
    rng = np.random.default_rng(0)
    r, v = rng.standard_normal(30), rng.standard_normal(30)
    w_g = _episode_weights(r, 0.97, "gae", v, last_value=0.0, lam=1.0)
    w_b = _episode_weights(r, 0.97, "reward_to_go_baseline", v)
    np.testing.assert_allclose(w_g, w_b, rtol=1e-10, atol=1e-12)


def test_truncated_episode_bootstraps_and_terminated_does_not() -> None:
    r, v = np.ones(4), np.zeros(4)
    w_term = _episode_weights(r, 0.5, "gae", v, last_value=0.0, lam=1.0)
    w_trunc = _episode_weights(r, 0.5, "gae", v, last_value=8.0, lam=1.0)
    # negative control: the bootstrap value must change the weights, by gamma^(T-t) * 8 * gamma^t
    np.testing.assert_allclose(w_trunc - w_term, np.full(4, 0.5**4 * 8.0), rtol=1e-12)


def test_critic_weightings_need_values() -> None:
    with pytest.raises(ValueError, match="values"):
        _episode_weights(np.ones(3), 0.9, "gae")
    with pytest.raises(ValueError, match="values"):
        _episode_weights(np.ones(3), 0.9, "reward_to_go_baseline", np.ones(2))


@pytest.mark.parametrize("weighting", CRITIC_WEIGHTINGS)
def test_train_with_critic_is_seeded_and_returns_a_curve(weighting: str) -> None:
    kw = dict(n_iterations=3, episodes_per_iteration=2, learning_rate=0.01, weighting=weighting)
    a = train_reinforce(seed=3, **kw)  # type: ignore[arg-type]
    b = train_reinforce(seed=3, **kw)  # type: ignore[arg-type]
    assert a.shape == (3,) and np.all(a >= 1) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)


def test_critic_options_do_not_touch_the_old_weightings() -> None:
    kw = dict(n_iterations=3, episodes_per_iteration=2, learning_rate=0.01, seed=1)
    base = train_reinforce(weighting="reward_to_go", **kw)  # type: ignore[arg-type]
    other = train_reinforce(
        weighting="reward_to_go", lam=0.1, value_learning_rate=0.5, **kw  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(base, other)


def test_gae_lambda_changes_training() -> None:
    # negative control: lam is really used by the "gae" weighting
    kw = dict(n_iterations=4, episodes_per_iteration=3, learning_rate=0.05, seed=2, weighting="gae")
    a = train_reinforce(lam=0.0, **kw)  # type: ignore[arg-type]
    b = train_reinforce(lam=1.0, **kw)  # type: ignore[arg-type]
    assert not np.array_equal(a, b)


def test_new_weightings_are_listed_and_argument_errors() -> None:
    assert set(CRITIC_WEIGHTINGS) <= set(TRAIN_WEIGHTINGS)
    kw = dict(n_iterations=1, episodes_per_iteration=1, learning_rate=0.01, weighting="gae")
    with pytest.raises(ValueError, match="lam"):
        train_reinforce(lam=1.5, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="value_learning_rate"):
        train_reinforce(value_learning_rate=0.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weighting"):
        train_reinforce(n_iterations=1, episodes_per_iteration=1, learning_rate=0.01,
                        weighting="advantage")
