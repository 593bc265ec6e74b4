"""Fisher-vector products, conjugate gradient, natural-gradient and TRPO steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rlnotes.nn.natural import (
    FVP_METHODS,
    _gauss_newton,
    _Policy,
    conjugate_gradient,
    fisher_vector_product,
    mean_kl,
    natural_gradient_step,
    train_trpo,
    trpo_step,
)
from rlnotes.nn.policies import CategoricalMLPPolicy, GaussianMLPPolicy, mlp

F64 = torch.float64


def _flat(grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def explicit_fisher(policy: nn.Module, obs: torch.Tensor, kind: str) -> torch.Tensor:
    """F = mean_i E_a[score score^T]: the categorical expectation by enumerating the actions,
    the Gaussian one through the closed-form Fisher of N(mu, sigma) in (mu, log sigma)."""
    params = [p for p in policy.parameters() if p.requires_grad]
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=F64)
    N = obs.shape[0]
    for i in range(N):
        if kind == "categorical":
            logp = torch.log_softmax(policy(obs[i : i + 1]), dim=-1)[0]
            probs = logp.exp().detach()
            for a in range(logp.shape[0]):
                s = _flat(torch.autograd.grad(logp[a], params, retain_graph=True))
                F += probs[a] * torch.outer(s, s) / N
        else:
            mean = policy(obs[i : i + 1])[0]
            log_std = policy.log_std
            assert isinstance(log_std, torch.Tensor)  # a Parameter or a buffer
            sig2 = torch.exp(2 * log_std.detach())
            for j in range(mean.shape[0]):
                gm = _flat(
                    torch.autograd.grad(
                        mean[j],
                        params,
                        retain_graph=True,
                        allow_unused=True,
                        materialize_grads=True,
                    )
                )
                F += torch.outer(gm, gm) / sig2[j] / N
                if log_std.requires_grad:
                    gs = _flat(
                        torch.autograd.grad(
                            log_std[j],
                            params,
                            retain_graph=True,
                            allow_unused=True,
                            materialize_grads=True,
                        )
                    )
                    F += 2.0 * torch.outer(gs, gs) / N
    return F


def sampled_fisher(policy: CategoricalMLPPolicy, obs: torch.Tensor) -> torch.Tensor:
    """The same F by the definition E[score score^T], with exact action weights (a check that
    explicit_fisher itself is the outer-product form)."""
    params = list(policy.parameters())
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=F64)
    for i in range(obs.shape[0]):
        dist = policy.distribution(obs[i])
        for a in range(policy.n_actions):
            lp = dist.log_prob(torch.tensor(a))
            s = _flat(torch.autograd.grad(lp, params, retain_graph=True))
            F += dist.probs[a].detach() * torch.outer(s, s) / obs.shape[0]
    return F


def autograd_kl_hessian(policy: nn.Module, obs: torch.Tensor, kind: str) -> torch.Tensor:
    """The full Hessian of the mean KL at theta' = theta, by torch.autograd.functional.hessian."""
    pol = _Policy(policy, obs, kind)
    from rlnotes.nn.natural import _kl

    with torch.no_grad():
        old = pol.outputs(pol.params)

    def f(flat: torch.Tensor) -> torch.Tensor:
        return _kl(kind, old, pol.outputs(pol.unflatten(flat)))

    H: torch.Tensor = torch.autograd.functional.hessian(f, pol.flat.clone())
    return H


def small_categorical(seed: int = 0) -> tuple[CategoricalMLPPolicy, torch.Tensor]:
    torch.manual_seed(seed)
    return CategoricalMLPPolicy(3, 4, hidden=5, dtype=F64), torch.randn(6, 3, dtype=F64)


def small_gaussian(seed: int = 0, learn_std: bool = True) -> tuple[GaussianMLPPolicy, torch.Tensor]:
    torch.manual_seed(seed)
    pol = GaussianMLPPolicy(3, 2, (4,), init_std=0.7, learn_std=learn_std, dtype=F64)
    with torch.no_grad():
        if learn_std:
            pol.log_std.copy_(torch.tensor([-0.3, 0.2], dtype=F64))
    return pol, torch.randn(5, 3, dtype=F64)


# ----------------------------------------------------------------------------- FVP routes


