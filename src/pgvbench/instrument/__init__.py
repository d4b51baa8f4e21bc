"""Collectors: read server counters as deltas over a phase."""
