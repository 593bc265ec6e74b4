"""Wall-clock timing shared by the benchmarks."""

from __future__ import annotations

import argparse
import gc
import math
import time
from collections.abc import Callable
from typing import Any


def best_of(
    cands: dict[str, Callable[[], Any]],
    k: int,
    *,
    setup: dict[str, Callable[[], Any]] | None = None,
    budget_s: float = math.inf,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Best-of-``k`` wall-clock seconds per candidate, and each candidate's first output.

    The candidates run interleaved, one round at a time, with the garbage collector off, so a
    slow moment of the machine hits all of them alike. ``setup[name]``, if given, runs untimed
    before each run of that candidate. A candidate whose total time exceeds ``budget_s`` is not
    run again (its best so far stands; it always runs at least once).
    """
    setup = setup or {}
    best = {name: math.inf for name in cands}
    spent = {name: 0.0 for name in cands}
    outs: dict[str, Any] = {}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(k):
            for name, fn in cands.items():
                if spent[name] > budget_s:
                    continue
                if name in setup:
                    setup[name]()
                t0 = time.perf_counter()
                out = fn()
                dt = time.perf_counter() - t0
                spent[name] += dt
                best[name] = min(best[name], dt)
                outs.setdefault(name, out)
    finally:
        if gc_was:
            gc.enable()
    return best, outs


def run_cli(
    description: str,
    measure: Callable[..., list[dict[str, Any]]],
    format_table: Callable[[list[dict[str, Any]]], str],
    quick_help: str,
) -> None:
    """The command line of a benchmark script: ``[--quick]``, then print its table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    print(format_table(measure(quick=args.quick)))


def markdown_table(columns: list[str], rows: list[list[str]], *, align: str = "") -> str:
    """A Markdown (GFM) table; ``align`` holds one of ``l``/``r`` per column (default ``r``,
    the first column ``l``). The book's performance appendix renders these as HTML tables."""
    align = align or "l" + "r" * (len(columns) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


# -- solver rows: one (task, method) per row, with a certificate and a distance to a reference
def solver_row(
    task: str,
    method: str,
    seconds: float | None,
    bound: float | None,
    vs_ref: float | None,
    baseline_s: float | None,
    note: str = "",
) -> dict[str, Any]:
    """One row of a solver benchmark; ``ratio`` is the baseline's time over this method's."""
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


def _fmt(x: float | None, spec: str, width: int = 0) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:{width}{spec}}"


def format_solver_table(rows: list[dict[str, Any]], title: str, legend: str) -> str:
    """A fixed-width text table of :func:`solver_row` rows (times in ms), for a terminal."""
    tw = max(len("task"), *(len(r["task"]) for r in rows)) + 2
    mw = max(len("method"), *(len(r["method"]) for r in rows)) + 2
    head = f"{'task':<{tw}}{'method':<{mw}}{'ms':>10}{'bound':>10}{'vs ref':>10}{'ratio':>8}  note"
    lines = [title, head, "-" * len(head)]
    last_task = None
    for r in rows:
        task = r["task"] if r["task"] != last_task else ""
        last_task = r["task"]
        lines.append(
            f"{task:<{tw}}{r['method']:<{mw}}{_fmt(r['ms'], '.1f', 10)}"
            f"{_fmt(r['bound'], '.1e', 10)}{_fmt(r['vs_ref'], '.1e', 10)}"
            f"{_fmt(r['ratio'], '.2f', 8)}  {r['note']}"
        )
    lines.append(legend)
    return "\n".join(lines)


def solver_markdown(rows: list[dict[str, Any]]) -> str:
    """:func:`solver_row` rows as a Markdown table (times in ms), for the book."""
    body = []
    last_task = None
    for r in rows:
        task = r["task"] if r["task"] != last_task else ""
        last_task = r["task"]
        body.append(
            [
                task,
                f"`{r['method']}`" if r["method"].startswith("rlnotes") else r["method"],
                _fmt(r["ms"], ".1f"),
                _fmt(r["bound"], ".1e"),
                _fmt(r["vs_ref"], ".1e"),
                "–" if r["ratio"] is None else f"**{r['ratio']:.2f}**",
                r["note"],
            ]
        )
    header = ["task", "method", "ms", "bound", "vs ref", "ratio", "note"]
    return markdown_table(header, body, align="llrrrrl")
