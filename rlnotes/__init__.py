"""rlnotes: the algorithms of the book *Executable RL Derivations*.

Every public function validates its arguments, states the equation it computes and the
book label it implements, and is tested against an independent computation.
"""

from rlnotes.mdp import TabularMDP, random_mdp

# -- chapter 1: policies, trajectories and the score function ------------------------------
# (added by the chapter-1 work)
from rlnotes.policies import softmax_policy, softmax_score
from rlnotes.reinforce import CategoricalMLPPolicy, reinforce_loss, train_reinforce
from rlnotes.score import reinforce_gradients
from rlnotes.trajectories import (
    Trajectories,
    enumerate_trajectories,
    finite_horizon_objective,
    sample_trajectories,
)

# -- chapter 2: returns and advantage estimation -------------------------------------------
# (added by the chapter-2 work)
from rlnotes.baselines import (
    exact_gradient_variance,
    finite_horizon_values,
    optimal_baseline_coefficients,
    optimal_constant_baseline,
)
from rlnotes.returns import discounted_cumsum, gae, lambda_returns, reward_to_go

# -- chapter 3: Bellman operators, planning and Q-learning ---------------------------------
# (added by the chapter-3 work)
from rlnotes.bellman import bellman_operator, bellman_optimality_operator, policy_evaluation
from rlnotes.planning import PlanningResult, policy_iteration, value_iteration
from rlnotes.qlearning import QLearningResult, q_learning
from rlnotes.td import (
    BairdCounterexample,
    baird_counterexample,
    expected_residual_gradient,
    expected_semi_gradient_td,
    policy_chain,
    residual_gradient_update,
    semi_gradient_td0_update,
    stationary_distribution,
    td_fixed_point,
    td_matrices,
)

__version__ = "0.1.0"

__all__ = [
    # mdp
    "TabularMDP",
    "random_mdp",
    # chapter 1
    "softmax_policy",
    "softmax_score",
    "Trajectories",
    "enumerate_trajectories",
    "sample_trajectories",
    "finite_horizon_objective",
    "reinforce_gradients",
    "CategoricalMLPPolicy",
    "reinforce_loss",
    "train_reinforce",
    # chapter 2
    "exact_gradient_variance",
    "finite_horizon_values",
    "optimal_baseline_coefficients",
    "optimal_constant_baseline",
    "discounted_cumsum",
    "reward_to_go",
    "gae",
    "lambda_returns",
    # chapter 3
    "bellman_operator",
    "bellman_optimality_operator",
    "policy_evaluation",
    "PlanningResult",
    "value_iteration",
    "policy_iteration",
    "QLearningResult",
    "q_learning",
    "policy_chain",
    "stationary_distribution",
    "td_matrices",
    "td_fixed_point",
    "expected_semi_gradient_td",
    "expected_residual_gradient",
    "semi_gradient_td0_update",
    "residual_gradient_update",
    "BairdCounterexample",
    "baird_counterexample",
]