@pytest.mark.parametrize("method", FVP_METHODS)
@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_fvp_matches_explicit_fisher_categorical(method: str, damping: float) -> None:
    policy, obs = small_categorical()
    F = explicit_fisher(policy, obs, "categorical")
    assert torch.allclose(F, sampled_fisher(policy, obs), atol=1e-13)
    n = F.shape[0]
    fvp = fisher_vector_product(policy, obs, damping=damping, method=method)
    for seed in range(3):
        v = torch.randn(n, dtype=F64, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(fvp(v), F @ v + damping * v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("learn_std", [True, False])
@pytest.mark.parametrize("method", FVP_METHODS)
def test_fvp_matches_explicit_fisher_gaussian(method: str, learn_std: bool) -> None:
    policy, obs = small_gaussian(learn_std=learn_std)
    F = explicit_fisher(policy, obs, "gaussian")
    fvp = fisher_vector_product(policy, obs, damping=0.1, method=method)
    v = torch.randn(F.shape[0], dtype=F64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(fvp(v), F @ v + 0.1 * v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_fisher_is_the_kl_hessian(kind: str) -> None:
    policy, obs = small_categorical(2) if kind == "categorical" else small_gaussian(2)
    H = autograd_kl_hessian(policy, obs, kind)
    F = explicit_fisher(policy, obs, kind)
    assert torch.allclose(H, F, atol=1e-12)


def test_mlp_fast_path_matches_torch_func_jvp() -> None:
    """The hand-written tangent propagation agrees with torch.func.jvp (the generic route), on a
    deep ReLU/tanh Sequential and on both policies."""
    torch.manual_seed(3)
    seq = nn.Sequential(
        nn.Linear(4, 6, dtype=F64),
        nn.ReLU(),
        nn.Linear(6, 5, dtype=F64),
        nn.Tanh(),
        nn.Linear(5, 3, dtype=F64),
    )
    cases: list[tuple[nn.Module, torch.Tensor, str]] = [
        (seq, torch.randn(9, 4, dtype=F64), "categorical"),
        (*small_categorical(4), "categorical"),
        (*small_gaussian(4), "gaussian"),
    ]
    for module, obs, kind in cases:
        pol = _Policy(module, obs, kind)
        fast, generic = _gauss_newton(pol, 0.0, fast=True), _gauss_newton(pol, 0.0, fast=False)
        v = torch.randn(pol.flat.shape[0], dtype=F64)
        assert torch.allclose(fast(v), generic(v), atol=1e-13, rtol=0)


def test_generic_module_needs_distribution_and_falls_back() -> None:
    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp(3, 4, (5,), dtype=F64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.body(x) * 2.0
            return out

    module, obs = Wrapped(), torch.randn(4, 3, dtype=F64)
    with pytest.raises(TypeError, match="distribution"):
        fisher_vector_product(module, obs)
    a = fisher_vector_product(module, obs, distribution="categorical")
    b = fisher_vector_product(module, obs, distribution="categorical", method="double-backprop")
    v = torch.randn(sum(p.numel() for p in module.parameters()), dtype=F64)
    assert torch.allclose(a(v), b(v), atol=1e-13, rtol=0)


def test_routes_agree_in_float32() -> None:
    torch.manual_seed(5)
    net = mlp(8, 6, (64, 64))
    obs = torch.randn(128, 8)
    a = fisher_vector_product(net, obs, distribution="categorical")
    b = fisher_vector_product(net, obs, distribution="categorical", method="double-backprop")
    v = torch.randn(sum(p.numel() for p in net.parameters()))
    fa, fb = a(v), b(v)
    assert fa.dtype == torch.float32
    assert float((fa - fb).norm() / fb.norm()) < 1e-5


def test_softmax_null_space() -> None:
    """A direction that adds the same constant to every logit of the last layer is in the
    null space of F (the softmax is invariant to it)."""
    policy, obs = small_categorical(6)
    fvp = fisher_vector_product(policy, obs)
    names = [k for k, _ in policy.named_parameters()]
    parts = [torch.zeros_like(p) for p in policy.parameters()]
    parts[names.index("net.2.bias")] = torch.ones(policy.n_actions, dtype=F64)
    u = torch.cat([p.reshape(-1) for p in parts])
    assert float(fvp(u).abs().max()) < 1e-14
    damped = fisher_vector_product(policy, obs, damping=0.5)
    assert torch.allclose(damped(u), 0.5 * u, atol=1e-14)


def test_fvp_does_not_touch_the_policy_or_need_grad() -> None:
    policy, obs = small_categorical(7)
    before = [p.detach().clone() for p in policy.parameters()]
    with torch.no_grad():
        fvp = fisher_vector_product(policy, obs)
        out = fvp(torch.ones(sum(p.numel() for p in before), dtype=F64))
    assert torch.isfinite(out).all()
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
    assert all(p.grad is None for p in policy.parameters())


# ----------------------------------------------------------------------------- CG


def test_cg_matches_numpy_solve() -> None:
    rng = np.random.default_rng(0)
    B = rng.normal(size=(30, 30))
    A = B @ B.T + 0.5 * np.eye(30)
    b = rng.normal(size=30)
    At = torch.from_numpy(A)
    res = conjugate_gradient(lambda v: At @ v, torch.from_numpy(b), 200, tol=1e-12)
    assert res.converged
    assert np.allclose(res.solution.numpy(), np.linalg.solve(A, b), atol=1e-9)
    assert len(res.residual_norms) == res.iterations + 1
    assert res.residual_norms[0] == pytest.approx(float(np.linalg.norm(b)))
    true_res = np.linalg.norm(b - A @ res.solution.numpy())
    assert true_res <= 1e-9 * np.linalg.norm(b)


def test_cg_is_exact_after_as_many_iterations_as_distinct_eigenvalues() -> None:
    rng = np.random.default_rng(1)
    Qm, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    A = Qm @ np.diag(np.repeat([1.0, 3.0, 10.0], 4)) @ Qm.T
    b = rng.normal(size=12)
    At = torch.from_numpy(A)
    res = conjugate_gradient(lambda v: At @ v, torch.from_numpy(b), 10, tol=1e-12)
    assert res.iterations == 3 and res.converged
    assert np.allclose(res.solution.numpy(), np.linalg.solve(A, b), atol=1e-10)
    two = conjugate_gradient(lambda v: At @ v, torch.from_numpy(b), 2, tol=1e-12)
    assert not two.converged and two.residual_norms[-1] > 1e-3


def test_cg_solves_the_damped_fisher() -> None:
    policy, obs = small_categorical(8)
    F = explicit_fisher(policy, obs, "categorical")
    g = torch.randn(F.shape[0], dtype=F64)
    fvp = fisher_vector_product(policy, obs, damping=0.1)
    res = conjugate_gradient(fvp, g, 200, tol=1e-12)
    exact = np.linalg.solve(F.numpy() + 0.1 * np.eye(F.shape[0]), g.numpy())
    assert res.converged
    assert np.allclose(res.solution.numpy(), exact, atol=1e-8)


def test_cg_detects_non_positive_definite() -> None:
    A = torch.diag(torch.tensor([1.0, -2.0, 3.0], dtype=F64))
    with pytest.raises(ValueError, match="Avp is not positive definite"):
        conjugate_gradient(lambda v: A @ v, torch.ones(3, dtype=F64), 10)
    zero = torch.zeros(3, 3, dtype=F64)
    with pytest.raises(ValueError, match="Avp"):
        conjugate_gradient(lambda v: zero @ v, torch.ones(3, dtype=F64), 10)
    with pytest.raises(ValueError, match="Avp"):
        conjugate_gradient(lambda v: v * math.nan, torch.ones(3, dtype=F64), 10)


def test_cg_zero_rhs() -> None:
    res = conjugate_gradient(lambda v: v, torch.zeros(4, dtype=F64))
    assert res.converged and res.iterations == 0 and float(res.solution.abs().max()) == 0.0


def test_cg_hostile_inputs() -> None:
    I3 = lambda v: v  # noqa: E731
    with pytest.raises(ValueError, match="^b contains NaN"):
        conjugate_gradient(I3, torch.tensor([1.0, math.inf, 0.0]))
    with pytest.raises(ValueError, match="^b must be"):
        conjugate_gradient(I3, torch.ones(2, 2))
    with pytest.raises(TypeError, match="^b must be a torch.Tensor"):
        conjugate_gradient(I3, np.ones(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^b must be a floating"):
        conjugate_gradient(I3, torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="^Avp must be callable"):
        conjugate_gradient("A", torch.ones(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^iterations"):
        conjugate_gradient(I3, torch.ones(3), 0)
    with pytest.raises(TypeError, match="^iterations"):
        conjugate_gradient(I3, torch.ones(3), 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^tol"):
        conjugate_gradient(I3, torch.ones(3), tol=-1.0)
    with pytest.raises(TypeError, match="^tol"):
        conjugate_gradient(I3, torch.ones(3), tol="small")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^Avp must return"):
        conjugate_gradient(lambda v: v[:2], torch.ones(3))


# ----------------------------------------------------------------------------- FVP errors


def test_fvp_hostile_inputs() -> None:
    policy, obs = small_categorical()
    n = sum(p.numel() for p in policy.parameters())
    fvp = fisher_vector_product(policy, obs)
    with pytest.raises(ValueError, match="^v contains NaN or inf"):
        fvp(torch.full((n,), math.nan, dtype=F64))
    with pytest.raises(ValueError, match="^v contains NaN or inf"):
        fvp(torch.full((n,), math.inf, dtype=F64))
    with pytest.raises(ValueError, match=rf"^v must be a flat vector of shape \({n},\)"):
        fvp(torch.ones(n + 1, dtype=F64))
    with pytest.raises(ValueError, match="^v must be a flat vector"):
        fvp(torch.ones(1, n, dtype=F64))
    with pytest.raises(TypeError, match="^v must have dtype"):
        fvp(torch.ones(n, dtype=torch.float32))
    with pytest.raises(TypeError, match="^v must be a torch.Tensor"):
        fvp(np.ones(n))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^damping must lie in"):
        fisher_vector_product(policy, obs, damping=-0.1)
    with pytest.raises(ValueError, match="^damping"):
        fisher_vector_product(policy, obs, damping=math.nan)
    with pytest.raises(TypeError, match="^damping"):
        fisher_vector_product(policy, obs, damping=True)
    with pytest.raises(TypeError, match="^damping"):
        fisher_vector_product(policy, obs, damping="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^method"):
        fisher_vector_product(policy, obs, method="exact")
    with pytest.raises(ValueError, match="^distribution"):
        fisher_vector_product(policy, obs, distribution="beta")
    with pytest.raises(TypeError, match="^policy must be"):
        fisher_vector_product(lambda x: x, obs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^observations must have the parameters' dtype"):
        fisher_vector_product(policy, obs.float())
    with pytest.raises(ValueError, match="^observations must have shape"):
        fisher_vector_product(policy, obs[0])
    with pytest.raises(ValueError, match="^observations must have shape"):
        fisher_vector_product(policy, obs[:0])
    bad = obs.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="^observations contains NaN"):
        fisher_vector_product(policy, bad)
    with pytest.raises(TypeError, match="^observations must be a torch.Tensor"):
        fisher_vector_product(policy, obs.numpy())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^observations must have shape"):
        fisher_vector_product(policy, torch.ones(3, 5, dtype=F64))
    with pytest.raises(ValueError, match="^observations must have shape"):
        fisher_vector_product(
            mlp(3, 4, (5,), dtype=F64), torch.ones(3, 5, dtype=F64), distribution="categorical"
        )


# ----------------------------------------------------------------------------- steps


def _batch(seed: int = 0) -> tuple[CategoricalMLPPolicy, torch.Tensor, torch.Tensor, torch.Tensor]:
    policy, _ = small_categorical(seed)
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(64, 3, dtype=F64, generator=gen)
    with torch.no_grad():
        actions = policy.distribution(obs).sample()
    adv = torch.randn(64, dtype=F64, generator=gen) + (actions == 1).to(F64)
    return policy, obs, actions, adv


def test_natural_gradient_step_fixed_and_kl_normalized() -> None:
    policy, obs, _, _ = _batch(1)
    n = sum(p.numel() for p in policy.parameters())
    g = torch.randn(n, dtype=F64, generator=torch.Generator().manual_seed(2))
    F = explicit_fisher(policy, obs, "categorical").numpy() + 1e-2 * np.eye(n)
    x = np.linalg.solve(F, g.numpy())
    fixed = natural_gradient_step(policy, obs, g, step_size=0.05, cg_iterations=200)
    assert fixed.step_size == 0.05
    assert np.allclose(fixed.direction.numpy(), x, atol=1e-7)
    theta = torch.nn.utils.parameters_to_vector(policy.parameters())
    assert torch.allclose(fixed.parameters, theta + 0.05 * fixed.direction)
    assert fixed.kl == pytest.approx(mean_kl(policy, obs, fixed.parameters))
    normalized = natural_gradient_step(policy, obs, g, max_kl=1e-8, cg_iterations=200)
    assert normalized.step_size == pytest.approx(math.sqrt(2e-8 / float(x @ F @ x)), rel=1e-6)
    # the KL is (1/2) a^2 x^T F x to second order; damping makes that smaller than delta
    F0 = F - 1e-2 * np.eye(n)
    quad = 0.5 * normalized.step_size**2 * float(x @ F0 @ x)
    assert normalized.kl == pytest.approx(quad, rel=0.05)
    assert quad <= 1e-8
    with pytest.raises(ValueError, match="step_size and max_kl"):
        natural_gradient_step(policy, obs, g)
    with pytest.raises(ValueError, match="step_size and max_kl"):
        natural_gradient_step(policy, obs, g, step_size=1.0, max_kl=0.1)
    with pytest.raises(ValueError, match="^gradient must be a flat vector"):
        natural_gradient_step(policy, obs, g[:-1], step_size=1.0)
    with pytest.raises(ValueError, match="^gradient contains NaN"):
        natural_gradient_step(policy, obs, g * math.nan, step_size=1.0)
    with pytest.raises(ValueError, match="^step_size"):
        natural_gradient_step(policy, obs, g, step_size=-1.0)
    with pytest.raises(ValueError, match="^max_kl"):
        natural_gradient_step(policy, obs, g, max_kl=0.0)
    with pytest.raises(ValueError, match="^damping"):
        natural_gradient_step(policy, obs, g, step_size=1.0, damping=-1.0)
    with pytest.raises(ValueError, match="^cg_iterations"):
        natural_gradient_step(policy, obs, g, step_size=1.0, cg_iterations=0)


@pytest.mark.parametrize("max_kl", [1e-3, 1e-2, 0.1, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trpo_respects_the_trust_region_after_every_accepted_step(max_kl: float, seed: int) -> None:
    policy, obs, actions, adv = _batch(seed)
    for _ in range(3):
        res = trpo_step(policy, obs, actions, adv, max_kl=max_kl)
        measured = mean_kl(policy, obs, res.parameters)
        if res.accepted:
            assert measured <= max_kl
            assert res.kl == pytest.approx(measured, rel=1e-9, abs=1e-15)
            assert res.improvement > 0
            assert 0 < res.step_size
            assert res.backtracks < 10
        else:
            assert res.step_size == 0.0 and measured == 0.0
        torch.nn.utils.vector_to_parameters(res.parameters, policy.parameters())


def test_trpo_step_size_is_the_quadratic_trust_region_times_beta_power() -> None:
    policy, obs, actions, adv = _batch(3)
    res = trpo_step(policy, obs, actions, adv, max_kl=0.01, damping=0.0, cg_iterations=300)
    assert res.accepted
    F = explicit_fisher(policy, obs, "categorical").numpy()
    x = res.direction.numpy()
    full = math.sqrt(2 * 0.01 / float(x @ F @ x))
    assert res.step_size == pytest.approx(full * 0.8**res.backtracks, rel=1e-6)


def test_trpo_rejects_when_nothing_improves() -> None:
    policy, obs, actions, _ = _batch(4)
    res = trpo_step(policy, obs, actions, torch.zeros(64, dtype=F64))
    assert not res.accepted and res.step_size == 0.0
    theta = torch.nn.utils.parameters_to_vector(policy.parameters())
    assert torch.equal(res.parameters, theta)


def test_trpo_gaussian_policy() -> None:
    policy, _ = small_gaussian(5)
    gen = torch.Generator().manual_seed(5)
    obs = torch.randn(50, 3, dtype=F64, generator=gen)
    with torch.no_grad():
        actions = policy.distribution(obs).sample()
    adv = actions[:, 0] - actions[:, 0].mean()
    res = trpo_step(policy, obs, actions, adv, max_kl=0.02)
    assert res.accepted and res.kl <= 0.02
    assert res.kl == pytest.approx(mean_kl(policy, obs, res.parameters))
    # the Gaussian KL against torch.distributions
    new = GaussianMLPPolicy(3, 2, (4,), dtype=F64)
    torch.nn.utils.vector_to_parameters(res.parameters, new.parameters())
    with torch.no_grad():
        ref = torch.distributions.kl_divergence(policy.distribution(obs), new.distribution(obs))
    assert res.kl == pytest.approx(float(ref.mean()), rel=1e-10)


def test_trpo_hostile_inputs() -> None:
    policy, obs, actions, adv = _batch(0)
    with pytest.raises(ValueError, match="^max_kl"):
        trpo_step(policy, obs, actions, adv, max_kl=-1.0)
    with pytest.raises(ValueError, match="^backtrack_ratio"):
        trpo_step(policy, obs, actions, adv, backtrack_ratio=1.5)
    with pytest.raises(ValueError, match="^max_backtracks"):
        trpo_step(policy, obs, actions, adv, max_backtracks=0)
    with pytest.raises(ValueError, match="^advantages must have shape"):
        trpo_step(policy, obs, actions, adv[:-1])
    with pytest.raises(ValueError, match="^advantages contains NaN"):
        trpo_step(policy, obs, actions, adv * math.inf)
    with pytest.raises(TypeError, match="^advantages must have dtype"):
        trpo_step(policy, obs, actions, adv.float())
    with pytest.raises(ValueError, match="^actions must have shape"):
        trpo_step(policy, obs, actions[:-1], adv)
    with pytest.raises(ValueError, match="^actions must lie in"):
        trpo_step(policy, obs, actions + 10, adv)
    with pytest.raises(TypeError, match="^actions must be an integer tensor"):
        trpo_step(policy, obs, actions.to(F64), adv)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_unchanged() -> None:  # pragma: no cover - exercised only where a GPU exists
    policy, obs, actions, adv = _batch(0)
    dev = torch.device("cuda")
    policy_cuda = CategoricalMLPPolicy(3, 4, hidden=5, dtype=F64).to(dev)
    policy_cuda.load_state_dict(policy.state_dict())
    res_cpu = trpo_step(policy, obs, actions, adv)
    res_gpu = trpo_step(policy_cuda, obs.to(dev), actions.to(dev), adv.to(dev))
    assert res_gpu.parameters.device.type == "cuda"
    assert torch.allclose(res_gpu.parameters.cpu(), res_cpu.parameters, atol=1e-10)


# ----------------------------------------------------------------------------- training loop


def test_train_trpo_is_seeded_and_respects_the_trust_region() -> None:
    torch.set_num_threads(1)
    a = train_trpo(n_iterations=3, episodes_per_iteration=2, max_kl=0.01, seed=1)
    b = train_trpo(n_iterations=3, episodes_per_iteration=2, max_kl=0.01, seed=1)
    assert np.array_equal(a.returns, b.returns) and np.array_equal(a.kl, b.kl)
    assert a.returns.shape == a.kl.shape == a.step_sizes.shape == (3,)
    assert np.all(a.kl[a.accepted] <= 0.01) and np.all(a.kl[~a.accepted] == 0)
    assert np.all(a.n_steps >= 2) and np.all(a.returns > 0)


def test_train_trpo_hostile_inputs() -> None:
    with pytest.raises(TypeError, match="^env_id"):
        train_trpo(3, n_iterations=1, episodes_per_iteration=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^env_id"):
        train_trpo("NoSuchEnv-v0", n_iterations=1, episodes_per_iteration=1)
    with pytest.raises(ValueError, match="Discrete action space"):
        train_trpo("Pendulum-v1", n_iterations=1, episodes_per_iteration=1)
    with pytest.raises(ValueError, match="^n_iterations"):
        train_trpo(n_iterations=0, episodes_per_iteration=1)
    with pytest.raises(ValueError, match="^max_kl"):
        train_trpo(n_iterations=1, episodes_per_iteration=1, max_kl=0.0)
    with pytest.raises(ValueError, match="^damping"):
        train_trpo(n_iterations=1, episodes_per_iteration=1, damping=-1.0)
    with pytest.raises(TypeError, match="^seed"):
        train_trpo(n_iterations=1, episodes_per_iteration=1, seed=1.5)  # type: ignore[arg-type]
