"""Speed of rlnotes.gae and rlnotes.reward_to_go against the routes a reader would otherwise take.

Run ``python benchmarks/returns.py`` (add ``--quick`` for the short version the book's
performance appendix executes). Inputs, all float64 and time-major:

* 10^6 steps of one environment, shape (10^6, 1), and 1024 environments x 1000 steps;
* each without episode boundaries, and with them: every step terminates with probability 1e-3
  and otherwise truncates with probability 5e-4 (fixed seed).

Peers, each written here the way a careful user would write it:

* ``lfilter``: scipy.signal.lfilter, once per episode segment of every environment column;
* ``numpy loop``: a Python loop over time, vectorized across environments;
* ``SB3``: Stable-Baselines3's ``RolloutBuffer.compute_returns_and_advantage`` with float64
  buffers. SB3 reads the next value from the next row of ``values`` and treats a truncation as
  a termination; its rollout collection adds ``gamma * V(final observation)`` to the reward of a
  truncated step instead, and so does the setup here, so that it computes the same numbers.
  For the reward-to-go it runs with ``gae_lambda=1`` and zero values;
* ``jax``: rlax's GAE (a ``jax.lax.scan``) under ``jax.jit`` and ``jax.vmap``, float64, if jax and
  rlax are installed (same reward adjustment as SB3 for truncation).

Every peer's result is checked against rlnotes with ``np.allclose`` before it is timed. Times are
best-of-k wall-clock times, the candidates interleaved round by round so that a busy machine
slows them alike; ``ratio`` is the fastest peer's time over rlnotes' time (above 1: rlnotes is
faster), ``vs jax`` is rlnotes' time over jax's.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.signal import lfilter

import rlnotes

try:
    from benchmarks.timing import best_of, markdown_table, run_cli
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from timing import best_of, markdown_table, run_cli  # type: ignore[no-redef,import-not-found]

GAMMA = 0.99
LAM = 0.95
P_TERMINATE = 1e-3
P_TRUNCATE = 5e-4
SEED = 2024
SHAPES = ((10**6, 1), (1000, 1024))
PEERS = ("lfilter", "numpy loop", "SB3")

Array = np.ndarray[Any, np.dtype[Any]]


# -- inputs ----------------------------------------------------------------------------------
def make_rollout(n_steps: int, n_envs: int, boundaries: bool, seed: int = SEED) -> dict[str, Any]:
    """A rollout of random rewards and values whose next values are the next row of values,
    except after an episode's end: the final observation's value (truncated) or unused noise."""
    rng = np.random.default_rng(seed)
    shape = (n_steps, n_envs)
    rewards = rng.normal(size=shape)
    values = rng.normal(size=shape)
    last_values = rng.normal(size=n_envs)
    if boundaries:
        u = rng.random(shape)
        terminated = u < P_TERMINATE
        truncated = (u >= P_TERMINATE) & (u < P_TERMINATE + P_TRUNCATE)
    else:
        terminated = np.zeros(shape, dtype=bool)
        truncated = np.zeros(shape, dtype=bool)
    next_values = np.concatenate([values[1:], last_values[None]])
    done = terminated | truncated
    next_values[done] = rng.normal(size=int(done.sum()))
    return dict(
        rewards=rewards,
        values=values,
        next_values=next_values,
        terminated=terminated,
        truncated=truncated,
    )


# -- peers -------------------------------------------------------------------------------------
def td_errors(d: dict[str, Any], gamma: float) -> Array:
    delta: Array = d["rewards"] + gamma * d["next_values"] * (1.0 - d["terminated"]) - d["values"]
    return delta


def lfilter_per_episode(x: Array, coef: float, done: Array) -> Array:
    """y_t = x_t + coef * y_{t+1} inside each episode: one lfilter per episode segment."""
    xt = np.ascontiguousarray(x.T)  # environment-major: each column contiguous in time
    dt = np.ascontiguousarray(done.T)
    yt = np.empty_like(xt)
    n_steps = xt.shape[1]
    for b in range(xt.shape[0]):
        start = 0
        for end in [*np.flatnonzero(dt[b]).tolist(), n_steps - 1]:
            if end >= start:
                seg = xt[b, start : end + 1]
                yt[b, start : end + 1] = lfilter([1.0], [1.0, -coef], seg[::-1])[::-1]
                start = end + 1
    return yt.T


def lfilter_gae(d: dict[str, Any]) -> Array:
    return lfilter_per_episode(td_errors(d, GAMMA), GAMMA * LAM, d["terminated"] | d["truncated"])


def lfilter_rtg(d: dict[str, Any]) -> Array:
    return lfilter_per_episode(d["rewards"], GAMMA, d["terminated"] | d["truncated"])


def loop_recursion(x: Array, coef: float, done: Array) -> Array:
    out = np.empty_like(x)
    keep = coef * (1.0 - done)
    last = np.zeros(x.shape[1])
    for t in reversed(range(x.shape[0])):
        last = x[t] + keep[t] * last
        out[t] = last
    return out


def loop_gae(d: dict[str, Any]) -> Array:
    return loop_recursion(td_errors(d, GAMMA), GAMMA * LAM, d["terminated"] | d["truncated"])


def loop_rtg(d: dict[str, Any]) -> Array:
    return loop_recursion(d["rewards"], GAMMA, d["terminated"] | d["truncated"])


def sb3_buffer(d: dict[str, Any], rtg: bool) -> tuple[Any, Any, Array]:
    """A float64 RolloutBuffer filled so that SB3 computes rlnotes' GAE (or reward-to-go)."""
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    n_steps, n_envs = d["rewards"].shape
    box = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    buf = RolloutBuffer(
        n_steps, box, box, device="cpu", gae_lambda=1.0 if rtg else LAM, gamma=GAMMA, n_envs=n_envs
    )
    done = d["terminated"] | d["truncated"]
    starts = np.zeros((n_steps, n_envs))
    starts[1:] = done[:-1]
    buf.episode_starts = starts
    buf.advantages = np.zeros((n_steps, n_envs))
    if rtg:
        buf.rewards = d["rewards"].copy()
        buf.values = np.zeros((n_steps, n_envs))
        last_values = torch.zeros(n_envs, dtype=torch.float64)
    else:
        # what SB3's collect_rollouts does on truncation: bootstrap through the reward
        buf.rewards = d["rewards"] + GAMMA * np.where(d["truncated"], d["next_values"], 0.0)
        buf.values = d["values"].copy()
        last_values = torch.from_numpy(d["next_values"][-1].copy())
    return buf, last_values, done[-1].copy()


