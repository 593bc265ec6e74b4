"""rlnotes: the algorithms of the book *Executable RL Derivations*.

Every public function validates its arguments, states the equation it computes and the book
label it implements, and is tested against an independent computation.

Layout
------
The package is layered; a module imports only from its own layer or the layers below it::

    core         argument checks, TabularMDP, Markov chains of policies
    dp           Bellman operators, policy evaluation, planning          (imports core)
    estimators   backward recursions: returns, reward to go, GAE         (imports core)
    pg           tabular policies, trajectories, score-function gradients (core, estimators)
    td           Q-learning and linear TD                                (core, dp)
    nn           everything that needs torch: MLP policies, REINFORCE    (all of the above)

``tests/test_layout.py`` enforces the rule. The public names below load lazily (PEP 562), so
``import rlnotes`` imports neither torch nor gymnasium; each name's module loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it. The order is the book's order.
_EXPORTS: dict[str, str] = {
    # core
    "TabularMDP": "rlnotes.core.mdp",
    "random_mdp": "rlnotes.core.mdp",
    "policy_chain": "rlnotes.core.markov",
    "stationary_distribution": "rlnotes.core.markov",
    # chapter 1: policies, trajectories and the score function
    "softmax_policy": "rlnotes.pg.policies",
    "softmax_score": "rlnotes.pg.policies",
    "Trajectories": "rlnotes.pg.trajectories",
    "enumerate_trajectories": "rlnotes.pg.trajectories",
    "sample_trajectories": "rlnotes.pg.trajectories",
    "finite_horizon_objective": "rlnotes.pg.trajectories",
    "reinforce_gradients": "rlnotes.pg.score",
    "CategoricalMLPPolicy": "rlnotes.nn.policies",
    "reinforce_loss": "rlnotes.nn.reinforce",
    "train_reinforce": "rlnotes.nn.reinforce",
    # chapter 2: returns and advantage estimation
    "exact_gradient_variance": "rlnotes.pg.baselines",
    "finite_horizon_values": "rlnotes.pg.baselines",
    "optimal_baseline_coefficients": "rlnotes.pg.baselines",
    "optimal_constant_baseline": "rlnotes.pg.baselines",
    "discounted_cumsum": "rlnotes.estimators.returns",
    "reward_to_go": "rlnotes.estimators.returns",
    "gae": "rlnotes.estimators.returns",
    "lambda_returns": "rlnotes.estimators.returns",
    # chapter 3: Bellman operators, planning and Q-learning
    "bellman_operator": "rlnotes.dp.bellman",
    "bellman_optimality_operator": "rlnotes.dp.bellman",
    "policy_evaluation": "rlnotes.dp.bellman",
    "PlanningResult": "rlnotes.dp.planning",
    "value_iteration": "rlnotes.dp.planning",
    "policy_iteration": "rlnotes.dp.planning",
    "QLearningResult": "rlnotes.td.qlearning",
    "q_learning": "rlnotes.td.qlearning",
    "td_matrices": "rlnotes.td.linear",
    "td_fixed_point": "rlnotes.td.linear",
    "expected_semi_gradient_td": "rlnotes.td.linear",
    "expected_residual_gradient": "rlnotes.td.linear",
    "semi_gradient_td0_update": "rlnotes.td.linear",
    "residual_gradient_update": "rlnotes.td.linear",
    "BairdCounterexample": "rlnotes.td.linear",
    "baird_counterexample": "rlnotes.td.linear",
    # chapter 4: soft Q-learning
    # chapter 5: the natural policy gradient
    # chapter 6: occupancy measures
    # chapter 7: Q-Prop
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name's module on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlnotes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from rlnotes.core.markov import policy_chain, stationary_distribution
    from rlnotes.core.mdp import TabularMDP, random_mdp
    from rlnotes.dp.bellman import bellman_operator, bellman_optimality_operator, policy_evaluation
    from rlnotes.dp.planning import PlanningResult, policy_iteration, value_iteration
    from rlnotes.estimators.returns import discounted_cumsum, gae, lambda_returns, reward_to_go
    from rlnotes.nn.policies import CategoricalMLPPolicy
    from rlnotes.nn.reinforce import reinforce_loss, train_reinforce
    from rlnotes.pg.baselines import (
        exact_gradient_variance,
        finite_horizon_values,
        optimal_baseline_coefficients,
        optimal_constant_baseline,
    )
    from rlnotes.pg.policies import softmax_policy, softmax_score
    from rlnotes.pg.score import reinforce_gradients
    from rlnotes.pg.trajectories import (
        Trajectories,
        enumerate_trajectories,
        finite_horizon_objective,
        sample_trajectories,
    )
    from rlnotes.td.linear import (
        BairdCounterexample,
        baird_counterexample,
        expected_residual_gradient,
        expected_semi_gradient_td,
        residual_gradient_update,
        semi_gradient_td0_update,
        td_fixed_point,
        td_matrices,
    )
    from rlnotes.td.qlearning import QLearningResult, q_learning
