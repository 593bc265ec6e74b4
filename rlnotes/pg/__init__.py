"""Policy gradients without torch: tabular policies, trajectories, scores, baselines.

Imports core and estimators.
"""
