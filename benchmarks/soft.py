"""Speed of rlnotes' certified soft (entropy-regularized) planners.

Run ``python benchmarks/soft.py`` (add ``--quick`` for the short version the book's performance
appendix executes). The model is the dense random MDP of ``benchmarks/mdp.py``,
``rlnotes.random_mdp(2000, 4, 0.99, seed=SEED)``, with temperature ``alpha = 0.1``.

Task: the soft optimal values :math:`V^*_\\alpha` to a certified ``1e-8`` (rounding included).
Candidates: ``rlnotes.soft_policy_iteration`` (Newton's method) and
``rlnotes.soft_value_iteration`` with the span rule (the default); plain soft value iteration
(``stopping="sup"``, about 2300 sweeps) is run once for reference and skipped in quick mode.
The baseline is ``rlnotes.policy_iteration`` on the *unregularized* problem, measured in the
same run, interleaved round by round (``benchmarks/timing.py``). The target: every certified
soft solver within 2x of that baseline (``ratio`` = baseline / method >= 0.5).

Accuracy columns: ``bound`` is the solver's own certificate on the sup-norm error of ``V``
(for the baseline, on :math:`\\|V - V^*\\|_\\infty` of the unregularized problem); ``vs ref`` is
the sup-norm distance between the ``V`` of the two certified soft solvers (and, for plain value
iteration, to soft policy iteration's), at most the sum of their bounds when both certificates
are true; the script asserts that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import rlnotes

try:
    from benchmarks.mdp import GAMMA, N_ACTIONS, N_STATES, SEED
    from benchmarks.timing import best_of, run_cli, solver_markdown, solver_row
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from mdp import GAMMA, N_ACTIONS, N_STATES, SEED  # type: ignore[no-redef,import-not-found]
    from timing import best_of, run_cli, solver_markdown, solver_row  # type: ignore[no-redef,import-not-found]

ALPHA = 0.1
TOL = 1e-8
TARGET_RATIO = 0.5  # at most 2x the time of the baseline

SOFT_PI = "rlnotes.soft_policy_iteration"
SOFT_VI = "rlnotes.soft_value_iteration span"
SOFT_VI_SUP = "rlnotes.soft_value_iteration sup (plain)"
BASE = "rlnotes.policy_iteration (alpha = 0)"


def _row(
    method: str,
    seconds: float | None,
    bound: float | None,
    vs_ref: float | None,
    baseline_s: float | None,
    note: str = "",
) -> dict[str, Any]:
    task = f"soft optimal values, alpha={ALPHA:g}, certified {TOL:g}"
    return solver_row(task, method, seconds, bound, vs_ref, baseline_s, note)


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """Time the soft solvers against unregularized policy iteration; one row per method.

    ``quick`` takes fewer repeats (best of 3 instead of 7) and skips plain value iteration.
    """
    k = 3 if quick else 7
    mdp = rlnotes.random_mdp(N_STATES, N_ACTIONS, GAMMA, seed=SEED)
    cands: dict[str, Callable[[], Any]] = {
        BASE: lambda: rlnotes.policy_iteration(mdp, tol=TOL),
        SOFT_PI: lambda: rlnotes.soft_policy_iteration(mdp, ALPHA, tol=TOL),
        SOFT_VI: lambda: rlnotes.soft_value_iteration(mdp, ALPHA, tol=TOL),
    }
    best, outs = best_of(cands, k)
    base = best[BASE]
    pi_res, vi_res = outs[SOFT_PI], outs[SOFT_VI]
    gap = float(np.max(np.abs(pi_res.V - vi_res.V)))
    assert gap <= pi_res.error_bound + vi_res.error_bound, "the certificates disagree"
    hard = outs[BASE]
    rows = [
        _row(
            BASE,
            base,
            hard.error_bound,
            None,
            base,
            note=f"{hard.iterations} evaluations (baseline)",
        ),
        _row(
            SOFT_PI,
            best[SOFT_PI],
            pi_res.error_bound,
            gap,
            base,
            note=f"{pi_res.iterations} evaluations",
        ),
        _row(
            SOFT_VI,
            best[SOFT_VI],
            vi_res.error_bound,
            gap,
            base,
            note=f"{vi_res.iterations} sweeps",
        ),
    ]
    if quick:
        rows.append(_row(SOFT_VI_SUP, None, None, None, None, note="skipped in quick mode"))
    else:
        t0 = time.perf_counter()
        sup_res = rlnotes.soft_value_iteration(mdp, ALPHA, tol=TOL, stopping="sup")
        dt = time.perf_counter() - t0
        rows.append(
            _row(
                SOFT_VI_SUP,
                dt,
                sup_res.error_bound,
                float(np.max(np.abs(sup_res.V - pi_res.V))),
                base,
                note=f"{sup_res.iterations} sweeps, run once",
            )
        )
    return rows


def _fmt(x: float | None, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:{width}{spec}}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of the rows of :func:`measure` (times in ms)."""
    head = f"{'method':<42}{'ms':>10}{'bound':>10}{'vs ref':>10}{'ratio':>8}  note"
    lines = [
        f"dense random MDP: S={N_STATES}, A={N_ACTIONS}, gamma={GAMMA}, seed={SEED}; "
        f"{rows[0]['task']}",
        head,
        "-" * len(head),
    ]
    for r in rows:
        lines.append(
            f"{r['method']:<42}{_fmt(r['ms'], '.1f', 10)}"
            f"{_fmt(r['bound'], '.1e', 10)}{_fmt(r['vs_ref'], '.1e', 10)}"
            f"{_fmt(r['ratio'], '.2f', 8)}  {r['note']}"
        )
    certified = [r for r in rows if r["method"] in (SOFT_PI, SOFT_VI)]
    worst = min(r["ratio"] for r in certified)
    verdict = "met" if worst >= TARGET_RATIO else "NOT met"
    lines.append(
        f"target (each certified soft solver within 2x of the baseline, ratio >= "
        f"{TARGET_RATIO:g}): {verdict}; slowest soft/baseline time = {1 / worst:.2f}x"
    )
    lines.append(
        "ms: best-of-k wall clock; bound: certified sup-norm error bound of V (rounding "
        "included); vs ref: sup-norm distance between the two certified soft solvers' V; "
        "ratio: baseline / method (>= 1: at least as fast)"
    )
    return "\n".join(lines)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`measure` as a Markdown table, for the book's performance appendix."""
    return solver_markdown(rows)


def main() -> None:
    run_cli(__doc__.splitlines()[0], measure, format_table, "fewer repeats, skip plain VI")


if __name__ == "__main__":
    main()