def sb3_runner(d: dict[str, Any], rtg: bool) -> Callable[[], Array]:
    buf, last_values, last_dones = sb3_buffer(d, rtg)

    def run() -> Array:
        buf.compute_returns_and_advantage(last_values=last_values, dones=last_dones)
        out: Array = buf.advantages
        return out

    return run


def jax_runners(d: dict[str, Any]) -> dict[str, Callable[[], Any]] | None:
    """rlax GAE and discounted returns, jitted, vmapped over environments; None without jax."""
    try:
        jax = importlib.import_module("jax")
        rlax = importlib.import_module("rlax")
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    done = d["terminated"] | d["truncated"]
    discount = jnp.asarray(GAMMA * (1.0 - done))
    values_ext = jnp.asarray(np.concatenate([d["values"], d["next_values"][-1:]]))
    bootstrap = GAMMA * np.where(d["truncated"], d["next_values"], 0.0)
    rewards_adj = jnp.asarray(d["rewards"] + bootstrap)
    # after an episode's end the discount is 0, so values[t + 1] is never read there; a
    # truncated step has its bootstrap gamma * V(final observation) in the reward instead.
    rewards = jnp.asarray(d["rewards"])

    gae_fn = jax.jit(
        jax.vmap(
            lambda r, disc, v: rlax.truncated_generalized_advantage_estimation(r, disc, LAM, v),
            in_axes=(1, 1, 1),
            out_axes=1,
        )
    )
    rtg_fn = jax.jit(
        jax.vmap(
            lambda r, disc: rlax.discounted_returns(r, disc, jnp.zeros_like(r)),
            in_axes=(1, 1),
            out_axes=1,
        )
    )

    # the timed call ends when the device array is ready; its copy to numpy is not timed
    def run_gae() -> Any:
        return gae_fn(rewards_adj, discount, values_ext).block_until_ready()

    def run_rtg() -> Any:
        return rtg_fn(rewards, discount).block_until_ready()

    run_gae()  # compile outside the timing
    run_rtg()
    return {"gae": run_gae, "reward_to_go": run_rtg}


def rlnotes_gae(d: dict[str, Any]) -> Array:
    return rlnotes.gae(gamma=GAMMA, lam=LAM, **d)


def rlnotes_rtg(d: dict[str, Any]) -> Array:
    return rlnotes.reward_to_go(d["rewards"], GAMMA, d["terminated"], d["truncated"])


OURS = {"gae": rlnotes_gae, "reward_to_go": rlnotes_rtg}
LFILTER = {"gae": lfilter_gae, "reward_to_go": lfilter_rtg}
LOOP = {"gae": loop_gae, "reward_to_go": loop_rtg}


