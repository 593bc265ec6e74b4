"""Dynamic programming on a tabular MDP: Bellman operators, evaluation, planning (imports core)."""
