"""The bottom layer: argument checks, the tabular MDP, and the Markov chains of policies."""
