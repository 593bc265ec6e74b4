"""Policy gradients without torch: tabular policies, trajectories, scores, baselines.

Imports core and estimators.
"""

__all__: list[str] = []
