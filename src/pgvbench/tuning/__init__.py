"""Tuning studies: build settings, cache states, result caches, quantization."""
