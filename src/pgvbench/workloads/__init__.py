"""Workloads: the SQL operations a benchmark drives."""
