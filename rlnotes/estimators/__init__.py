"""Backward recursions over time-major batches: returns, reward to go, GAE (imports core)."""
