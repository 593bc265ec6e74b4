"""Temporal-difference learning: tabular Q-learning and linear TD (imports core and dp)."""
