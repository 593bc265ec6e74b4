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
