r"""The natural policy gradient in torch: Fisher-vector products, conjugate gradient and TRPO.

The Fisher matrix of a policy over a batch of states,

.. math:: F(\theta) = \frac{1}{N} \sum_{i=1}^{N}
          \mathbb{E}_{a \sim \pi_\theta(\cdot \mid s_i)}
          \big[\nabla_\theta \log \pi_\theta(a \mid s_i)
               \nabla_\theta \log \pi_\theta(a \mid s_i)^\top\big],

has :math:`n^2` entries for :math:`n` parameters (4 TB in float32 for :math:`n = 10^6`), so it is
never formed. Instead :func:`fisher_vector_product` returns the map :math:`v \mapsto (F + \lambda
I) v`, computed in the Gauss--Newton form :math:`F v = \frac1N \sum_i J_i^\top M_i J_i v`, where
:math:`J_i` is the Jacobian of the distribution's parameters (logits, or mean and log standard
deviation) at state :math:`s_i` and :math:`M_i` the Fisher matrix of that output distribution:
one forward-mode product :math:`J v` and one reverse-mode product :math:`J^\top u`
(``torch.func.jvp`` and ``torch.func.vjp``). :func:`conjugate_gradient` solves
:math:`(F + \lambda I) x = g` with such products only, and :func:`natural_gradient_step` and
:func:`trpo_step` take the resulting steps, reporting the mean KL divergence they achieve.

Flat vectors follow the order of ``[p for p in policy.parameters() if p.requires_grad]``, the
order of :func:`torch.nn.utils.parameters_to_vector`; a step is applied with
:func:`torch.nn.utils.vector_to_parameters`. Everything runs on the device and in the dtype of
the policy's parameters (CPU or CUDA alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.func import functional_call, jvp, vjp

from rlnotes.core.validation import (
    FloatArray,
    check_gamma,
    check_positive_int,
    check_positive_real,
    check_real,
    check_seed,
)
from rlnotes.estimators.returns import gae
from rlnotes.nn.policies import CategoricalMLPPolicy, GaussianMLPPolicy, check_observations
from rlnotes.nn.rollout import (
    collect_episodes,
    episode_returns,
    make_discrete_control_env,
    step_in_episode,
)

__all__ = [
    "CGResult",
    "FVP_METHODS",
    "NaturalStepResult",
    "TRPOStepResult",
    "TRPOTrainingResult",
    "conjugate_gradient",
    "fisher_vector_product",
    "mean_kl",
    "natural_gradient_step",
    "train_trpo",
    "trpo_step",
]

#: The two exact routes of :func:`fisher_vector_product`.
FVP_METHODS = ("gauss-newton", "double-backprop")

#: The output distributions whose Fisher matrix :math:`M` is implemented.
DISTRIBUTIONS = ("categorical", "gaussian")

Params = dict[str, torch.Tensor]
Outputs = tuple[torch.Tensor, ...]


class CGResult(NamedTuple):
    """The result of :func:`conjugate_gradient`.

    Attributes
    ----------
    solution : torch.Tensor
        The last iterate :math:`x_k`, shape ``(n,)``.
    residual_norms : tuple of float
        :math:`\\|r_j\\|` for :math:`j = 0, \\dots, k`, the recursively updated residual
        :math:`r_j = b - A x_j` (:math:`r_0 = b`).
    iterations : int
        The number :math:`k` of iterations taken.
    converged : bool
        Whether :math:`\\|r_k\\| \\le \\mathrm{tol} \\cdot \\|b\\|`.
    """

    solution: torch.Tensor
    residual_norms: tuple[float, ...]
    iterations: int
    converged: bool


class NaturalStepResult(NamedTuple):
    """The result of :func:`natural_gradient_step`.

    Attributes
    ----------
    parameters : torch.Tensor
        The new flat parameters :math:`\\theta + \\alpha x` (detached; the policy is unchanged).
    direction : torch.Tensor
        :math:`x \\approx (F + \\lambda I)^{-1} g`, the conjugate-gradient solution.
    step_size : float
        The step :math:`\\alpha` that was applied.
    kl : float
        The measured mean :math:`\\mathrm{KL}(\\pi_\\theta \\,\\|\\, \\pi_{\\theta + \\alpha x})`
        over the batch of states.
    cg : CGResult
        The conjugate-gradient solve.
    """

    parameters: torch.Tensor
    direction: torch.Tensor
    step_size: float
    kl: float
    cg: CGResult


class TRPOStepResult(NamedTuple):
    """The result of :func:`trpo_step`.

    Attributes
    ----------
    parameters : torch.Tensor
        The accepted flat parameters (the old ones if no step was accepted).
    direction : torch.Tensor
        :math:`x \\approx (F + \\lambda I)^{-1} g`.
    step_size : float
        The accepted :math:`\\alpha`, a multiple :math:`\\beta^j` of the full step
        :math:`\\alpha_{\\max} = \\sqrt{2\\delta / x^\\top (F + \\lambda I) x}`; 0 if rejected.
    kl : float
        The measured mean KL of the accepted step (0 if rejected); at most ``max_kl``.
    improvement : float
        The measured improvement of the surrogate at the accepted step (0 if rejected).
    expected_improvement : float
        The first-order prediction :math:`\\alpha\\, g^\\top x` at the accepted (or, if
        rejected, the full) step.
    backtracks : int
        The number :math:`j` of step halvings (factor ``backtrack_ratio``) before acceptance.
    accepted : bool
        Whether a step satisfied both the KL bound and a positive surrogate improvement.
    cg : CGResult
        The conjugate-gradient solve.
    """

    parameters: torch.Tensor
    direction: torch.Tensor
    step_size: float
    kl: float
    improvement: float
    expected_improvement: float
    backtracks: int
    accepted: bool
    cg: CGResult


# --------------------------------------------------------------------------- validation


def _check_vector(name: str, v: Any, like: torch.Tensor) -> torch.Tensor:
    """A finite 1-d tensor of the dtype, device and length of ``like``."""
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if v.dtype != like.dtype:
        raise TypeError(f"{name} must have dtype {like.dtype}, got {v.dtype}")
    if v.shape != like.shape:
        raise ValueError(
            f"{name} must be a flat vector of shape {tuple(like.shape)} (one entry per "
            f"parameter), got shape {tuple(v.shape)}"
        )
    if v.device != like.device:
        raise ValueError(f"{name} must live on {like.device}, got {v.device}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return v


def _check_policy(policy: Any, distribution: str | None) -> str:
    if not isinstance(policy, nn.Module):
        raise TypeError(f"policy must be a torch.nn.Module, got {type(policy).__name__}")
    if distribution is None:
        if isinstance(policy, GaussianMLPPolicy):
            return "gaussian"
        if isinstance(policy, CategoricalMLPPolicy):
            return "categorical"
        raise TypeError(
            "distribution must be given ('categorical': the module returns logits; "
            "'gaussian': it returns the mean and has a log_std tensor) for a policy of type "
            f"{type(policy).__name__}"
        )
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "gaussian" and not isinstance(
        getattr(policy, "log_std", None), torch.Tensor
    ):
        raise TypeError("policy must have a tensor attribute log_std for distribution 'gaussian'")
    return distribution


def _check_observations(observations: Any, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(observations, torch.Tensor):
        raise TypeError(f"observations must be a torch.Tensor, got {type(observations).__name__}")
    if observations.dtype != like.dtype:
        raise TypeError(
            f"observations must have the parameters' dtype {like.dtype}, got {observations.dtype}"
        )
    if observations.ndim != 2 or observations.shape[0] == 0:
        raise ValueError(
            "observations must have shape (N, obs_dim) with N >= 1, got shape "
            f"{tuple(observations.shape)}"
        )
    if observations.device != like.device:
        raise ValueError(f"observations must live on {like.device}, got {observations.device}")
    if not bool(torch.isfinite(observations).all()):
        raise ValueError("observations contains NaN or inf")
    return observations


class _Policy:
    """A policy's trainable parameters as a pytree, and its output distribution as a function."""

    def __init__(self, policy: Any, observations: Any, distribution: str | None) -> None:
        self.kind = _check_policy(policy, distribution)
        self.module: nn.Module = policy
        named = [(k, p) for k, p in policy.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("policy has no trainable parameters")
        first = named[0][1]
        if not first.is_floating_point() or any(
            p.dtype != first.dtype or p.device != first.device for _, p in named
        ):
            raise TypeError("policy parameters must share one floating dtype and device")
        self.names = [k for k, _ in named]
        self.params: Params = {k: p.detach() for k, p in named}
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.flat = torch.cat([p.detach().reshape(-1) for _, p in named])
        self.buffers: Params = {k: b.detach() for k, b in policy.named_buffers()}
        self.obs = _check_observations(observations, first)
        obs_dim = getattr(policy, "obs_dim", None)
        if isinstance(obs_dim, int):
            check_observations(self.obs, obs_dim, "observations")
        else:
            first_layer = next((m for m in policy.modules() if isinstance(m, nn.Linear)), None)
            if first_layer is not None and self.obs.shape[1] != first_layer.in_features:
                raise ValueError(
                    f"observations must have shape (N, {first_layer.in_features}) to match the "
                    f"policy's first layer, got shape {tuple(self.obs.shape)}"
                )

    def unflatten(self, v: torch.Tensor) -> Params:
        parts = torch.split(v, self.numels)
        return {k: t.view(s) for k, t, s in zip(self.names, parts, self.shapes, strict=True)}

    def outputs(self, params: Params) -> Outputs:
        """The distribution parameters: ``(logits,)`` or ``(mean, log_std)``, each ``(N, k)``."""
        out = functional_call(self.module, (params, self.buffers), (self.obs,))
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            raise ValueError("policy must map observations (N, obs_dim) to a tensor (N, k)")
        if self.kind == "categorical":
            return (out,)
        log_std = params["log_std"] if "log_std" in params else self.buffers["log_std"]
        return (out, log_std.expand_as(out))


def _output_fisher(kind: str, outs: Outputs) -> Callable[[Outputs], Outputs]:
    r"""The map :math:`u \mapsto M u / N` of the output distribution's Fisher matrix :math:`M`.

    Softmax logits: :math:`M = \operatorname{diag}(p) - p p^\top`. Diagonal Gaussian in
    :math:`(\mu, \log\sigma)`: :math:`M = \operatorname{diag}(\sigma^{-2}, 2)`.
    """
    n = outs[0].shape[0]
    if kind == "categorical":
        p = torch.softmax(outs[0], dim=-1)

        def m_categorical(u: Outputs) -> Outputs:
            pu = p * u[0]
            return ((pu - p * pu.sum(dim=-1, keepdim=True)) / n,)

        return m_categorical
    inv_var = torch.exp(-2.0 * outs[1]) / n

    def m_gaussian(u: Outputs) -> Outputs:
        return (u[0] * inv_var, u[1] * (2.0 / n))

    return m_gaussian


def _kl(kind: str, old: Outputs, new: Outputs) -> torch.Tensor:
    """Mean over states of :math:`\\mathrm{KL}(\\pi_{\\mathrm{old}} \\| \\pi_{\\mathrm{new}})`."""
    if kind == "categorical":
        logp_old = torch.log_softmax(old[0], dim=-1)
        logp_new = torch.log_softmax(new[0], dim=-1)
        return (logp_old.exp() * (logp_old - logp_new)).sum(dim=-1).mean()
    (mu0, ls0), (mu1, ls1) = old, new
    var_ratio = torch.exp(2.0 * (ls0 - ls1))
    per = ls1 - ls0 + 0.5 * (var_ratio + (mu0 - mu1) ** 2 * torch.exp(-2.0 * ls1) - 1.0)
    return per.sum(dim=-1).mean()


def _log_prob(kind: str, outs: Outputs, actions: torch.Tensor) -> torch.Tensor:
    if kind == "categorical":
        return torch.log_softmax(outs[0], dim=-1).gather(-1, actions[:, None])[:, 0]
    mu, ls = outs
    z = (actions - mu) * torch.exp(-ls)
    return (-0.5 * z**2 - ls - 0.5 * math.log(2.0 * math.pi)).sum(dim=-1)


# --------------------------------------------------------------------------- Fisher products


#: Elementwise activations whose derivative the MLP fast path knows, from input z and output h.
_ACTIVATION_DERIVATIVES: dict[
    type[nn.Module], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
] = {
    nn.Tanh: lambda z, h: 1.0 - h * h,
    nn.ReLU: lambda z, h: (z > 0).to(h.dtype),
    nn.Identity: lambda z, h: torch.ones_like(h),
}


def _mlp_products(
    pol: _Policy,
) -> tuple[Outputs, Callable[[Params], Outputs], Callable[[Outputs], torch.Tensor]] | None:
    r"""Forward-mode :math:`v \mapsto J v` and reverse-mode :math:`u \mapsto J^\top u` for an MLP
    (an ``nn.Sequential`` of ``nn.Linear`` and tanh/ReLU layers, bare or inside one of the two
    policies of :mod:`rlnotes.nn.policies`), with the outputs at :math:`\theta`.

    The forward pass is recorded once (the input :math:`h_{l-1}` of every linear layer and
    :math:`\sigma'(z_l)` of every activation). A Jacobian-vector product then propagates the
    tangent, :math:`\dot z_l = \dot W_l h_{l-1} + \dot c_l + W_l \dot h_{l-1}`,
    :math:`\dot h_l = \sigma'(z_l) \odot \dot z_l`, :math:`\dot h_0 = 0` (the observations are
    constants); a vector-Jacobian product is backpropagation, :math:`\bar W_l = \bar z_l^\top
    h_{l-1}`, :math:`\bar c_l = \mathbf 1^\top \bar z_l`, :math:`\bar z_{l-1} = \sigma'(z_{l-1})
    \odot \bar z_l W_l`, written into one flat vector. The arithmetic of ``torch.func.jvp`` and
    ``torch.func.vjp`` (to which the other modules go, and against which this is tested),
    without re-running the primal pass or the transforms' overhead. ``None`` for other modules.
    """
    module = pol.module
    if type(module) is CategoricalMLPPolicy:
        seq, prefix = module.net, "net."
    elif type(module) is GaussianMLPPolicy:
        seq, prefix = module.mean_net, "mean_net."
    elif type(module) is nn.Sequential:
        seq, prefix = module, ""
    else:
        return None
    trainable = set(pol.names)
    layers: list[tuple[str, Any]] = []
    for i, layer in enumerate(seq):
        if type(layer) is nn.Linear:
            w, b = f"{prefix}{i}.weight", f"{prefix}{i}.bias"
            if w not in trainable or (layer.bias is not None and b not in trainable):
                return None
            layers.append(("linear", (w, b if layer.bias is not None else None)))
        elif type(layer) in _ACTIVATION_DERIVATIVES:
            layers.append(("act", (layer, _ACTIVATION_DERIVATIVES[type(layer)])))
        else:
            return None
    if not layers or layers[0][0] != "linear" or layers[-1][0] != "linear":
        return None
    extra = set(pol.names) - {n for kind, arg in layers if kind == "linear" for n in arg if n}
    if extra - {"log_std"}:
        return None
    records: list[torch.Tensor] = []
    with torch.no_grad():
        h = pol.obs
        for kind, arg in layers:
            if kind == "linear":
                w, b = arg
                records.append(h)
                h = nn.functional.linear(h, pol.params[w], None if b is None else pol.params[b])
            else:
                layer, derivative = arg
                z = h
                h = layer(z)
                records.append(derivative(z, h))
    mean_or_logits = h
    if pol.kind == "categorical":
        outs: Outputs = (mean_or_logits,)
    else:
        log_std = pol.params["log_std"] if "log_std" in pol.params else pol.buffers["log_std"]
        outs = (mean_or_logits, log_std.expand_as(mean_or_logits))
    offsets: dict[str, tuple[int, int, torch.Size]] = {}
    start = 0
    for name, numel, shape in zip(pol.names, pol.numels, pol.shapes, strict=True):
        offsets[name] = (start, start + numel, shape)
        start += numel
    n_total = start
    flat_like = pol.flat

    def jvp_mlp(tangents: Params) -> Outputs:
        t: torch.Tensor | None = None  # the tangent of the current activation
        for (kind, arg), rec in zip(layers, records, strict=True):
            if kind == "linear":
                w, b = arg
                zt = rec @ tangents[w].T
                if b is not None:
                    zt = zt + tangents[b]
                if t is not None:
                    zt = zt.addmm_(t, pol.params[w].T)
                t = zt
            else:
                assert t is not None
                t = t * rec
        assert t is not None
        if pol.kind == "categorical":
            return (t,)
        if "log_std" in tangents:
            return (t, tangents["log_std"].expand_as(t))
        return (t, torch.zeros_like(t))

    def vjp_mlp(u: Outputs) -> torch.Tensor:
        out = torch.empty(n_total, dtype=flat_like.dtype, device=flat_like.device)

        def slot(name: str) -> torch.Tensor:
            lo, hi, shape = offsets[name]
            return out[lo:hi].view(shape)

        if "log_std" in offsets:
            slot("log_std").copy_(u[1].sum(dim=0))
        delta = u[0]
        for idx in range(len(layers) - 1, -1, -1):
            kind, arg = layers[idx]
            rec = records[idx]
            if kind == "linear":
                w, b = arg
                torch.mm(delta.T, rec, out=slot(w))
                if b is not None:
                    torch.sum(delta, dim=0, out=slot(b))
                if idx > 0:
                    delta = delta @ pol.params[w]
            else:
                delta = delta * rec
        return out

    return outs, jvp_mlp, vjp_mlp


def _gauss_newton(
    pol: _Policy, lam: float, *, fast: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""The Gauss--Newton product :math:`(J^\top M J / N + \lambda I) v` of a validated policy."""
    like = pol.flat
    products = _mlp_products(pol) if fast else None
    if products is not None:
        outs, jvp_fast, vjp_fast = products
        m_fast = _output_fisher(pol.kind, outs)

        def fvp_mlp(v: torch.Tensor) -> torch.Tensor:
            v = _check_vector("v", v, like)
            flat = vjp_fast(m_fast(jvp_fast(pol.unflatten(v))))
            return flat.add_(v, alpha=lam) if lam else flat

        return fvp_mlp

    recorded = vjp(pol.outputs, pol.params)
    outs = tuple(o.detach() for o in recorded[0])
    vjp_fn = recorded[1]
    m_apply = _output_fisher(pol.kind, outs)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        v = _check_vector("v", v, like)
        jv = jvp(pol.outputs, (pol.params,), (pol.unflatten(v),))[1]
        (g,) = vjp_fn(m_apply(jv))
        flat = torch.cat([g[k].reshape(-1) for k in pol.names])
        return flat + lam * v if lam else flat

    return fvp


def fisher_vector_product(
    policy: nn.Module,
    observations: torch.Tensor,
    *,
    damping: float = 0.0,
    method: str = "gauss-newton",
    distribution: str | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""The map :math:`v \mapsto (F(\theta) + \lambda I)\, v`, without forming :math:`F`.

    .. math:: F v = \frac{1}{N} \sum_{i=1}^{N} J_i^\top M_i J_i v
              = \nabla^2_{\theta'} \frac1N \sum_{i=1}^N
                \mathrm{KL}\big(\pi_\theta(\cdot \mid s_i) \,\big\|\,
                \pi_{\theta'}(\cdot \mid s_i)\big)\Big|_{\theta' = \theta} v

    ``"gauss-newton"`` (default) evaluates the middle form with one Jacobian-vector product
    (forward mode, ``torch.func.jvp``), the output Fisher :math:`M_i`
    (:math:`\operatorname{diag}(p_i) - p_i p_i^\top` for softmax logits,
    :math:`\operatorname{diag}(\sigma^{-2}, 2)` for a diagonal Gaussian in
    :math:`(\mu, \log\sigma)`) and one vector-Jacobian product (reverse mode,
    ``torch.func.vjp``, whose forward pass is recorded once when the map is built).
    For an MLP (an ``nn.Sequential`` of ``nn.Linear`` and tanh/ReLU layers, bare or inside
    either policy of :mod:`rlnotes.nn.policies`) the two products are computed directly from
    the activations recorded once at build time: tangent propagation for :math:`J v` and
    backpropagation for :math:`J^\top u`, the same arithmetic without re-running the primal
    pass (tested against the ``torch.func`` route, which every other module takes).
    ``"double-backprop"`` differentiates :math:`\nabla_{\theta'} \mathrm{KL} \cdot v` again (the
    route of most TRPO codes). Both are exact: the Hessian of the KL is
    :math:`J^\top M J` plus a term weighted by :math:`\partial \mathrm{KL} / \partial z`, which
    vanishes at :math:`\theta' = \theta`.
    Book: eq-nat-gauss-newton, eq-nat-fisher-kl. Source: Martens (2020); Schulman et al. (2015).

    Parameters
    ----------
    policy : torch.nn.Module
        A :class:`~rlnotes.nn.policies.CategoricalMLPPolicy`,
        ``rlnotes.nn.policies.GaussianMLPPolicy``, or any module mapping observations
        ``(N, obs_dim)`` to logits (``distribution="categorical"``) or to the mean of a
        diagonal Gaussian with a ``log_std`` tensor attribute (``distribution="gaussian"``).
    observations : torch.Tensor, shape (N, obs_dim)
        The batch of states (dtype and device of the parameters).
    damping : float
        :math:`\lambda \ge 0`, added as :math:`\lambda I` (the Fisher is only semidefinite).
    method : {"gauss-newton", "double-backprop"}
        The route; both give the same product up to rounding.
    distribution : {"categorical", "gaussian"}, optional
        Inferred for the two policies of :mod:`rlnotes.nn.policies`.

    Returns
    -------
    callable
        ``fvp(v)`` for a flat vector ``v`` of shape ``(n,)`` (the parameters' dtype and device),
        returning a flat vector of the same shape. It raises ValueError for non-finite ``v`` or
        a wrong shape, TypeError for a wrong type or dtype.
    """
    lam = check_real("damping", damping, low=0.0)
    if method not in FVP_METHODS:
        raise ValueError(f"method must be one of {FVP_METHODS}, got {method!r}")
    pol = _Policy(policy, observations, distribution)
    like = pol.flat

    if method == "gauss-newton":
        return _gauss_newton(pol, lam, fast=True)

    leaves = {k: p.clone().requires_grad_(True) for k, p in pol.params.items()}
    with torch.no_grad():
        old = pol.outputs(pol.params)
    with torch.enable_grad():
        kl = _kl(pol.kind, old, pol.outputs(leaves))
        grads = torch.autograd.grad(kl, list(leaves.values()), create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    leaf_list = list(leaves.values())

    def fvp_double(v: torch.Tensor) -> torch.Tensor:
        v = _check_vector("v", v, like)
        with torch.enable_grad():
            hv = torch.autograd.grad(flat_grad @ v, leaf_list, retain_graph=True)
        flat = torch.cat([h.reshape(-1) for h in hv])
        return flat + lam * v if lam else flat

    return fvp_double


def mean_kl(
    policy: nn.Module,
    observations: torch.Tensor,
    parameters: torch.Tensor,
    *,
    distribution: str | None = None,
) -> float:
    r"""The mean KL divergence :math:`\frac1N \sum_i \mathrm{KL}(\pi_\theta(\cdot \mid s_i)
    \,\|\, \pi_{\theta'}(\cdot \mid s_i))` from the policy's parameters :math:`\theta` to the
    flat ``parameters`` :math:`\theta'`, in closed form (softmax or diagonal Gaussian).
    Book: eq-nat-fisher-kl. Source: Schulman et al. (2015).
    """
    pol = _Policy(policy, observations, distribution)
    new = pol.unflatten(_check_vector("parameters", parameters, pol.flat))
    with torch.no_grad():
        return float(_kl(pol.kind, pol.outputs(pol.params), pol.outputs(new)))


# --------------------------------------------------------------------------- conjugate gradient


def conjugate_gradient(
    Avp: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iterations: int = 10,
    *,
    tol: float = 1e-10,
) -> CGResult:
    r"""Conjugate gradient for :math:`A x = b`, :math:`A` symmetric positive definite, given as
    the product ``Avp(v)`` :math:`= A v` only.

    From :math:`x_0 = 0`, :math:`r_0 = p_0 = b`:
    :math:`\alpha_k = r_k^\top r_k / p_k^\top A p_k`, :math:`x_{k+1} = x_k + \alpha_k p_k`,
    :math:`r_{k+1} = r_k - \alpha_k A p_k`, :math:`p_{k+1} = r_{k+1} + (r_{k+1}^\top r_{k+1} /
    r_k^\top r_k)\, p_k`. In exact arithmetic it stops with the exact solution after at most as
    many iterations as :math:`A` has distinct eigenvalues. Each iteration costs one product.
    Book: thm-nat-cg-distinct. Source: Hestenes and Stiefel (1952).

    Parameters
    ----------
    Avp : callable
        ``v -> A v`` for flat tensors of the shape of ``b``.
    b : torch.Tensor, shape (n,)
        Right-hand side; finite.
    iterations : int
        Maximum number of iterations (>= 1).
    tol : float
        Stop when :math:`\|r_k\| \le \mathrm{tol} \cdot \|b\|` (relative residual, > 0).

    Returns
    -------
    CGResult

    Raises
    ------
    ValueError
        If ``b`` is not finite, or if ``Avp`` returns a non-finite vector or a curvature
        :math:`p_k^\top A p_k \le 0` (the product is not positive definite).
    """
    if not callable(Avp):
        raise TypeError(f"Avp must be callable, got {type(Avp).__name__}")
    if not isinstance(b, torch.Tensor):
        raise TypeError(f"b must be a torch.Tensor, got {type(b).__name__}")
    if not b.is_floating_point():
        raise TypeError(f"b must be a floating-point tensor, got dtype {b.dtype}")
    if b.ndim != 1 or b.numel() == 0:
        raise ValueError(f"b must be a non-empty flat vector, got shape {tuple(b.shape)}")
    if not bool(torch.isfinite(b).all()):
        raise ValueError("b contains NaN or inf")
    k_max = check_positive_int("iterations", iterations)
    rtol = check_positive_real("tol", tol)
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = float(r @ r)
    b_norm = math.sqrt(rr)
    norms = [b_norm]
    if b_norm == 0.0:
        return CGResult(x, tuple(norms), 0, True)
    k = 0
    for k in range(1, k_max + 1):
        Ap = Avp(p)
        if not isinstance(Ap, torch.Tensor) or Ap.shape != b.shape or Ap.dtype != b.dtype:
            raise ValueError(
                f"Avp must return a tensor of the shape and dtype of b {tuple(b.shape)}"
            )
        curvature = float(p @ Ap)
        if not math.isfinite(curvature) or not bool(torch.isfinite(Ap).all()):
            raise ValueError(f"Avp returned a non-finite product at iteration {k}")
        if curvature <= 0.0:
            raise ValueError(
                f"Avp is not positive definite: p^T A p = {curvature:.3g} <= 0 at iteration {k} "
                "(add damping, or check the product)"
            )
        alpha = rr / curvature
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = float(r @ r)
        norms.append(math.sqrt(rr_new))
        if math.sqrt(rr_new) <= rtol * b_norm:
            return CGResult(x, tuple(norms), k, True)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return CGResult(x, tuple(norms), k, False)


# --------------------------------------------------------------------------- steps


def _check_step_args(damping: Any, cg_iterations: Any, tol: Any) -> tuple[float, int, float]:
    return (
        check_real("damping", damping, low=0.0),
        check_positive_int("cg_iterations", cg_iterations),
        check_positive_real("tol", tol),
    )


def natural_gradient_step(
    policy: nn.Module,
    observations: torch.Tensor,
    gradient: torch.Tensor,
    *,
    step_size: float | None = None,
    max_kl: float | None = None,
    damping: float = 1e-2,
    cg_iterations: int = 10,
    tol: float = 1e-10,
    distribution: str | None = None,
) -> NaturalStepResult:
    r"""One natural-gradient ascent step :math:`\theta + \alpha x`,
    :math:`x \approx (F + \lambda I)^{-1} g` by conjugate gradient.

    Give exactly one of ``step_size`` (a fixed :math:`\alpha`, as in Kakade 2001) or ``max_kl``
    (:math:`\delta`; then :math:`\alpha = \sqrt{2\delta / x^\top (F + \lambda I) x}`, the step
    whose quadratic model of the KL equals :math:`\delta`). The step is not checked against the
    true KL; :func:`trpo_step` adds that line search. The policy is not modified.
    Book: eq-nat-metric-step, eq-nat-trpo-step. Source: Kakade (2001); Schulman et al. (2015).

    Parameters
    ----------
    policy, observations, distribution
        As in :func:`fisher_vector_product`.
    gradient : torch.Tensor, shape (n,)
        The (estimated) policy gradient :math:`g`, flat, finite.
    step_size, max_kl : float, optional
        Exactly one, > 0.
    damping : float
        :math:`\lambda \ge 0`.
    cg_iterations : int
        Iterations of :func:`conjugate_gradient`.
    tol : float
        Its relative residual tolerance.

    Returns
    -------
    NaturalStepResult
    """
    # the required arguments first, so that a wrong type is named before the optional ones
    pol = _Policy(policy, observations, distribution)
    g = _check_vector("gradient", gradient, pol.flat)
    lam, iters, rtol = _check_step_args(damping, cg_iterations, tol)
    if (step_size is None) == (max_kl is None):
        raise ValueError("step_size and max_kl: give exactly one of them")
    alpha = None if step_size is None else check_positive_real("step_size", step_size)
    delta = None if max_kl is None else check_positive_real("max_kl", max_kl)
    fvp = fisher_vector_product(policy, observations, damping=lam, distribution=pol.kind)
    cg = conjugate_gradient(fvp, g, iters, tol=rtol)
    x = cg.solution
    if alpha is None:
        assert delta is not None
        quad = float(x @ fvp(x))
        alpha = math.sqrt(2.0 * delta / quad) if quad > 0 else 0.0
    new = pol.flat + alpha * x
    with torch.no_grad():
        kl = float(_kl(pol.kind, pol.outputs(pol.params), pol.outputs(pol.unflatten(new))))
    return NaturalStepResult(new, x, float(alpha), kl, cg)


def trpo_step(
    policy: nn.Module,
    observations: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    *,
    max_kl: float = 0.01,
    damping: float = 1e-2,
    cg_iterations: int = 10,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 10,
    tol: float = 1e-10,
    distribution: str | None = None,
) -> TRPOStepResult:
    r"""One TRPO step: the natural direction, the largest step of the quadratic trust region,
    and a backtracking line search that checks the true KL and the surrogate.

    With the surrogate :math:`L(\theta') = \frac1N \sum_i
    \frac{\pi_{\theta'}(a_i \mid s_i)}{\pi_\theta(a_i \mid s_i)} \hat A_i` and
    :math:`g = \nabla L(\theta)`, :math:`x \approx (F + \lambda I)^{-1} g` and
    :math:`\alpha_{\max} = \sqrt{2\delta / x^\top (F + \lambda I) x}`, the step
    :math:`\alpha = \beta^j \alpha_{\max}` with the smallest :math:`j < ` ``max_backtracks`` is
    accepted for which the measured mean :math:`\mathrm{KL}(\pi_\theta \| \pi_{\theta + \alpha
    x}) \le \delta` and :math:`L(\theta + \alpha x) > L(\theta)`. If none is, the parameters
    stay. The policy is not modified.
    Book: eq-nat-trpo-step, eq-nat-trpo-problem. Source: Schulman et al. (2015), appendix C.

    Parameters
    ----------
    policy, observations, distribution
        As in :func:`fisher_vector_product`.
    actions : torch.Tensor
        Integer actions ``(N,)`` (categorical) or float actions ``(N, act_dim)`` (Gaussian).
    advantages : torch.Tensor, shape (N,)
        Advantage estimates :math:`\hat A_i`, finite (dtype of the parameters).
    max_kl : float
        :math:`\delta > 0`.
    damping : float
        :math:`\lambda \ge 0`.
    cg_iterations : int
        Iterations of :func:`conjugate_gradient`.
    backtrack_ratio : float
        :math:`\beta \in (0, 1)`.
    max_backtracks : int
        Number of candidate steps (>= 1).
    tol : float
        Relative residual tolerance of the conjugate gradient.

    Returns
    -------
    TRPOStepResult
    """
    lam, iters, rtol = _check_step_args(damping, cg_iterations, tol)
    delta = check_positive_real("max_kl", max_kl)
    beta = check_positive_real("backtrack_ratio", backtrack_ratio)
    if beta >= 1.0:
        raise ValueError(f"backtrack_ratio must lie in (0, 1), got {beta}")
    n_back = check_positive_int("max_backtracks", max_backtracks)
    pol = _Policy(policy, observations, distribution)
    n = pol.obs.shape[0]
    act = _check_actions(actions, pol, n)
    if not isinstance(advantages, torch.Tensor):
        raise TypeError(f"advantages must be a torch.Tensor, got {type(advantages).__name__}")
    if advantages.dtype != pol.flat.dtype:
        raise TypeError(f"advantages must have dtype {pol.flat.dtype}, got {advantages.dtype}")
    if advantages.shape != (n,):
        raise ValueError(f"advantages must have shape ({n},), got {tuple(advantages.shape)}")
    if not bool(torch.isfinite(advantages).all()):
        raise ValueError("advantages contains NaN or inf")
    adv = advantages.detach()

    with torch.no_grad():
        old = pol.outputs(pol.params)
        logp_old = _log_prob(pol.kind, old, act)

    def surrogate(params: Params) -> torch.Tensor:
        return (torch.exp(_log_prob(pol.kind, pol.outputs(params), act) - logp_old) * adv).mean()

    leaves = {k: p.clone().requires_grad_(True) for k, p in pol.params.items()}
    with torch.enable_grad():
        grads = torch.autograd.grad(surrogate(leaves), [leaves[k] for k in pol.names])
    g = torch.cat([t.reshape(-1) for t in grads])
    fvp = fisher_vector_product(policy, observations, damping=lam, distribution=pol.kind)
    cg = conjugate_gradient(fvp, g, iters, tol=rtol)
    x = cg.solution
    quad = float(x @ fvp(x))
    slope = float(g @ x)
    full = math.sqrt(2.0 * delta / quad) if quad > 0 else 0.0
    with torch.no_grad():
        base = float(surrogate(pol.params))
        for j in range(n_back):
            alpha = full * beta**j
            new = pol.flat + alpha * x
            params = pol.unflatten(new)
            outs = pol.outputs(params)
            kl = float(_kl(pol.kind, old, outs))
            gain = float((torch.exp(_log_prob(pol.kind, outs, act) - logp_old) * adv).mean()) - base
            if math.isfinite(kl) and kl <= delta and gain > 0.0:
                return TRPOStepResult(new, x, alpha, kl, gain, alpha * slope, j, True, cg)
    return TRPOStepResult(pol.flat.clone(), x, 0.0, 0.0, 0.0, full * slope, n_back, False, cg)


def _check_actions(actions: Any, pol: _Policy, n: int) -> torch.Tensor:
    if not isinstance(actions, torch.Tensor):
        raise TypeError(f"actions must be a torch.Tensor, got {type(actions).__name__}")
    if pol.kind == "categorical":
        if actions.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"actions must be an integer tensor, got dtype {actions.dtype}")
        if actions.shape != (n,):
            raise ValueError(f"actions must have shape ({n},), got {tuple(actions.shape)}")
        with torch.no_grad():
            k = pol.outputs(pol.params)[0].shape[-1]
        if n and (int(actions.min()) < 0 or int(actions.max()) >= k):
            raise ValueError(f"actions must lie in [0, {k}), got values outside")
        return actions.long()
    if actions.dtype != pol.flat.dtype:
        raise TypeError(f"actions must have dtype {pol.flat.dtype}, got {actions.dtype}")
    with torch.no_grad():
        k = pol.outputs(pol.params)[0].shape[-1]
    if actions.shape != (n, k):
        raise ValueError(f"actions must have shape ({n}, {k}), got {tuple(actions.shape)}")
    if not bool(torch.isfinite(actions).all()):
        raise ValueError("actions contains NaN or inf")
    return actions


# --------------------------------------------------------------------------- training loop


class TRPOTrainingResult(NamedTuple):
    """The result of :func:`train_trpo`, one entry per iteration.

    Attributes
    ----------
    returns : numpy.ndarray
        The mean undiscounted episode return of each iteration's batch (before its update).
    kl : numpy.ndarray
        The measured mean KL of each accepted step (0 where the step was rejected).
    step_sizes : numpy.ndarray
        The accepted :math:`\\alpha` of each iteration (0 where rejected).
    accepted : numpy.ndarray of bool
        Whether the line search accepted a step.
    n_steps : numpy.ndarray of int
        Environment steps in each iteration's batch.
    """

    returns: FloatArray
    kl: FloatArray
    step_sizes: FloatArray
    accepted: NDArray[np.bool_]
    n_steps: NDArray[np.int64]


def _baseline_features(obs: FloatArray, t: NDArray[np.int64]) -> FloatArray:
    """Rllab's linear baseline features: o, o^2, t, t^2, t^3 (t scaled by 1/100) and 1."""
    ts = (t[:, None] / 100.0).astype(np.float64)
    return np.hstack([obs, obs**2, ts, ts**2, ts**3, np.ones_like(ts)])


def train_trpo(
    env_id: str = "CartPole-v1",
    *,
    n_iterations: int,
    episodes_per_iteration: int,
    max_kl: float = 0.01,
    gamma: float = 0.99,
    lam: float = 0.97,
    damping: float = 0.1,
    cg_iterations: int = 10,
    hidden: int = 32,
    seed: int = 0,
) -> TRPOTrainingResult:
    r"""Train a :class:`~rlnotes.nn.policies.CategoricalMLPPolicy` with TRPO.

    Each iteration samples whole episodes with
    :func:`~rlnotes.nn.rollout.collect_episodes`, estimates advantages by GAE
    (:func:`~rlnotes.estimators.returns.gae`; a terminated step does not bootstrap, a truncated
    one does) against a linear value baseline (ridge regression of the :math:`\lambda`-returns on
    the features :math:`o, o^2, t, t^2, t^3, 1`, fitted on the previous batch, as in rllab),
    standardizes them, and applies one :func:`trpo_step`. The policy is float64; the run is a
    pure function of its arguments (torch's global random state is left as it was).
    Book: eq-nat-trpo-step. Source: Schulman et al. (2015); Duan et al. (2016), the baseline.

    Parameters
    ----------
    env_id : str
        A gymnasium environment with a 1-d Box observation and a Discrete action space.
    n_iterations, episodes_per_iteration : int
        Number of TRPO steps, and of whole episodes per step.
    max_kl, damping, cg_iterations
        As in :func:`trpo_step`.
    gamma, lam : float
        Discount and GAE :math:`\lambda`, in [0, 1].
    hidden : int
        Width of the policy's hidden layer.
    seed : int
        Non-negative seed of the network, the first reset and the action noise.

    Returns
    -------
    TRPOTrainingResult
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a string, got {type(env_id).__name__}")
    n_iter = check_positive_int("n_iterations", n_iterations)
    n_eps = check_positive_int("episodes_per_iteration", episodes_per_iteration)
    delta = check_positive_real("max_kl", max_kl)
    g = check_gamma(gamma, allow_one=True)
    lm = check_gamma(lam, "lam", allow_one=True)
    lam_damp = check_real("damping", damping, low=0.0)
    iters = check_positive_int("cg_iterations", cg_iterations)
    width = check_positive_int("hidden", hidden)
    sd = check_seed("seed", seed)
    env, obs_dim, n_actions = make_discrete_control_env(env_id)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sd)
            policy = CategoricalMLPPolicy(obs_dim, n_actions, width, dtype=torch.float64)
        sampler = torch.Generator().manual_seed(sd + 1)
        weights: FloatArray | None = None
        out = {k: np.zeros(n_iter) for k in ("returns", "kl", "step_sizes")}
        accepted = np.zeros(n_iter, dtype=bool)
        n_steps = np.zeros(n_iter, dtype=np.int64)
        for it in range(n_iter):
            batch = collect_episodes(
                env, policy, n_eps, seed=sd if it == 0 else None, generator=sampler
            )
            t = step_in_episode(batch)
            X = _baseline_features(np.asarray(batch.observations), t)
            X_next = _baseline_features(np.asarray(batch.next_observations), t + 1)
            values = np.zeros(len(t)) if weights is None else X @ weights
            next_values = np.zeros(len(t)) if weights is None else X_next @ weights
            adv = gae(batch.rewards, values, next_values, g, lm, batch.terminated, batch.truncated)
            targets = adv + values
            ridge = X.T @ X + 1e-3 * np.eye(X.shape[1])
            weights = np.asarray(np.linalg.solve(ridge, X.T @ targets), dtype=np.float64)
            std = float(adv.std())
            adv_std = (adv - adv.mean()) / (std if std > 0 else 1.0)
            res = trpo_step(
                policy,
                torch.tensor(np.asarray(batch.observations), dtype=torch.float64),
                torch.tensor(np.asarray(batch.actions), dtype=torch.int64),
                torch.tensor(adv_std, dtype=torch.float64),
                max_kl=delta,
                damping=lam_damp,
                cg_iterations=iters,
            )
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(res.parameters, policy.parameters())
            out["returns"][it] = float(episode_returns(batch).mean())
            out["kl"][it] = res.kl
            out["step_sizes"][it] = res.step_size
            accepted[it] = res.accepted
            n_steps[it] = len(t)
    finally:
        env.close()
    return TRPOTrainingResult(out["returns"], out["kl"], out["step_sizes"], accepted, n_steps)
