"""pgvbench: benchmarking and tuning toolkit for PostgreSQL vector workloads."""

__version__ = "0.1.0"
