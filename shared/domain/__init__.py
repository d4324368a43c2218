"""The shared domain library: what more than one function needs (design.md principle 2)."""
