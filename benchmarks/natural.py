"""Speed of rlnotes.fisher_vector_product against double backprop of the mean KL.

Run ``python benchmarks/natural.py`` (``--quick``: fewer repeats and a smaller memory probe,
for the book's performance appendix). Setting, float32 on the CPU: an MLP policy
64 -> 512 -> 1024 -> 6 (tanh; 564,742 parameters) on a batch of 2048 states, 6 actions.

Candidates, each a map v -> F v built once per policy and batch:

* ``rlnotes``: :func:`rlnotes.fisher_vector_product`, the Gauss--Newton form J^T M J v (one
  forward-mode tangent pass, one reverse-mode product through the recorded forward pass);
* ``double backprop (cached)``: the route of sb3-contrib's TRPO: the gradient of the mean KL is
  built once with ``create_graph=True``; each product differentiates ``grad_kl . v`` again
  (``retain_graph=True``). Written here with plain ``torch.autograd``;
* ``double backprop (per call)``: the route of Spinning Up's TRPO: every product recomputes the
  KL, its gradient and then the gradient of ``grad_kl . v``.

Each peer's product is checked against rlnotes' (relative error of the vectors) before timing.
Times are best-of-k wall-clock seconds per product, the candidates interleaved round by round;
``ratio`` is the peer's time over rlnotes' (above 1: rlnotes is faster).

Memory: a 10-iteration conjugate-gradient solve with rlnotes' product on a policy with about
10^6 parameters (64 -> 512 -> 1900 -> 6), 2048 states, run in a fresh subprocess; the peak
resident memory above the resident memory after building the policy and the batch (Linux
``VmHWM`` after resetting it through ``/proc/self/clear_refs``), against the memory of the
parameters and of the activations, and against the explicit F (n^2 float32 entries).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

try:
    from benchmarks.timing import best_of, markdown_table, run_cli
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from timing import best_of, markdown_table, run_cli  # type: ignore[no-redef,import-not-found]

from rlnotes.nn.natural import fisher_vector_product
from rlnotes.nn.policies import mlp

OBS_DIM, N_ACTIONS, BATCH = 64, 6, 2048
HIDDEN = (512, 1024)
HIDDEN_MEMORY = (512, 1900)
SEED = 0

Vector = torch.Tensor


def make_problem(hidden: tuple[int, ...] = HIDDEN) -> tuple[torch.nn.Sequential, torch.Tensor]:
    torch.manual_seed(SEED)
    net = mlp(OBS_DIM, N_ACTIONS, hidden, dtype=torch.float32)
    obs = torch.randn(BATCH, OBS_DIM, generator=torch.Generator().manual_seed(SEED + 1))
    return net, obs


def _mean_kl(net: torch.nn.Module, obs: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(net(obs), dim=-1)
    return (logp_old.exp() * (logp_old - logp)).sum(dim=-1).mean()


def double_backprop_cached(net: torch.nn.Module, obs: torch.Tensor) -> Callable[[Vector], Vector]:
    """sb3-contrib's route: grad of the KL built once with create_graph, reused per product."""
    params = list(net.parameters())
    with torch.no_grad():
        logp_old = torch.log_softmax(net(obs), dim=-1)
    kl = _mean_kl(net, obs, logp_old)
    grads = torch.autograd.grad(kl, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: Vector) -> Vector:
        hv = torch.autograd.grad(flat @ v, params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv])

    return hvp


