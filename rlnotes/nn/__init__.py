"""Everything that needs torch: neural policies, REINFORCE (imports every layer below)."""
