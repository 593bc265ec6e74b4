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
    "reinforce_weights": "rlnotes.nn.reinforce",
    "EpisodeBatch": "rlnotes.nn.rollout",
    "collect_episodes": "rlnotes.nn.rollout",
    "episode_returns": "rlnotes.nn.rollout",
    "step_in_episode": "rlnotes.nn.rollout",
    "batch_log_probs": "rlnotes.nn.rollout",
    # chapter 2: returns and advantage estimation
    "CriticFit": "rlnotes.nn.critic",
    "value_network": "rlnotes.nn.critic",
    "predict_values": "rlnotes.nn.critic",
    "fit_critic": "rlnotes.nn.critic",
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
    "td_lambda_linear": "rlnotes.td.linear",
    "linear_q_td_error": "rlnotes.td.linear_q",
    "q_loss_directional_derivative": "rlnotes.td.linear_q",
    "linear_q_learning_update": "rlnotes.td.linear_q",
    "linear_q_learning_field": "rlnotes.td.linear_q",
    "expected_linear_q_learning": "rlnotes.td.linear_q",
    "epsilon_greedy_policy": "rlnotes.td.linear_q",
    "expected_linear_sarsa": "rlnotes.td.linear_q",
    # chapter 4: soft Q-learning
    "soft_bellman_operator": "rlnotes.dp.soft",
    "soft_policy_evaluation": "rlnotes.dp.soft",
    "soft_value_iteration": "rlnotes.dp.soft",
    "soft_policy_iteration": "rlnotes.dp.soft",
    "boltzmann_policy": "rlnotes.dp.soft",
    "boltzmann_average": "rlnotes.dp.soft",
    "mellowmax": "rlnotes.dp.soft",
    "soft_q_learning": "rlnotes.td.qlearning",
    # chapter 5: the natural policy gradient
    "fisher_vector_product": "rlnotes.nn.natural",
    "conjugate_gradient": "rlnotes.nn.natural",
    "CGResult": "rlnotes.nn.natural",
    "mean_kl": "rlnotes.nn.natural",
    "natural_gradient_step": "rlnotes.nn.natural",
    "NaturalStepResult": "rlnotes.nn.natural",
    "trpo_step": "rlnotes.nn.natural",
    "TRPOStepResult": "rlnotes.nn.natural",
    "train_trpo": "rlnotes.nn.natural",
    "TRPOTrainingResult": "rlnotes.nn.natural",
    "softmax_fisher": "rlnotes.pg.natural_tabular",
    "softmax_policy_gradient": "rlnotes.pg.natural_tabular",
    "npg_update": "rlnotes.pg.natural_tabular",
    # chapter 6: occupancy measures
    "occupancy": "rlnotes.dp.occupancy",
    "occupancy_bound": "rlnotes.dp.occupancy",
    "flow_constraints": "rlnotes.dp.occupancy",
    "policy_from_occupancy": "rlnotes.dp.occupancy",
    "performance_difference": "rlnotes.dp.occupancy",
    "surrogate_objective": "rlnotes.dp.occupancy",
    "LPResult": "rlnotes.dp.lp",
    "solve_lp": "rlnotes.dp.lp",
    "ConstrainedLPResult": "rlnotes.dp.lp",
    "solve_constrained_lp": "rlnotes.dp.lp",
    # chapter 7: Q-Prop
    "importance_ratios": "rlnotes.estimators.importance",
    "ordinary_is_values": "rlnotes.estimators.importance",
    "per_decision_is_values": "rlnotes.estimators.importance",
    "QCriticMLP": "rlnotes.nn.qprop",
    "QCriticFit": "rlnotes.nn.qprop",
    "critic_action_gradient": "rlnotes.nn.qprop",
    "taylor_control_variate": "rlnotes.nn.qprop",
    "qprop_eta": "rlnotes.nn.qprop",
    "qprop_loss": "rlnotes.nn.qprop",
    "fit_q_critic": "rlnotes.nn.qprop",
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


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs; `name as name` re-exports
    from rlnotes.core.markov import (
        policy_chain as policy_chain,
        stationary_distribution as stationary_distribution,
    )
    from rlnotes.core.mdp import TabularMDP as TabularMDP, random_mdp as random_mdp
    from rlnotes.dp.bellman import (
        bellman_operator as bellman_operator,
        bellman_optimality_operator as bellman_optimality_operator,
        policy_evaluation as policy_evaluation,
    )
    from rlnotes.dp.lp import (
        ConstrainedLPResult as ConstrainedLPResult,
        LPResult as LPResult,
        solve_constrained_lp as solve_constrained_lp,
        solve_lp as solve_lp,
    )
    from rlnotes.dp.occupancy import (
        flow_constraints as flow_constraints,
        occupancy as occupancy,
        occupancy_bound as occupancy_bound,
        performance_difference as performance_difference,
        policy_from_occupancy as policy_from_occupancy,
        surrogate_objective as surrogate_objective,
    )
    from rlnotes.dp.planning import (
        PlanningResult as PlanningResult,
        policy_iteration as policy_iteration,
        value_iteration as value_iteration,
    )
    from rlnotes.dp.soft import (
        boltzmann_average as boltzmann_average,
        boltzmann_policy as boltzmann_policy,
        mellowmax as mellowmax,
        soft_bellman_operator as soft_bellman_operator,
        soft_policy_evaluation as soft_policy_evaluation,
        soft_policy_iteration as soft_policy_iteration,
        soft_value_iteration as soft_value_iteration,
    )
    from rlnotes.estimators.returns import (
        discounted_cumsum as discounted_cumsum,
        gae as gae,
        lambda_returns as lambda_returns,
        reward_to_go as reward_to_go,
    )
    from rlnotes.estimators.importance import (
        importance_ratios as importance_ratios,
        ordinary_is_values as ordinary_is_values,
        per_decision_is_values as per_decision_is_values,
    )
    from rlnotes.nn.policies import CategoricalMLPPolicy as CategoricalMLPPolicy
    from rlnotes.nn.qprop import (
        QCriticFit as QCriticFit,
        QCriticMLP as QCriticMLP,
        critic_action_gradient as critic_action_gradient,
        fit_q_critic as fit_q_critic,
        qprop_eta as qprop_eta,
        qprop_loss as qprop_loss,
        taylor_control_variate as taylor_control_variate,
    )
    from rlnotes.nn.critic import (
        CriticFit as CriticFit,
        fit_critic as fit_critic,
        predict_values as predict_values,
        value_network as value_network,
    )
    from rlnotes.nn.natural import (
        CGResult as CGResult,
        NaturalStepResult as NaturalStepResult,
        TRPOStepResult as TRPOStepResult,
        TRPOTrainingResult as TRPOTrainingResult,
        conjugate_gradient as conjugate_gradient,
        fisher_vector_product as fisher_vector_product,
        mean_kl as mean_kl,
        natural_gradient_step as natural_gradient_step,
        train_trpo as train_trpo,
        trpo_step as trpo_step,
    )
    from rlnotes.nn.reinforce import (
        reinforce_loss as reinforce_loss,
        reinforce_weights as reinforce_weights,
        train_reinforce as train_reinforce,
    )
    from rlnotes.nn.rollout import (
        EpisodeBatch as EpisodeBatch,
        batch_log_probs as batch_log_probs,
        collect_episodes as collect_episodes,
        episode_returns as episode_returns,
        step_in_episode as step_in_episode,
    )
    from rlnotes.pg.baselines import (
        exact_gradient_variance as exact_gradient_variance,
        finite_horizon_values as finite_horizon_values,
        optimal_baseline_coefficients as optimal_baseline_coefficients,
        optimal_constant_baseline as optimal_constant_baseline,
    )
    from rlnotes.pg.natural_tabular import (
        npg_update as npg_update,
        softmax_fisher as softmax_fisher,
        softmax_policy_gradient as softmax_policy_gradient,
    )
    from rlnotes.pg.policies import softmax_policy as softmax_policy, softmax_score as softmax_score
    from rlnotes.pg.score import reinforce_gradients as reinforce_gradients
    from rlnotes.pg.trajectories import (
        Trajectories as Trajectories,
        enumerate_trajectories as enumerate_trajectories,
        finite_horizon_objective as finite_horizon_objective,
        sample_trajectories as sample_trajectories,
    )
    from rlnotes.td.linear import (
        BairdCounterexample as BairdCounterexample,
        baird_counterexample as baird_counterexample,
        expected_residual_gradient as expected_residual_gradient,
        expected_semi_gradient_td as expected_semi_gradient_td,
        residual_gradient_update as residual_gradient_update,
        semi_gradient_td0_update as semi_gradient_td0_update,
        td_fixed_point as td_fixed_point,
        td_lambda_linear as td_lambda_linear,
        td_matrices as td_matrices,
    )
    from rlnotes.td.linear_q import (
        epsilon_greedy_policy as epsilon_greedy_policy,
        expected_linear_q_learning as expected_linear_q_learning,
        expected_linear_sarsa as expected_linear_sarsa,
        linear_q_learning_field as linear_q_learning_field,
        linear_q_learning_update as linear_q_learning_update,
        linear_q_td_error as linear_q_td_error,
        q_loss_directional_derivative as q_loss_directional_derivative,
    )
    from rlnotes.td.qlearning import (
        QLearningResult as QLearningResult,
        q_learning as q_learning,
        soft_q_learning as soft_q_learning,
    )