def double_backprop_per_call(net: torch.nn.Module, obs: torch.Tensor) -> Callable[[Vector], Vector]:
    """Spinning Up's route: the KL and its gradient are recomputed at every product."""
    params = list(net.parameters())
    with torch.no_grad():
        logp_old = torch.log_softmax(net(obs), dim=-1)

    def hvp(v: Vector) -> Vector:
        kl = _mean_kl(net, obs, logp_old)
        grads = torch.autograd.grad(kl, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad(flat @ v, params)
        return torch.cat([h.reshape(-1) for h in hv])

    return hvp


def _memory_probe(hidden: tuple[int, ...]) -> dict[str, float]:
    """Run in a fresh process: peak RSS of building the product and a 10-iteration CG solve."""
    code = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
import torch
from benchmarks.natural import make_problem
from rlnotes.nn.natural import conjugate_gradient, fisher_vector_product

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

net, obs = make_problem({hidden!r})
n = sum(p.numel() for p in net.parameters())
g = torch.randn(n, generator=torch.Generator().manual_seed(3))
# warm up the same code paths on 64 states, so that paging in torch's kernels is not counted
conjugate_gradient(fisher_vector_product(net, obs[:64], distribution="categorical"), g, 2)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
fvp = fisher_vector_product(net, obs, damping=0.1, distribution="categorical")
res = conjugate_gradient(fvp, g, 10)
peak = status("VmHWM")
print(json.dumps({{"n": n, "extra": peak - base, "iterations": res.iterations}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """One row per peer: seconds per product of rlnotes and the peer, the ratio, the error."""
    net, obs = make_problem()
    n = sum(p.numel() for p in net.parameters())
    v = torch.randn(n, generator=torch.Generator().manual_seed(2))
    cands = {
        "rlnotes": fisher_vector_product(net, obs, distribution="categorical"),
        "double backprop (cached)": double_backprop_cached(net, obs),
        "double backprop (per call)": double_backprop_per_call(net, obs),
    }
    ref = cands["rlnotes"](v)
    errors = {}
    for name, fn in cands.items():
        errors[name] = float((fn(v) - ref).norm() / ref.norm())
        if errors[name] > 1e-5:
            raise AssertionError(
                f"{name} disagrees with rlnotes: relative error {errors[name]:.2e}"
            )
    calls: dict[str, Callable[[], Any]] = {name: partial(fn, v) for name, fn in cands.items()}
    best, _ = best_of(calls, 3 if quick else 7)
    hidden_mem = (512, 1024) if quick else HIDDEN_MEMORY
    mem = _memory_probe(hidden_mem)
    widths = sum(hidden_mem) + N_ACTIONS
    rows = []
    for name in cands:
        if name == "rlnotes":
            continue
        rows.append(
            {
                "peer": name,
                "n": n,
                "rlnotes_ms": 1e3 * best["rlnotes"],
                "peer_ms": 1e3 * best[name],
                "ratio": best[name] / best["rlnotes"],
                "rel_error": errors[name],
            }
        )
    rows.append(
        {
            "peer": "memory",
            "n": int(mem["n"]),
            "cg_extra_mb": mem["extra"] / 2**20,
            "param_mb": 4 * mem["n"] / 2**20,
            "activation_mb": 4 * BATCH * widths / 2**20,
            "explicit_tb": 4 * mem["n"] ** 2 / 1e12,
        }
    )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"float32, MLP {OBS_DIM}-{'-'.join(map(str, HIDDEN))}-{N_ACTIONS}, {BATCH} states",
        f"{'peer':<28}{'n':>9}{'rlnotes ms':>12}{'peer ms':>10}{'ratio':>8}{'rel err':>10}",
    ]
    for r in rows:
        if r["peer"] == "memory":
            continue
        lines.append(
            f"{r['peer']:<28}{r['n']:>9}{r['rlnotes_ms']:>12.1f}{r['peer_ms']:>10.1f}"
            f"{r['ratio']:>8.2f}{r['rel_error']:>10.1e}"
        )
    m = rows[-1]
    lines.append(
        f"CG (10 iterations), n = {m['n']}: peak extra memory {m['cg_extra_mb']:.0f} MB; "
        f"parameters {m['param_mb']:.1f} MB, activations {m['activation_mb']:.1f} MB; "
        f"explicit F {m['explicit_tb']:.1f} TB"
    )
    lines.append("ratio = peer time / rlnotes time per product (> 1: rlnotes is faster)")
    return "\n".join(lines)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`measure` as Markdown tables, for the book's performance appendix."""
    body = [
        [
            f"`fisher_vector_product` vs {r['peer']}",
            str(r["n"]),
            f"{r['rlnotes_ms']:.1f}",
            f"{r['peer_ms']:.1f}",
            f"**{r['ratio']:.2f}**",
            f"{r['rel_error']:.1e}",
        ]
        for r in rows
        if r["peer"] != "memory"
    ]
    speed = markdown_table(
        ["product", "parameters", "rlnotes (ms)", "peer (ms)", "ratio", "relative error"],
        body,
    )
    m = rows[-1]
    memory = markdown_table(
        [
            "CG solve (10 iterations)",
            "parameters",
            "peak extra (MB)",
            "parameters (MB)",
            "activations (MB)",
            "explicit F (TB)",
        ],
        [
            [
                "`conjugate_gradient` + `fisher_vector_product`",
                str(m["n"]),
                f"{m['cg_extra_mb']:.0f}",
                f"{m['param_mb']:.1f}",
                f"{m['activation_mb']:.1f}",
                f"{m['explicit_tb']:.1f}",
            ]
        ],
    )
    return speed + "\n\n" + memory


def main() -> None:
    run_cli(__doc__.splitlines()[0], measure, format_table, "fewer repeats, smaller memory probe")


if __name__ == "__main__":
    main()