# -- timing --------------------------------------------------------------------------------------
def measure(quick: bool = False) -> list[dict[str, Any]]:
    """Time rlnotes and its peers on the four inputs; one row per (function, input).

    ``quick`` takes fewer repeats and skips the two Python-loop peers on the 10^6-step input
    (each takes seconds there; the full run measures them).
    """
    k, budget = (15, 0.5) if quick else (40, 4.0)
    have_sb3 = importlib.util.find_spec("stable_baselines3") is not None
    rows: list[dict[str, Any]] = []
    for n_steps, n_envs in SHAPES:
        for boundaries in (False, True):
            d = make_rollout(n_steps, n_envs, boundaries)
            jax_fns = jax_runners(d)
            skip_loops = quick and n_envs == 1
            for fname in ("gae", "reward_to_go"):
                rtg = fname == "reward_to_go"
                ours = functools.partial(OURS[fname], d)
                cands: dict[str, Callable[[], Any]] = {"rlnotes": ours}
                cands["lfilter"] = functools.partial(LFILTER[fname], d)
                if not skip_loops:
                    cands["numpy loop"] = functools.partial(LOOP[fname], d)
                    if have_sb3:
                        cands["SB3"] = sb3_runner(d, rtg)
                if jax_fns is not None:
                    cands["jax"] = jax_fns[fname]
                best, outs = best_of(cands, k, budget_s=budget)
                # every candidate must return rlnotes' numbers, or its time means nothing
                ref = outs["rlnotes"]
                assert ref.dtype == np.float64
                for name, out in outs.items():
                    out = np.asarray(out)
                    assert out.dtype == np.float64, (name, out.dtype)
                    assert np.allclose(out, ref, rtol=1e-9, atol=1e-9), (fname, name, n_envs)
                peer_times = {p: best[p] for p in PEERS if p in best}
                fastest = min(peer_times, key=lambda p: peer_times[p])
                rows.append(
                    {
                        "function": fname,
                        "input": f"{n_steps:.0e} x {n_envs}".replace("e+0", "e")
                        if n_envs == 1
                        else f"{n_envs} envs x {n_steps}",
                        "n_steps": n_steps,
                        "n_envs": n_envs,
                        "boundaries": boundaries,
                        "ms": {name: 1e3 * t for name, t in best.items()},
                        "fastest_peer": fastest,
                        "ratio": peer_times[fastest] / best["rlnotes"],
                        "vs_jax": (best["rlnotes"] / best["jax"]) if "jax" in best else None,
                    }
                )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of the rows of :func:`measure` (times in ms)."""
    cols = ["rlnotes", *PEERS, "jax"]
    head = (
        f"{'function':<13}{'input':<18}{'bounds':<8}"
        + "".join(f"{c:>12}" for c in cols)
        + f"{'fastest peer':>14}{'ratio':>8}{'vs jax':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for c in cols:
            t = r["ms"].get(c)
            cells.append(f"{t:12.2f}" if t is not None else f"{'-':>12}")
        vs_jax = f"{r['vs_jax']:8.2f}" if r["vs_jax"] is not None else f"{'-':>8}"
        lines.append(
            f"{r['function']:<13}{r['input']:<18}{('yes' if r['boundaries'] else 'no'):<8}"
            + "".join(cells)
            + f"{r['fastest_peer']:>14}{r['ratio']:8.2f}"
            + vs_jax
        )
    if all(r["vs_jax"] is None for r in rows):
        lines.append("jax: jax not installed (column skipped)")
    if (
        all("SB3" not in r["ms"] for r in rows)
        and importlib.util.find_spec("stable_baselines3") is None
    ):
        lines.append("SB3: stable-baselines3 not installed (column skipped)")
    if any("numpy loop" not in r["ms"] for r in rows):
        lines.append("-: skipped in quick mode (a Python loop over 10^6 steps takes seconds)")
    lines.append(
        "times: best-of-k wall clock in ms; ratio = fastest peer / rlnotes (>= 1: rlnotes "
        "at least as fast); vs jax = rlnotes / jax"
    )
    return "\n".join(lines)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`measure` as a Markdown table (times in ms), for the book."""
    cols = ["rlnotes", *PEERS]
    header = ["function", "input", "episode ends", *cols, "fastest peer", "ratio"]
    body = []
    for r in rows:
        times = [f"{r['ms'][c]:.2f}" if c in r["ms"] else "–" for c in cols]
        body.append(
            [
                f"`{r['function']}`",
                r["input"],
                "yes" if r["boundaries"] else "no",
                *times,
                r["fastest_peer"],
                f"**{r['ratio']:.2f}**",
            ]
        )
    return markdown_table(header, body, align="lll" + "r" * (len(cols) + 2))


def main() -> None:
    run_cli(__doc__.splitlines()[0], measure, format_table, "fewer repeats, skip slow loops")


if __name__ == "__main__":
    main()
