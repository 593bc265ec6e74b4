r"""Neural policies in torch: one MLP builder, a categorical and a diagonal-Gaussian policy.

Every torch-based chapter (REINFORCE, the natural gradient, Q-Prop) builds its networks here, so
that a policy's parametrization is defined once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rlnotes.core.validation import check_positive_int, check_positive_real

__all__ = ["CategoricalMLPPolicy", "GaussianMLPPolicy", "check_observations", "mlp"]


def _check_dtype(dtype: torch.dtype | None) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch dtype or None, got {dtype!r}")


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (32,),
    *,
    activation: type[nn.Module] = nn.Tanh,
    dtype: torch.dtype | None = None,
) -> nn.Sequential:
    r"""A multilayer perceptron :math:`x \mapsto W_L \sigma(\cdots \sigma(W_1 x + c_1)) + c_L`.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths (>= 1).
    hidden : sequence of int
        Widths of the hidden layers, in order; empty gives one affine map.
    activation : type of torch.nn.Module
        The non-linearity :math:`\sigma` between layers (``nn.Tanh`` by default).
    dtype : torch.dtype, optional
        Floating-point type of the parameters; ``None`` means torch's default dtype.
    """
    sizes = [check_positive_int("in_dim", in_dim)]
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be a sequence of ints, got {type(hidden).__name__}")
    sizes += [check_positive_int("hidden", h) for h in hidden]
    sizes.append(check_positive_int("out_dim", out_dim))
    _check_dtype(dtype)
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise TypeError(f"activation must be a torch.nn.Module class, got {activation!r}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(a, b, dtype=dtype))
    return nn.Sequential(*layers)


def check_observations(obs: object, obs_dim: int, name: str = "obs") -> torch.Tensor:
    """Require a floating-point tensor of shape ``(*batch, obs_dim)`` with finite entries."""
    if not isinstance(obs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(obs).__name__}")
    if not obs.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {obs.dtype}")
    if obs.ndim == 0 or obs.shape[-1] != obs_dim:
        raise ValueError(
            f"{name} must have shape (*batch, {obs_dim}), got shape {tuple(obs.shape)}"
        )
    return obs


class CategoricalMLPPolicy(nn.Module):
    r"""A policy over ``n_actions`` discrete actions: a one-hidden-layer tanh MLP giving logits.

    .. math:: \pi_\theta(\cdot \mid o)
              = \operatorname{softmax}\big(W_2 \tanh(W_1 o + c_1) + c_2\big)

    Book: eq-sf-reinforce. Source: Williams (1992).

    Parameters
    ----------
    obs_dim : int
        Dimension of an observation vector.
    n_actions : int
        Number of actions (>= 2).
    hidden : int
        Width of the hidden layer.
    dtype : torch.dtype, optional
        Floating-point type of the parameters; ``None`` means torch's default dtype.
    """

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: int = 32, *, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.n_actions = check_positive_int("n_actions", n_actions, minimum=2)
        width = check_positive_int("hidden", hidden)
        self.net = mlp(self.obs_dim, self.n_actions, (width,), dtype=dtype)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The logits, shape ``(*batch, n_actions)``, of observations ``(*batch, obs_dim)``."""
        out: torch.Tensor = self.net(check_observations(obs, self.obs_dim))
        return out

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        """The action distribution :math:`\\pi_\\theta(\\cdot \\mid o)` as a torch Categorical."""
        return torch.distributions.Categorical(logits=self.forward(obs))


class GaussianMLPPolicy(nn.Module):
    r"""A diagonal-Gaussian policy: an MLP mean and a state-independent log standard deviation.

    .. math:: \pi_\theta(\cdot \mid o) = \mathcal{N}\big(\mu_\theta(o),
              \operatorname{diag}(e^{2 \log\sigma})\big)

    Source: Schulman et al. (2015), the TRPO policy for continuous control.

    Parameters
    ----------
    obs_dim, act_dim : int
        Dimensions of an observation and of an action.
    hidden : sequence of int
        Hidden widths of the mean network (tanh).
    init_std : float
        The initial standard deviation :math:`\sigma > 0` of every action coordinate.
    learn_std : bool
        Whether :math:`\log\sigma` is a parameter (default) or a fixed buffer.
    dtype : torch.dtype, optional
        Floating-point type of the parameters.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (32,),
        *,
        init_std: float = 1.0,
        learn_std: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.act_dim = check_positive_int("act_dim", act_dim)
        std = check_positive_real("init_std", init_std)
        if not isinstance(learn_std, bool):
            raise TypeError(f"learn_std must be a bool, got {type(learn_std).__name__}")
        self.mean_net = mlp(self.obs_dim, self.act_dim, hidden, dtype=dtype)
        log_std = torch.full((self.act_dim,), math.log(std), dtype=dtype)
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean action :math:`\\mu_\theta(o)`, shape ``(*batch, act_dim)``."""
        out: torch.Tensor = self.mean_net(check_observations(obs, self.obs_dim))
        return out

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Independent:  # type: ignore[type-arg]
        """:math:`\\pi_\theta(\\cdot \\mid o)`, whose ``log_prob`` sums over action coordinates."""
        mean = self.forward(obs)
        std = torch.exp(self.log_std).expand_as(mean)
        return torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)
