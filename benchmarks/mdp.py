"""Speed of rlnotes' tabular MDP toolkit against the routes a reader would otherwise take.

Run ``python benchmarks/mdp.py`` (add ``--quick`` for the short version the book's performance
appendix executes). The model is a dense random MDP, ``rlnotes.random_mdp(2000, 4, 0.99,
seed=SEED)``: Dirichlet(1) transition rows, standard-normal rewards.

Two tasks:

* **policy evaluation** of a fixed policy (a random stochastic one, and a random deterministic
  one): ``rlnotes.policy_evaluation`` (certified ``tol = 1e-10``; here GMRES, which only
  multiplies by :math:`P_\\pi`) against ``numpy.linalg.solve`` on :math:`I - \\gamma P_\\pi`.
  The peer is timed twice: the whole computation a user writes (build :math:`P_\\pi` with
  ``einsum``, solve, then :math:`Q = R + \\gamma P V`, the same outputs as rlnotes) and the
  solve alone on a prebuilt matrix. The ratio uses the faster of the two.
* **optimal values to a guaranteed 1e-8**: ``rlnotes.policy_iteration`` and
  ``rlnotes.value_iteration(stopping="span")`` against pymdptoolbox's ``PolicyIteration``
  (``run()`` only; converting the model to its ``(A, S, S)`` layout and its input check are
  not timed), and plain value iteration (``stopping="sup"``) for reference, skipped in quick
  mode (it needs thousands of sweeps).

Accuracy columns: ``bound`` is a certified bound on the sup-norm error of ``V`` (rlnotes'
own certificate; for the peers, the residual bound :math:`\\|T V - V\\|_\\infty / (1 - \\gamma)`
computed here), ``vs ref`` is the sup-norm distance to the reference (numpy's solve; for the
optimal values, pymdptoolbox's exactly evaluated optimal policy). Times are best-of-k
wall-clock times, the candidates interleaved round by round so that a busy machine slows them
alike; ``ratio`` is the baseline's time over the candidate's (above 1: faster than the
baseline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import rlnotes

try:
    from benchmarks.timing import best_of, run_cli
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from timing import best_of, run_cli  # type: ignore[no-redef]

N_STATES = 2000
N_ACTIONS = 4
GAMMA = 0.99
SEED = 2024
EVAL_TOL = 1e-10
OPT_TOL = 1e-8

Array = np.ndarray[Any, np.dtype[Any]]


def _policy_residual_bound(mdp: rlnotes.TabularMDP, pi: Array, V: Array) -> float:
    S, A = mdp.n_states, mdp.n_actions
    TV = np.einsum("sa,sa->s", pi, mdp.R + GAMMA * (mdp.P.reshape(S * A, S) @ V).reshape(S, A))
    return float(np.max(np.abs(TV - V))) / (1.0 - GAMMA)


def _optimality_residual_bound(mdp: rlnotes.TabularMDP, V: Array) -> float:
    S, A = mdp.n_states, mdp.n_actions
    TV = (mdp.R + GAMMA * (mdp.P.reshape(S * A, S) @ V).reshape(S, A)).max(axis=1)
    return float(np.max(np.abs(TV - V))) / (1.0 - GAMMA)


def _numpy_full(mdp: rlnotes.TabularMDP, pi: Array) -> tuple[Array, Array]:
    S, A = mdp.n_states, mdp.n_actions
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.R)
    V = np.linalg.solve(np.eye(S) - GAMMA * P_pi, r_pi)
    Q = mdp.R + GAMMA * (mdp.P.reshape(S * A, S) @ V).reshape(S, A)
    return V, Q


def _row(
    task: str,
    method: str,
    seconds: float | None,
    bound: float | None,
    vs_ref: float | None,
    baseline_s: float | None,
    note: str = "",
) -> dict[str, Any]:
    ratio = baseline_s / seconds if (baseline_s is not None and seconds) else None
    return {
        "task": task,
        "method": method,
        "ms": None if seconds is None else 1e3 * seconds,
        "bound": bound,
        "vs_ref": vs_ref,
        "ratio": ratio,
        "note": note,
    }


def measure_policy_evaluation(mdp: rlnotes.TabularMDP, k: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED + 1)
    S, A = mdp.n_states, mdp.n_actions
    policies = {
        "stochastic pi": rng.dirichlet(np.ones(A), size=S),
        "deterministic pi": np.eye(A)[rng.integers(0, A, size=S)],
    }
    rows: list[dict[str, Any]] = []
    for label, pi in policies.items():
        M = np.eye(S) - GAMMA * np.einsum("sa,sat->st", pi, mdp.P)
        r_pi = np.einsum("sa,sa->s", pi, mdp.R)
        cands: dict[str, Callable[[], Any]] = {
            "rlnotes.policy_evaluation": lambda pi=pi: rlnotes.policy_evaluation(
                mdp, pi, tol=EVAL_TOL
            ),
            "numpy: einsum + solve + Q": lambda pi=pi: _numpy_full(mdp, pi),
            "numpy.linalg.solve only": lambda M=M, r_pi=r_pi: np.linalg.solve(M, r_pi),
        }
        best, outs = best_of(cands, k)
        V_ref = outs["numpy.linalg.solve only"]
        base = min(best["numpy: einsum + solve + Q"], best["numpy.linalg.solve only"])
        V_ours, Q_ours = outs["rlnotes.policy_evaluation"]
        V_np, Q_np = outs["numpy: einsum + solve + Q"]
        assert np.allclose(Q_ours, Q_np, atol=1e-8)
        task = f"policy evaluation, {label}"
        rows.append(
            _row(
                task,
                "rlnotes.policy_evaluation",
                best["rlnotes.policy_evaluation"],
                _policy_residual_bound(mdp, pi, V_ours),
                float(np.max(np.abs(V_ours - V_ref))),
                base,
            )
        )
        for name in ("numpy: einsum + solve + Q", "numpy.linalg.solve only"):
            V = V_np if name.startswith("numpy:") else V_ref
            rows.append(
                _row(
                    task,
                    name,
                    best[name],
                    _policy_residual_bound(mdp, pi, V),
                    float(np.max(np.abs(V - V_ref))),
                    base,
                )
            )
    return rows


class _MdpToolboxPI:
    """pymdptoolbox's PolicyIteration: ``prepare()`` builds the solver (its input check),
    ``run()`` solves and returns V; only ``run()`` is timed."""

    def __init__(self, mdp: rlnotes.TabularMDP) -> None:
        import mdptoolbox.mdp as mdptb

        self._cls = mdptb.PolicyIteration
        P = np.ascontiguousarray(np.transpose(mdp.P, (1, 0, 2)))
        # pymdptoolbox demands rows that sum to 1 within 10 ulp; renormalise (changes ~1e-16).
        P /= P.sum(axis=2, keepdims=True)
        self._P = P
        self._R = np.ascontiguousarray(mdp.R)
        self._solver: Any = None

    def prepare(self) -> None:
        self._solver = self._cls(self._P, self._R, GAMMA)

    def run(self) -> Array:
        self._solver.run()
        return np.asarray(self._solver.V)


def _mdptoolbox() -> type[_MdpToolboxPI] | None:
    try:
        import mdptoolbox.mdp  # noqa: F401
    except ImportError:
        return None
    return _MdpToolboxPI


def measure_optimal_values(mdp: rlnotes.TabularMDP, k: int, quick: bool) -> list[dict[str, Any]]:
    task = f"optimal values, guaranteed {OPT_TOL:g}"
    peer_cls = _mdptoolbox()
    peer = None if peer_cls is None else peer_cls(mdp)
    cands: dict[str, Callable[[], Any]] = {
        "rlnotes.policy_iteration": lambda: rlnotes.policy_iteration(mdp, tol=OPT_TOL),
        "rlnotes.value_iteration span": lambda: rlnotes.value_iteration(
            mdp, OPT_TOL, stopping="span"
        ),
    }
    setup: dict[str, Callable[[], Any]] = {}
    if peer is not None:
        # pymdptoolbox's constructor (its input check) runs before each timed run(), untimed.
        cands["pymdptoolbox PolicyIteration"] = peer.run
        setup["pymdptoolbox PolicyIteration"] = peer.prepare
    best, outs = best_of(cands, k, setup=setup)
    base = best.get("pymdptoolbox PolicyIteration")
    V_ref = outs.get("pymdptoolbox PolicyIteration")
    if V_ref is None:
        V_ref = outs["rlnotes.policy_iteration"].V
    rows = []
    for name in ("rlnotes.policy_iteration", "rlnotes.value_iteration span"):
        res = outs[name]
        rows.append(
            _row(
                task,
                name,
                best[name],
                res.error_bound,
                float(np.max(np.abs(res.V - V_ref))),
                base,
                note=f"{res.iterations} iterations",
            )
        )
    if peer is not None:
        rows.append(
            _row(
                task,
                "pymdptoolbox PolicyIteration",
                base,
                _optimality_residual_bound(mdp, V_ref),
                0.0,
                base,
            )
        )
    else:
        rows.append(
            _row(task, "pymdptoolbox PolicyIteration", None, None, None, None, note="not installed")
        )
    if quick:
        rows.append(
            _row(
                task,
                "rlnotes.value_iteration sup (plain)",
                None,
                None,
                None,
                None,
                note="skipped in quick mode",
            )
        )
    else:
        t0 = time.perf_counter()
        res = rlnotes.value_iteration(mdp, OPT_TOL, stopping="sup")
        dt = time.perf_counter() - t0
        rows.append(
            _row(
                task,
                "rlnotes.value_iteration sup (plain)",
                dt,
                res.error_bound,
                float(np.max(np.abs(res.V - V_ref))),
                base,
                note=f"{res.iterations} iterations, run once",
            )
        )
    return rows


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """Time rlnotes and its peers on the dense random MDP; one row per (task, method).

    ``quick`` takes fewer repeats (best of 3 instead of 7) and skips plain value iteration.
    """
    k = 3 if quick else 7
    mdp = rlnotes.random_mdp(N_STATES, N_ACTIONS, GAMMA, seed=SEED)
    return measure_policy_evaluation(mdp, k) + measure_optimal_values(mdp, k, quick)


def _fmt(x: float | None, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:{width}{spec}}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of the rows of :func:`measure` (times in ms)."""
    head = f"{'task':<40}{'method':<37}{'ms':>10}{'bound':>10}{'vs ref':>10}{'ratio':>8}  note"
    lines = [
        f"dense random MDP: S={N_STATES}, A={N_ACTIONS}, gamma={GAMMA}, seed={SEED}",
        head,
        "-" * len(head),
    ]
    last_task = None
    for r in rows:
        task = r["task"] if r["task"] != last_task else ""
        last_task = r["task"]
        lines.append(
            f"{task:<40}{r['method']:<37}{_fmt(r['ms'], '.1f', 10)}"
            f"{_fmt(r['bound'], '.1e', 10)}{_fmt(r['vs_ref'], '.1e', 10)}"
            f"{_fmt(r['ratio'], '.2f', 8)}  {r['note']}"
        )
    lines.append(
        "ms: best-of-k wall clock; bound: certified sup-norm error bound of V; vs ref: "
        "sup-norm distance to the reference V; ratio: baseline / method (>= 1: at least "
        "as fast); baselines: the faster numpy route, pymdptoolbox PolicyIteration.run()"
    )
    return "\n".join(lines)


def main() -> None:
    run_cli(__doc__.splitlines()[0], measure, format_table, "fewer repeats, skip plain VI")


if __name__ == "__main__":
    main()
