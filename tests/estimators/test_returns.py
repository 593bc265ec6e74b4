"""Tests of rlnotes.estimators.returns against plain loops, closed forms and mutual identities."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlnotes
import rlnotes.estimators.returns as R

RTOL = 1e-12
ATOL = 1e-12

# -- plain-Python references: one scalar loop per environment column ------------------------


def _columns(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def ref_reward_to_go(
    r: np.ndarray, gamma: float, term: np.ndarray, trunc: np.ndarray
) -> np.ndarray:
    r2, te, tr = _columns(r), _columns(term), _columns(trunc)
    out = np.zeros(r2.shape)
    n_steps, n_envs = r2.shape
    for b in range(n_envs):
        g = 0.0
        for t in reversed(range(n_steps)):
            if te[t, b] or tr[t, b]:
                g = 0.0
            g = float(r2[t, b]) + gamma * g
            out[t, b] = g
    return out.reshape(r.shape)


def ref_gae(
    r: np.ndarray,
    v: np.ndarray,
    nv: np.ndarray,
    gamma: float,
    lam: float,
    term: np.ndarray,
    trunc: np.ndarray,
) -> np.ndarray:
    r2, v2, nv2 = _columns(r), _columns(v), _columns(nv)
    te, tr = _columns(term), _columns(trunc)
    n_steps, n_envs = r2.shape
    out = np.zeros(r2.shape)
    for b in range(n_envs):
        adv_next = 0.0
        for t in reversed(range(n_steps)):
            bootstrap = 0.0 if te[t, b] else gamma * float(nv2[t, b])
            delta = float(r2[t, b]) + bootstrap - float(v2[t, b])
            trace = 0.0 if (te[t, b] or tr[t, b] or t == n_steps - 1) else gamma * lam * adv_next
            out[t, b] = delta + trace
            adv_next = out[t, b]
    return out.reshape(r.shape)


def ref_lambda_return_rollout(
    r: np.ndarray,
    nv: np.ndarray,
    gamma: float,
    lam: float,
    term: np.ndarray,
    trunc: np.ndarray,
) -> np.ndarray:
    """TD(lambda) return by its own recursion (Sutton and Barto, eq. 12.3), no advantages."""
    r2, nv2, te, tr = _columns(r), _columns(nv), _columns(term), _columns(trunc)
    n_steps, n_envs = r2.shape
    out = np.zeros(r2.shape)
    for b in range(n_envs):
        g_next = 0.0
        for t in reversed(range(n_steps)):
            if te[t, b]:
                g = float(r2[t, b])
            else:
                lam_t = 0.0 if (tr[t, b] or t == n_steps - 1) else lam
                g = float(r2[t, b]) + gamma * ((1 - lam_t) * float(nv2[t, b]) + lam_t * g_next)
            out[t, b] = g
            g_next = g
    return out.reshape(r.shape)


# -- random inputs --------------------------------------------------------------------------


def make_inputs(
    seed: int, shape: tuple[int, ...], p_term: float, p_trunc: float, consistent: bool = False
) -> dict[str, Any]:
    """Rewards, values, next values and flags; ``consistent`` makes next_values a rollout's."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=shape)
    values = rng.normal(size=shape)
    term = rng.random(shape) < p_term
    trunc = (rng.random(shape) < p_trunc) & ~term
    next_values = rng.normal(size=shape)
    if consistent:
        # V(s_{t+1}) is the next row of values, except where the episode ended: there it is the
        # value of the final observation (truncated) or anything (terminated, never used).
        nxt = np.concatenate([values[1:], rng.normal(size=(1, *shape[1:]))])
        done = term | trunc
        next_values = np.where(done, next_values, nxt)
    return dict(
        rewards=rewards, values=values, next_values=next_values, terminated=term, truncated=trunc
    )


@contextlib.contextmanager
def dispatch(mode: str) -> Iterator[None]:
    """Force one solver path of rlnotes.estimators.returns, so every kernel meets every input."""
    saved = (R._MIN_ENVS_FOR_TIME_LOOP, R._MAX_SPARSE_ENDS_PER_STEP, R._CHUNK)
    if mode == "time_loop":  # sparse episode ends patched one by one
        R._MIN_ENVS_FOR_TIME_LOOP, R._MAX_SPARSE_ENDS_PER_STEP = 1, float("inf")
    elif mode == "time_loop_dense":  # a coefficient row per step
        R._MIN_ENVS_FOR_TIME_LOOP, R._MAX_SPARSE_ENDS_PER_STEP = 1, -1.0
    elif mode == "compiled":  # LAPACK on each environment's sequence, end to end
        R._MIN_ENVS_FOR_TIME_LOOP = 10**9
    elif mode == "chunked":  # the same in chunks of 3 steps joined by their carries
        R._MIN_ENVS_FOR_TIME_LOOP, R._CHUNK = 10**9, 3
    try:
        yield
    finally:
        R._MIN_ENVS_FOR_TIME_LOOP, R._MAX_SPARSE_ENDS_PER_STEP, R._CHUNK = saved


