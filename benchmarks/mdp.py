"""Speed of rlnotes' tabular MDP toolkit against the routes a reader would otherwise take.

Run ``python benchmarks/mdp.py`` (add ``--quick`` for the short version the book's performance
appendix executes). Two models:

* a dense random MDP, ``rlnotes.random_mdp(2000, 4, 0.99, seed=SEED)``: Dirichlet(1) transition
  rows, standard-normal rewards;
* a sparse slip chain, ``rlnotes.core.mdp.slip_chain(10_000, 0.99)``: 10^4 cells, two actions
  (move left / right, slipping the other way with probability 0.1), reward 1 in the last cell,
  4*10^4 non-zeros in ``P`` (held as a scipy.sparse CSR array; the dense model would need
  1.6 GB).

On the dense model, two tasks:

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

On the sparse chain: policy evaluation of a random deterministic and a random stochastic
policy (rlnotes, certified 1e-10, against ``scipy.sparse.linalg.spsolve`` on
:math:`I - \\gamma P_\\pi` built by the user), and optimal values certified to 1e-8
(``policy_iteration`` and ``value_iteration``, against Howard's policy iteration written with
``spsolve``, the route a reader would take; pymdptoolbox densifies :math:`P_\\pi`, 800 MB here).
Targets: evaluation under 1 s, certified optimal values under 10 s. The last rows build
Taxi-v4's model (sparse and dense) and report how far the dense and sparse solutions lie apart.

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
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as scipy_sparse
from scipy.sparse.linalg import spsolve

import rlnotes
from rlnotes.core.mdp import slip_chain

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
EVAL_TOL = 1e-10
OPT_TOL = 1e-8
CHAIN_STATES = 10_000

Array = np.ndarray[Any, np.dtype[Any]]


def _policy_residual_bound(mdp: rlnotes.TabularMDP, pi: Array, V: Array) -> float:
    S, A = mdp.n_states, mdp.n_actions
    TV = np.einsum("sa,sa->s", pi, mdp.R + GAMMA * (mdp.P_matrix @ V).reshape(S, A))
    return float(np.max(np.abs(TV - V))) / (1.0 - GAMMA)


def _optimality_residual_bound(mdp: rlnotes.TabularMDP, V: Array) -> float:
    S, A = mdp.n_states, mdp.n_actions
    TV = (mdp.R + GAMMA * (mdp.P_matrix @ V).reshape(S, A)).max(axis=1)
    return float(np.max(np.abs(TV - V))) / (1.0 - GAMMA)


def _numpy_full(mdp: rlnotes.TabularMDP, pi: Array) -> tuple[Array, Array]:
    S, A = mdp.n_states, mdp.n_actions
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.R)
    V = np.linalg.solve(np.eye(S) - GAMMA * P_pi, r_pi)
    Q = mdp.R + GAMMA * (mdp.P_matrix @ V).reshape(S, A)
    return V, Q


def _planner_rows(
    task: str,
    names: tuple[str, ...],
    best: dict[str, float],
    outs: dict[str, Any],
    V_ref: Any,
    base: float | None,
    note: str = "",
) -> list[dict[str, Any]]:
    """One row per certified planner: its time, its certificate and its distance to V_ref."""
    return [
        solver_row(
            task,
            name,
            best[name],
            outs[name].error_bound,
            float(np.max(np.abs(outs[name].V - V_ref))),
            base,
            note=f"{outs[name].iterations} iterations{note}",
        )
        for name in names
    ]


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
            "rlnotes.policy_evaluation": partial(rlnotes.policy_evaluation, mdp, pi, tol=EVAL_TOL),
            "numpy: einsum + solve + Q": partial(_numpy_full, mdp, pi),
            "numpy.linalg.solve only": partial(np.linalg.solve, M, r_pi),
        }
        best, outs = best_of(cands, k)
        V_ref = outs["numpy.linalg.solve only"]
        base = min(best["numpy: einsum + solve + Q"], best["numpy.linalg.solve only"])
        V_ours, Q_ours = outs["rlnotes.policy_evaluation"]
        V_np, Q_np = outs["numpy: einsum + solve + Q"]
        assert np.allclose(Q_ours, Q_np, atol=1e-8)
        task = f"policy evaluation, {label}"
        rows.append(
            solver_row(
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
                solver_row(
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
            mdp, tol=OPT_TOL, stopping="span"
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
    rows = _planner_rows(
        task, ("rlnotes.policy_iteration", "rlnotes.value_iteration span"), best, outs, V_ref, base
    )
    if peer is not None:
        rows.append(
            solver_row(
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
            solver_row(
                task, "pymdptoolbox PolicyIteration", None, None, None, None, note="not installed"
            )
        )
    if quick:
        rows.append(
            solver_row(
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
        res = rlnotes.value_iteration(mdp, tol=OPT_TOL, stopping="sup")
        dt = time.perf_counter() - t0
        rows.append(
            solver_row(
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


def _sparse_residual_bound(P_pi: Any, r_pi: Array, V: Array) -> float:
    return float(np.max(np.abs(r_pi + GAMMA * (P_pi @ V) - V))) / (1.0 - GAMMA)


def _chain_policy_matrix(mdp: rlnotes.TabularMDP, pi: Array) -> tuple[Any, Array]:
    """P_pi and r_pi of a stochastic policy, as a scipy user would build them."""
    S, A = mdp.n_states, mdp.n_actions
    mix = scipy_sparse.csr_array(
        (pi.ravel(), (np.repeat(np.arange(S), A), np.arange(S * A))), shape=(S, S * A)
    )
    return scipy_sparse.csr_array(mix @ mdp.P), np.einsum("sa,sa->s", pi, mdp.R)


def _scipy_evaluate(mdp: rlnotes.TabularMDP, pi: Array) -> Array:
    P_pi, r_pi = _chain_policy_matrix(mdp, pi)
    eye = scipy_sparse.eye_array(mdp.n_states, format="csc")
    return np.asarray(spsolve(scipy_sparse.csc_array(eye - GAMMA * P_pi), r_pi))


def _scipy_policy_iteration(mdp: rlnotes.TabularMDP) -> Array:
    """Howard's policy iteration with spsolve and strict improvement (no certificate)."""
    S, A = mdp.n_states, mdp.n_actions
    rows = np.arange(S)
    actions = np.zeros(S, dtype=np.int64)
    eye = scipy_sparse.eye_array(S, format="csc")
    for _ in range(10_000):
        P_pi = mdp.P[rows * A + actions]
        V = spsolve(scipy_sparse.csc_array(eye - GAMMA * P_pi), mdp.R[rows, actions])
        Q = mdp.R + GAMMA * (mdp.P @ V).reshape(S, A)
        better = Q.max(axis=1) > Q[rows, actions] + 1e-12
        if not better.any():
            return np.asarray(V)
        actions = np.where(better, Q.argmax(axis=1), actions)
    raise RuntimeError("policy iteration did not stabilise")


