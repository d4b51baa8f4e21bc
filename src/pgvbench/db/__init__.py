"""Schema, bulk loading and index builds inside pgvbench's own schema."""