shapes = st.one_of(
    st.tuples(st.integers(1, 40)),
    st.tuples(st.integers(1, 30), st.integers(1, 6)),
)
unit = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]), st.floats(0.0, 1.0))
probs = st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0])
MODES = ["default", "time_loop", "time_loop_dense", "compiled", "chunked"]
modes = st.sampled_from(MODES)
seeds = st.integers(0, 2**31 - 1)


# -- differential tests ---------------------------------------------------------------------


def relayout(x: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout: Fortran order, or a strided view."""
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "strided":
        wide = np.zeros((2 * x.shape[0], *x.shape[1:]), dtype=x.dtype)
        wide[::2] = x
        return wide[::2]
    return x


layouts = st.sampled_from(["C", "F", "strided"])


@settings(max_examples=250, deadline=None)
@given(
    seed=seeds,
    shape=shapes,
    gamma=unit,
    lam=unit,
    p_term=probs,
    p_trunc=probs,
    mode=modes,
    layout=layouts,
)
def test_gae_matches_loop(
    seed: int,
    shape: tuple[int, ...],
    gamma: float,
    lam: float,
    p_term: float,
    p_trunc: float,
    mode: str,
    layout: str,
) -> None:
    d = make_inputs(seed, shape, p_term, p_trunc)
    expected = ref_gae(
        d["rewards"], d["values"], d["next_values"], gamma, lam, d["terminated"], d["truncated"]
    )
    with dispatch(mode):
        got = rlnotes.gae(gamma=gamma, lam=lam, **{k: relayout(v, layout) for k, v in d.items()})
    assert got.shape == shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@settings(max_examples=250, deadline=None)
@given(
    seed=seeds, shape=shapes, gamma=unit, p_term=probs, p_trunc=probs, mode=modes, layout=layouts
)
def test_reward_to_go_matches_loop(
    seed: int,
    shape: tuple[int, ...],
    gamma: float,
    p_term: float,
    p_trunc: float,
    mode: str,
    layout: str,
) -> None:
    d = {k: relayout(v, layout) for k, v in make_inputs(seed, shape, p_term, p_trunc).items()}
    expected = ref_reward_to_go(d["rewards"], gamma, d["terminated"], d["truncated"])
    with dispatch(mode):
        got = rlnotes.reward_to_go(d["rewards"], gamma, d["terminated"], d["truncated"])
    assert got.shape == shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@settings(max_examples=150, deadline=None)
@given(seed=seeds, shape=shapes, gamma=unit, lam=unit, p_term=probs, p_trunc=probs, mode=modes)
def test_lambda_returns_match_td_lambda_recursion(
    seed: int,
    shape: tuple[int, ...],
    gamma: float,
    lam: float,
    p_term: float,
    p_trunc: float,
    mode: str,
) -> None:
    # On a rollout (next_values[t] == values[t+1] inside episodes) the TD(lambda) recursion of
    # Sutton and Barto needs no advantages at all: an independent route to the same target.
    d = make_inputs(seed, shape, p_term, p_trunc, consistent=True)
    expected = ref_lambda_return_rollout(
        d["rewards"], d["next_values"], gamma, lam, d["terminated"], d["truncated"]
    )
    with dispatch(mode):
        got = rlnotes.lambda_returns(gamma=gamma, lam=lam, **d)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(seed=seeds, shape=shapes, gamma=unit, lam=unit, p_term=probs, p_trunc=probs)
def test_lambda_returns_are_gae_plus_values_off_rollout(
    seed: int, shape: tuple[int, ...], gamma: float, lam: float, p_term: float, p_trunc: float
) -> None:
    d = make_inputs(seed, shape, p_term, p_trunc)  # arbitrary next_values
    expected = (
        ref_gae(
            d["rewards"], d["values"], d["next_values"], gamma, lam, d["terminated"], d["truncated"]
        )
        + d["values"]
    )
    np.testing.assert_allclose(
        rlnotes.lambda_returns(gamma=gamma, lam=lam, **d), expected, rtol=RTOL, atol=ATOL
    )


@settings(max_examples=150, deadline=None)
@given(
    seed=seeds,
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple),
    discount=unit,
    data=st.data(),
    mode=modes,
)
def test_discounted_cumsum_matches_loop(
    seed: int, shape: tuple[int, ...], discount: float, data: st.DataObject, mode: str
) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).normal(size=shape)
    moved = np.moveaxis(x, axis, 0)
    expected = np.zeros(moved.shape)
    acc = np.zeros(moved.shape[1:])
    for t in reversed(range(moved.shape[0])):
        acc = moved[t] + discount * acc
        expected[t] = acc
    with dispatch(mode):
        got = rlnotes.discounted_cumsum(x, discount, axis=axis)
    np.testing.assert_allclose(got, np.moveaxis(expected, 0, axis), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(150_000,), (150_000, 1), (2000, 3), (600, 200)])
@pytest.mark.parametrize("boundaries", [False, True])
def test_large_inputs_every_path(mode: str, shape: tuple[int, ...], boundaries: bool) -> None:
    # long sequences, and many environments, with the benchmark's boundary rates
    d = make_inputs(7, shape, 1e-3 if boundaries else 0.0, 5e-4 if boundaries else 0.0)
    with dispatch(mode):
        got = rlnotes.gae(gamma=0.99, lam=0.95, **d)
        rtg = rlnotes.reward_to_go(d["rewards"], 0.999, d["terminated"], d["truncated"])
    exp = ref_gae(
        d["rewards"], d["values"], d["next_values"], 0.99, 0.95, d["terminated"], d["truncated"]
    )
    np.testing.assert_allclose(got, exp, rtol=1e-11, atol=1e-11)
    exp_rtg = ref_reward_to_go(d["rewards"], 0.999, d["terminated"], d["truncated"])
    np.testing.assert_allclose(rtg, exp_rtg, rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_undiscounted_long_sequence_is_exact(mode: str) -> None:
    # gamma = 1: integer sums, exact in float64 whatever the order of the additions
    with dispatch(mode):
        got = rlnotes.reward_to_go(np.ones((100_000, 2)), 1.0)
    expected = np.arange(100_000, 0, -1, dtype=np.float64)
    np.testing.assert_array_equal(got, np.stack([expected, expected], axis=1))


# -- analytic oracles -----------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("n_envs", [None, 1, 4, 300])
def test_constant_rewards_give_geometric_sums(gamma: float, n_envs: int | None) -> None:
    # episodes of lengths 5, 1, 7 (terminated, truncated, open end): G_t sums gamma^k over the
    # k = 0..L-1-j steps left in the episode, (1 - gamma^(L-j)) / (1 - gamma) or L - j.
    lengths = [5, 1, 7]
    T = sum(lengths)
    shape = (T,) if n_envs is None else (T, n_envs)
    term = np.zeros(T, bool)
    trunc = np.zeros(T, bool)
    term[4] = True
    trunc[5] = True
    expected = np.concatenate(
        [
            [(L - j) if gamma == 1.0 else (1 - gamma ** (L - j)) / (1 - gamma) for j in range(L)]
            for L in lengths
        ]
    )
    if n_envs is not None:
        term = np.repeat(term[:, None], n_envs, 1)
        trunc = np.repeat(trunc[:, None], n_envs, 1)
        expected = np.repeat(expected[:, None], n_envs, 1)
    got = rlnotes.reward_to_go(np.full(shape, 2.0), gamma, term, trunc)
    np.testing.assert_allclose(got, 2.0 * expected, rtol=1e-13, atol=1e-13)
    # discounted_cumsum is the boundary-free case
    dc = rlnotes.discounted_cumsum(np.ones(T), gamma)
    full = [(T - j) if gamma == 1.0 else (1 - gamma ** (T - j)) / (1 - gamma) for j in range(T)]
    np.testing.assert_allclose(dc, full, rtol=1e-13, atol=1e-13)


def test_gae_constant_td_error_is_geometric() -> None:
    # r = 1, V = 0 everywhere except next_values = c: delta = 1 + gamma c, A_t = delta *
    # (1 - (gamma lam)^(T-t)) / (1 - gamma lam)
    T, gamma, lam, c = 50, 0.97, 0.9, 0.5
    got = rlnotes.gae(np.ones(T), np.zeros(T), np.full(T, c), gamma, lam)
    k = np.arange(T, 0, -1)
    gl = gamma * lam
    np.testing.assert_allclose(got, (1 + gamma * c) * (1 - gl**k) / (1 - gl), rtol=1e-13)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, shape=shapes, gamma=unit, p_term=probs)
def test_lambda_one_is_monte_carlo_minus_value(
    seed: int, shape: tuple[int, ...], gamma: float, p_term: float
) -> None:
    # Only terminations, and the rollout ends with a termination: GAE(1) telescopes to the
    # Monte Carlo return minus the baseline (Schulman et al. 2016, sec. 3).
    d = make_inputs(seed, shape, p_term, 0.0, consistent=True)
    d["terminated"][-1] = True
    mc = ref_reward_to_go(d["rewards"], gamma, d["terminated"], d["truncated"])
    got = rlnotes.gae(gamma=gamma, lam=1.0, **d)
    np.testing.assert_allclose(got, mc - d["values"], rtol=1e-10, atol=1e-10)


def test_lambda_one_with_truncation_bootstraps_the_final_value() -> None:
    # one episode of 4 steps cut by truncation: A_0 = sum gamma^k r_k + gamma^4 V(s_4) - V(s_0)
    gamma = 0.9
    r = np.array([1.0, 2.0, 3.0, 4.0])
    v = np.array([0.5, -1.0, 2.0, 0.25])
    final = 10.0
    nv = np.append(v[1:], final)
    trunc = np.array([False, False, False, True])
    got = rlnotes.gae(r, v, nv, gamma, 1.0, truncated=trunc)
    expected0 = sum(gamma**k * r[k] for k in range(4)) + gamma**4 * final - v[0]
    assert got[0] == pytest.approx(expected0, rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, shape=shapes, gamma=unit, p_term=probs, p_trunc=probs)
def test_lambda_zero_is_one_step_td_error(
    seed: int, shape: tuple[int, ...], gamma: float, p_term: float, p_trunc: float
) -> None:
    d = make_inputs(seed, shape, p_term, p_trunc)
    delta = d["rewards"] + gamma * np.where(d["terminated"], 0.0, d["next_values"]) - d["values"]
    np.testing.assert_allclose(
        rlnotes.gae(gamma=gamma, lam=0.0, **d), delta, rtol=1e-14, atol=1e-14
    )
    # and its lambda-return is the one-step TD target
    np.testing.assert_allclose(
        rlnotes.lambda_returns(gamma=gamma, lam=0.0, **d),
        delta + d["values"],
        rtol=1e-14,
        atol=1e-14,
    )


# -- negative control -----------------------------------------------------------------------


def test_truncation_treated_as_termination_gives_different_numbers() -> None:
    d = make_inputs(3, (200, 3), 0.02, 0.05, consistent=True)
    assert d["truncated"].any()
    right = rlnotes.gae(gamma=0.99, lam=0.95, **d)
    wrong = rlnotes.gae(
        d["rewards"],
        d["values"],
        d["next_values"],
        0.99,
        0.95,
        terminated=d["terminated"] | d["truncated"],
    )
    assert not np.allclose(right, wrong)
    # exactly at a truncated step the difference is the dropped bootstrap gamma * V(s_final)
    tr = d["truncated"]
    np.testing.assert_allclose((right - wrong)[tr], 0.99 * d["next_values"][tr], rtol=1e-12)
    # and the loop reference agrees with the right one, not the wrong one
    ref = ref_gae(
        d["rewards"], d["values"], d["next_values"], 0.99, 0.95, d["terminated"], d["truncated"]
    )
    np.testing.assert_allclose(right, ref, rtol=RTOL, atol=ATOL)
    assert not np.allclose(wrong, ref)


# -- dtypes, flags, inputs left alone -------------------------------------------------------


@pytest.mark.parametrize("shape", [(300,), (300, 1), (300, 3), (40, 200)])
def test_float32_inputs_come_back_float64_and_exact(shape: tuple[int, ...]) -> None:
    d = make_inputs(11, shape, 0.02, 0.02)
    d32 = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in d.items()}
    ref_in = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in d32.items()}
    exp = ref_gae(
        ref_in["rewards"],
        ref_in["values"],
        ref_in["next_values"],
        0.99,
        0.95,
        d["terminated"],
        d["truncated"],
    )
    got = rlnotes.gae(gamma=0.99, lam=0.95, **d32)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, exp, rtol=1e-13, atol=1e-13)  # float32 maths: ~1e-7 off
    rtg = rlnotes.reward_to_go(d32["rewards"], 0.99, d["terminated"], d["truncated"])
    assert rtg.dtype == np.float64
    exp_rtg = ref_reward_to_go(ref_in["rewards"], 0.99, d["terminated"], d["truncated"])
    np.testing.assert_allclose(rtg, exp_rtg, rtol=1e-13, atol=1e-13)
    lr = rlnotes.lambda_returns(gamma=0.99, lam=0.95, **d32)
    assert lr.dtype == np.float64
    dc = rlnotes.discounted_cumsum(d32["rewards"], 0.9)
    assert dc.dtype == np.float64


def test_integer_flags_equal_bool_flags() -> None:
    d = make_inputs(5, (60, 2), 0.1, 0.1)
    as_int = dict(
        d, terminated=d["terminated"].astype(np.int64), truncated=d["truncated"].astype(np.int8)
    )
    np.testing.assert_array_equal(
        rlnotes.gae(gamma=0.9, lam=0.8, **as_int), rlnotes.gae(gamma=0.9, lam=0.8, **d)
    )


@pytest.mark.parametrize("shape", [(500,), (500, 1), (500, 2), (50, 300)])
@pytest.mark.parametrize("mode", MODES)
def test_inputs_are_not_modified(shape: tuple[int, ...], mode: str) -> None:
    d = make_inputs(2, shape, 0.05, 0.05)
    copies = {k: v.copy() for k, v in d.items()}
    for v in d.values():  # read-only inputs: any write into them raises
        v.setflags(write=False)
    with dispatch(mode):
        rlnotes.gae(gamma=0.9, lam=0.9, **d)
        rlnotes.lambda_returns(gamma=0.9, lam=0.9, **d)
        rlnotes.reward_to_go(d["rewards"], 0.9, d["terminated"], d["truncated"])
        rlnotes.reward_to_go(d["rewards"], 0.9)
        rlnotes.discounted_cumsum(d["rewards"], 0.9)
    for k, v in d.items():
        np.testing.assert_array_equal(v, copies[k], err_msg=k)


def test_empty_and_single_step() -> None:
    assert rlnotes.reward_to_go(np.zeros(0), 0.9).shape == (0,)
    assert rlnotes.gae(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), 0.9, 0.9).shape == (
        0,
        3,
    )
    got = rlnotes.gae([1.0], [0.5], [2.0], 0.9, 0.7)
    np.testing.assert_allclose(got, [1.0 + 0.9 * 2.0 - 0.5], rtol=1e-15)


# -- validation -----------------------------------------------------------------------------


def _good() -> dict[str, Any]:
    d = make_inputs(0, (10, 2), 0.1, 0.1)
    return dict(d, gamma=0.9, lam=0.9)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (dict(values=np.zeros((10, 3))), "values"),
        (dict(next_values=np.zeros(10)), "next_values"),
        (dict(rewards=np.zeros((10, 2, 1))), "rewards"),
        (dict(truncated=np.full((10, 2), 2)), "truncated"),
        (dict(truncated=np.zeros((9, 2), bool)), "truncated"),
        (dict(gamma=1.5), "gamma"),
        (dict(gamma=-0.1), "gamma"),
        (dict(gamma=float("nan")), "gamma"),
        (dict(lam=1.01), "lam"),
        (dict(rewards=np.array([[np.nan, 0.0]] * 10)), "rewards"),
        (dict(values=np.array([[0.0, np.inf]] * 10)), "values"),
        (dict(next_values=np.array([[-np.inf, 0.0]] * 10)), "next_values"),
    ],
)
def test_gae_and_lambda_returns_reject_bad_input(change: dict[str, Any], name: str) -> None:
    for fn in (rlnotes.gae, rlnotes.lambda_returns):
        with pytest.raises(ValueError, match=f"^{name} "):
            fn(**dict(_good(), **change))


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (dict(terminated=np.zeros((10, 2))), "terminated"),  # float flags are values, not a mask
        (dict(terminated="yes"), "terminated"),
        (dict(lam="x"), "lam"),
        (dict(gamma=True), "gamma"),  # a bool is not a discount factor
        (dict(gamma="0.9"), "gamma"),
        (dict(gamma=0.9 + 0j), "gamma"),
        (dict(rewards=[["a", "b"]] * 10), "rewards"),
        (dict(values=np.zeros((10, 2), complex)), "values"),
    ],
)
def test_gae_and_lambda_returns_reject_wrong_types(change: dict[str, Any], name: str) -> None:
    for fn in (rlnotes.gae, rlnotes.lambda_returns):
        with pytest.raises(TypeError, match=f"^{name} "):
            fn(**dict(_good(), **change))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(rewards=np.zeros((3, 2, 2)), gamma=0.9), "rewards"),
        (dict(rewards=np.array([1.0, np.nan]), gamma=0.9), "rewards"),
        (dict(rewards=np.array([1.0, np.inf]), gamma=0.9), "rewards"),
        (dict(rewards=np.zeros(3), gamma=2.0), "gamma"),
        (dict(rewards=np.zeros(3), gamma=0.9, truncated=np.zeros(4, bool)), "truncated"),
        (dict(rewards=np.zeros(3), gamma=0.9, truncated=np.array([0, 1, 3])), "truncated"),
    ],
)
def test_reward_to_go_rejects_bad_input(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} "):
        rlnotes.reward_to_go(**kwargs)


def test_reward_to_go_rejects_wrong_types() -> None:
    with pytest.raises(TypeError, match="^gamma must be a real number, got bool"):
        rlnotes.reward_to_go(np.ones(3), True)  # once computed the undiscounted return
    with pytest.raises(TypeError, match="^terminated must be a bool array"):
        rlnotes.reward_to_go(np.zeros(3), 0.9, terminated=np.zeros(3))
    with pytest.raises(TypeError, match="^rewards must hold real numbers, got complex"):
        rlnotes.reward_to_go(np.ones(3) + 1j, 0.9)  # once dropped the imaginary part


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((np.float64(1.0), 0.9), "x"),
        ((np.array([1.0, np.nan]), 0.9), "x"),
        ((np.array([1.0, np.inf]), 0.9), "x"),
        ((np.ones(3), 1.5), "gamma"),
        ((np.ones(3), 0.9, 1), "axis"),
    ],
)
def test_discounted_cumsum_rejects_bad_input(args: tuple[Any, ...], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} "):
        rlnotes.discounted_cumsum(*args)
    with pytest.raises(TypeError, match="^axis must be an integer"):
        rlnotes.discounted_cumsum(np.ones(3), 0.9, 0.5)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    seed=seeds,
    shape=shapes,
    gamma=unit,
    lam=unit,
    p_term=probs,
    p_trunc=probs,
    mode=modes,
    which=st.sampled_from(["rewards", "values", "next_values"]),
    sign=st.sampled_from([1, -1]),
    data=st.data(),
)
def test_an_inf_anywhere_is_named(
    seed: int,
    shape: tuple[int, ...],
    gamma: float,
    lam: float,
    p_term: float,
    p_trunc: float,
    mode: str,
    which: str,
    sign: int,
    data: st.DataObject,
) -> None:
    # inf is found from the result (it travels back to its episode's first step), so put one
    # anywhere, also where it is never used (next_values of a terminated step)
    d = make_inputs(seed, shape, p_term, p_trunc)
    flat_index = data.draw(st.integers(0, int(np.prod(shape)) - 1))
    d[which].reshape(-1)[flat_index] = sign * np.inf
    with dispatch(mode):
        with pytest.raises(ValueError, match=f"^{which} must be finite, got inf"):
            rlnotes.gae(gamma=gamma, lam=lam, **d)
        if which == "rewards":
            with pytest.raises(ValueError, match="^rewards must be finite, got inf"):
                rlnotes.reward_to_go(d["rewards"], gamma, d["terminated"], d["truncated"])
            with pytest.raises(ValueError, match="^x must be finite, got inf"):
                rlnotes.discounted_cumsum(d["rewards"], gamma)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("gamma", [1e-3, 0.5])
def test_an_inf_far_from_the_start_is_found(mode: str, gamma: float) -> None:
    # gamma ** 999 underflows: the carry across chunks must still bring the inf back to t = 0
    r = np.ones(1000)
    r[-1] = np.inf
    with dispatch(mode), pytest.raises(ValueError, match="^rewards must be finite, got inf"):
        rlnotes.reward_to_go(r, gamma)
    with dispatch(mode), pytest.raises(ValueError, match="^rewards must be finite, got inf"):
        rlnotes.gae(r, np.zeros(1000), np.zeros(1000), gamma, 1.0)


def test_overflow_is_an_error_not_inf() -> None:
    big = np.full(10, 1e308)
    with pytest.raises(OverflowError, match="^rewards too large"):
        rlnotes.reward_to_go(big, 1.0)
    with pytest.raises(OverflowError, match="^rewards too large"):
        rlnotes.gae(big, np.zeros(10), np.zeros(10), 1.0, 1.0)
