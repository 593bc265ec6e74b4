"""Import cost of rlnotes: ``import rlnotes`` must stay light (under 0.5 s here).

Run ``python benchmarks/import_time.py``. Each row is the best-of-k wall-clock time of a fresh
interpreter running one statement, minus the time of a fresh interpreter running ``pass``, so
the number is what the import itself costs. The eager row imports every torch and gymnasium
module of rlnotes, as ``import rlnotes`` did before its exports became lazy (PEP 562).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

try:
    from benchmarks.timing import markdown_table, run_cli
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from timing import markdown_table, run_cli  # type: ignore[no-redef,import-not-found]

STATEMENTS = {
    "python itself": "pass",
    "import rlnotes": "import rlnotes",
    "rlnotes + a numpy-only function": "import rlnotes; rlnotes.policy_iteration",
    "eager (torch and gymnasium too)": "import rlnotes, rlnotes.nn.reinforce, gymnasium",
}

#: The target for ``import rlnotes`` (seconds).
TARGET_S = 0.5


def _run(statement: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - t0


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """Best-of-k seconds per statement, interleaved so a busy moment hits all alike."""
    k = 3 if quick else 7
    best = {name: float("inf") for name in STATEMENTS}
    for _ in range(k):
        for name, statement in STATEMENTS.items():
            best[name] = min(best[name], _run(statement))
    base = best.pop("python itself")
    return [{"what": name, "seconds": max(t - base, 0.0)} for name, t in best.items()]


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'statement':34s} {'seconds':>8s}"]
    lines += [f"{r['what']:34s} {r['seconds']:8.3f}" for r in rows]
    light = next(r["seconds"] for r in rows if r["what"] == "import rlnotes")
    verdict = "met" if light < TARGET_S else "MISSED"
    lines.append(f"target: import rlnotes under {TARGET_S} s: {verdict}")
    return "\n".join(lines)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`measure` as a Markdown table, for the book's performance appendix."""
    body = [[f"`{r['what']}`", f"{r['seconds']:.3f}"] for r in rows]
    return markdown_table(["statement", "seconds"], body) + (
        f"\n\nTarget: `import rlnotes` under {TARGET_S} s."
    )


if __name__ == "__main__":
    run_cli(__doc__ or "", measure, format_table, "3 rounds instead of 7")
