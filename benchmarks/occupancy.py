"""Speed of rlnotes' occupancy measures and LP solver against the routes a reader would take.

Run ``python benchmarks/occupancy.py`` (add ``--quick`` for fewer repeats). Two tasks:

* **occupancy** of a fixed policy (a random stochastic one and a random deterministic one) on
  the dense random MDP of ``benchmarks/mdp.py``, ``rlnotes.random_mdp(2000, 4, 0.99,
  seed=2024)``: ``rlnotes.occupancy`` (certified l1 error ``tol = 1e-8`` on a total mass of
  100; its own solver, with the strategy of policy evaluation's: here GMRES on the transposed
  system, accepted when its l1 certificate holds) against
  ``numpy.linalg.solve`` on :math:`I - \\gamma P_\\pi^\\top`, timed twice as in mdp.py: the
  whole computation (build :math:`P_\\pi` with ``einsum``, solve, form
  :math:`\\rho(s, a) = \\pi(a|s)\\rho(s)`) and the solve alone on a prebuilt matrix. The ratio
  uses the faster of the two.
* **the LP of Taxi-v4** (500 states plus the absorbing one, 6 actions, gamma = 0.95):
  ``rlnotes.solve_lp`` (HiGHS on the sparse flow constraints; primal and dual; with
  ``mu0`` and with uniform weights) against the same primal LP handed to HiGHS with a dense
  constraint matrix (the formulation without ``scipy.sparse``), with ``rlnotes.policy_iteration``
  (tol = 1e-10) as the reference values and for its time.

Accuracy columns: ``bound`` is the certified bound the method reports (l1 for occupancies,
sup norm of the values for the LP), ``vs ref`` the distance to the reference (numpy's solve in
l1; policy iteration's V in the sup norm, on every state for uniform weights and on the states
the optimal occupancy reaches for ``mu0``, the states where the LP determines V). Times are
best-of-k wall-clock times, candidates interleaved; ``ratio`` is the baseline's time over the
candidate's (above 1: faster than the baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy.optimize import linprog

import rlnotes
from rlnotes.core.markov import policy_model
from rlnotes.dp.occupancy import occupancy_bound

try:
    from benchmarks.timing import (
        best_of,
        format_solver_table,
        run_cli,
        solver_markdown,
        solver_row,
    )
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from timing import (  # type: ignore[no-redef,import-not-found]
        best_of,
        format_solver_table,
        run_cli,
        solver_markdown,
        solver_row,
    )

N_STATES = 2000
N_ACTIONS = 4
GAMMA = 0.99
SEED = 2024
OCC_TOL = 1e-8
TAXI_GAMMA = 0.95

Array = np.ndarray[Any, np.dtype[Any]]


def _numpy_full(mdp: rlnotes.TabularMDP, pi: Array) -> tuple[Array, Array]:
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    rho = np.linalg.solve(np.eye(mdp.n_states) - GAMMA * P_pi.T, mdp.mu0)
    return rho, pi * rho[:, None]


def measure_occupancy(k: int) -> list[dict[str, Any]]:
    mdp = rlnotes.random_mdp(N_STATES, N_ACTIONS, GAMMA, seed=SEED)
    rng = np.random.default_rng(SEED + 1)
    S, A = mdp.n_states, mdp.n_actions
    policies = {
        "stochastic pi": rng.dirichlet(np.ones(A), size=S),
        "deterministic pi": np.eye(A)[rng.integers(0, A, size=S)],
    }
    rows: list[dict[str, Any]] = []
    for label, pi in policies.items():
        P_pi, _ = policy_model(mdp, pi)
        M = np.eye(S) - GAMMA * np.asarray(P_pi).T
        cands: dict[str, Callable[[], Any]] = {
            "rlnotes.occupancy": partial(rlnotes.occupancy, mdp, pi, tol=OCC_TOL),
            "numpy: einsum + solve + rho_sa": partial(_numpy_full, mdp, pi),
            "numpy.linalg.solve only": partial(np.linalg.solve, M, mdp.mu0),
        }
        best, outs = best_of(cands, k)
        ref = outs["numpy.linalg.solve only"]
        base = min(best["numpy: einsum + solve + rho_sa"], best["numpy.linalg.solve only"])
        task = f"occupancy, {label}"
        for name in cands:
            out = outs[name]
            rho = out if name == "numpy.linalg.solve only" else out[0]
            rows.append(
                solver_row(
                    task,
                    name,
                    best[name],
                    occupancy_bound(P_pi, mdp.mu0, GAMMA, rho),
                    float(np.abs(rho - ref).sum()),
                    base,
                )
            )
    return rows


def _dense_primal(mdp: rlnotes.TabularMDP) -> Array:
    """The primal LP with a dense constraint matrix: the formulation without scipy.sparse."""
    S, A = mdp.n_states, mdp.n_actions
    P = np.asarray(mdp.to_dense().P).reshape(S * A, S)
    E = np.repeat(np.eye(S), A, axis=0)
    M = (E - mdp.gamma * P).T
    res = linprog(-mdp.R.ravel(), A_eq=M, b_eq=mdp.mu0, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(res.message)
    return -np.asarray(res.eqlin.marginals)


def measure_lp(k: int) -> list[dict[str, Any]]:
    import gymnasium as gym

    mdp = rlnotes.TabularMDP.from_gymnasium(gym.make("Taxi-v4"), TAXI_GAMMA)
    S = mdp.n_states
    uniform = np.full(S, 1.0 / S)
    cands: dict[str, Callable[[], Any]] = {
        "rlnotes.solve_lp primal, mu0": lambda: rlnotes.solve_lp(mdp),
        "rlnotes.solve_lp dual, mu0": lambda: rlnotes.solve_lp(mdp, primal=False),
        "rlnotes.solve_lp primal, uniform": lambda: rlnotes.solve_lp(mdp, weights=uniform),
        "rlnotes.solve_lp dual, uniform": lambda: rlnotes.solve_lp(
            mdp, primal=False, weights=uniform
        ),
        "HiGHS, dense constraint matrix": lambda: _dense_primal(mdp),
        "rlnotes.policy_iteration": lambda: rlnotes.policy_iteration(mdp, tol=1e-10),
    }
    best, outs = best_of(cands, k)
    V_ref = outs["rlnotes.policy_iteration"].V
    base = best["HiGHS, dense constraint matrix"]
    task = f"LP of Taxi-v4 ({S} x {mdp.n_actions})"
    rows = []
    for name in cands:
        out = outs[name]
        if name.startswith("rlnotes.solve_lp"):
            mask = out.reached if name.endswith("mu0") else np.ones(S, dtype=bool)
            err = float(np.max(np.abs(out.V - V_ref)[mask]))
            assert err < 1e-8, (name, err)
            where = "reached states" if name.endswith("mu0") else "all states"
            rows.append(
                solver_row(task, name, best[name], out.error_bound, err, base, f"vs ref on {where}")
            )
        elif name.startswith("HiGHS"):
            reached = outs["rlnotes.solve_lp primal, mu0"].reached
            err = float(np.max(np.abs(out - V_ref)[reached]))
            rows.append(
                solver_row(task, name, best[name], None, err, base, "vs ref on reached states")
            )
        else:
            rows.append(solver_row(task, name, best[name], out.error_bound, 0.0, base, "reference"))
    return rows


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """Time rlnotes and its peers; one row per (task, method).

    ``quick`` takes the best of 3 runs instead of 7.
    """
    k = 3 if quick else 7
    return measure_occupancy(k) + measure_lp(k)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of the rows of :func:`measure` (times in ms)."""
    title = (
        f"occupancy: dense random MDP S={N_STATES}, A={N_ACTIONS}, gamma={GAMMA}, seed={SEED}; "
        f"LP: Taxi-v4, gamma={TAXI_GAMMA}"
    )
    legend = (
        "ms: best-of-k wall clock; bound: certified error bound (l1 for occupancies, sup norm "
        "of V for the LP); vs ref: distance to the reference; ratio: baseline / method "
        "(>= 1: at least as fast); baselines: the faster numpy route (occupancy), HiGHS on "
        "the dense constraint matrix (LP)"
    )
    return format_solver_table(rows, title, legend)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`measure` as a Markdown table, for the book's performance appendix."""
    return solver_markdown(rows)


def main() -> None:
    run_cli(__doc__.splitlines()[0], measure, format_table, "fewer repeats")


if __name__ == "__main__":
    main()