def measure_sparse(k: int) -> list[dict[str, Any]]:
    """The sparse slip chain: evaluation and certified optimal values; Taxi's model."""
    mdp = slip_chain(CHAIN_STATES, GAMMA)
    S, A = mdp.n_states, mdp.n_actions
    rng = np.random.default_rng(SEED + 2)
    rows: list[dict[str, Any]] = []
    policies = {
        "deterministic": np.eye(A)[rng.integers(0, A, size=S)],
        "stochastic": rng.dirichlet(np.ones(A), size=S),
    }
    for label, pi in policies.items():
        P_pi, r_pi = _chain_policy_matrix(mdp, pi)
        M = scipy_sparse.csc_array(scipy_sparse.eye_array(S, format="csc") - GAMMA * P_pi)
        cands: dict[str, Callable[[], Any]] = {
            "rlnotes.policy_evaluation": partial(rlnotes.policy_evaluation, mdp, pi, tol=EVAL_TOL),
            "scipy: build P_pi + spsolve": partial(_scipy_evaluate, mdp, pi),
            "scipy spsolve only": partial(spsolve, M, r_pi),
        }
        best, outs = best_of(cands, k)
        V_ref = np.asarray(outs["scipy spsolve only"])
        base = min(best["scipy: build P_pi + spsolve"], best["scipy spsolve only"])
        task = f"sparse chain: evaluation, {label} pi"
        V_ours = outs["rlnotes.policy_evaluation"][0]
        for name in cands:
            V = V_ours if name.startswith("rlnotes") else np.asarray(outs[name])
            rows.append(
                solver_row(
                    task,
                    name,
                    best[name],
                    _sparse_residual_bound(P_pi, r_pi, V),
                    float(np.max(np.abs(V - V_ref))),
                    base,
                    note="target < 1000 ms" if name.startswith("rlnotes") else "",
                )
            )
    task = f"sparse chain: optimal values, {OPT_TOL:g}"
    cands = {
        "rlnotes.policy_iteration": lambda: rlnotes.policy_iteration(mdp, tol=OPT_TOL),
        "rlnotes.value_iteration (span)": lambda: rlnotes.value_iteration(mdp, tol=OPT_TOL),
        "scipy: Howard PI with spsolve": lambda: _scipy_policy_iteration(mdp),
    }
    best, outs = best_of(cands, max(1, k // 3))
    V_ref = outs["scipy: Howard PI with spsolve"]
    base = best["scipy: Howard PI with spsolve"]
    rows += _planner_rows(
        task,
        ("rlnotes.policy_iteration", "rlnotes.value_iteration (span)"),
        best,
        outs,
        V_ref,
        base,
        "; target < 10000 ms",
    )
    rows.append(
        solver_row(
            task,
            "scipy: Howard PI with spsolve",
            base,
            _optimality_residual_bound(mdp, V_ref),
            0.0,
            base,
            note="no certificate",
        )
    )
    rows.extend(measure_taxi(k))
    return rows


def measure_taxi(k: int) -> list[dict[str, Any]]:
    """Build Taxi-v4's model sparse and dense; solve both; report their agreement."""
    import gymnasium as gym

    env = gym.make("Taxi-v4")
    task = "Taxi-v4 model build (501 x 6)"
    cands: dict[str, Callable[[], Any]] = {
        "from_gymnasium (sparse, default)": lambda: rlnotes.TabularMDP.from_gymnasium(env, GAMMA),
        "from_gymnasium(sparse=False)": lambda: rlnotes.TabularMDP.from_gymnasium(
            env, GAMMA, sparse=False
        ),
    }
    best, outs = best_of(cands, k)
    sparse_mdp, dense_mdp = (
        outs["from_gymnasium (sparse, default)"],
        outs["from_gymnasium(sparse=False)"],
    )
    res_s = rlnotes.policy_iteration(sparse_mdp, tol=1e-10)
    res_d = rlnotes.policy_iteration(dense_mdp, tol=1e-10)
    gap = float(np.max(np.abs(res_s.V - res_d.V)))
    P = sparse_mdp.P
    mb_sparse = (P.data.nbytes + P.indices.nbytes + P.indptr.nbytes) / 1e6
    mb_dense = dense_mdp.P.nbytes / 1e6
    return [
        solver_row(
            task,
            "from_gymnasium (sparse, default)",
            best["from_gymnasium (sparse, default)"],
            res_s.error_bound,
            gap,
            best["from_gymnasium(sparse=False)"],
            note=f"P: {P.nnz} non-zeros, {mb_sparse:.2f} MB; vs ref: |V_sparse - V_dense|",
        ),
        solver_row(
            task,
            "from_gymnasium(sparse=False)",
            best["from_gymnasium(sparse=False)"],
            res_d.error_bound,
            0.0,
            best["from_gymnasium(sparse=False)"],
            note=f"P: {mb_dense:.1f} MB dense",
        ),
    ]


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """Time rlnotes and its peers on the dense random MDP and the sparse chain.

    One row per (task, method). ``quick`` takes fewer repeats (best of 3 instead of 7) and
    skips plain value iteration.
    """
    k = 3 if quick else 7
    mdp = rlnotes.random_mdp(N_STATES, N_ACTIONS, GAMMA, seed=SEED)
    dense = measure_policy_evaluation(mdp, k) + measure_optimal_values(mdp, k, quick)
    return dense + measure_sparse(k)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of the rows of :func:`measure` (times in ms)."""
    title = (
        f"dense random MDP: S={N_STATES}, A={N_ACTIONS}, gamma={GAMMA}, seed={SEED}; "
        f"sparse slip chain: S={CHAIN_STATES}, A=2, slip 0.1, gamma={GAMMA}"
    )
    legend = (
        "ms: best-of-k wall clock; bound: certified sup-norm error bound of V; vs ref: "
        "sup-norm distance to the reference V; ratio: baseline / method (>= 1: at least "
        "as fast); baselines: the faster numpy route, pymdptoolbox PolicyIteration.run(); "
        "sparse: the faster scipy spsolve route, Howard PI with spsolve; Taxi: the dense build"
    )
    return format_solver_table(rows, title, legend)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`measure` as a Markdown table, for the book's performance appendix."""
    return solver_markdown(rows)


def main() -> None:
    run_cli(__doc__.splitlines()[0], measure, format_table, "fewer repeats, skip plain VI")


if __name__ == "__main__":
    main()
