"""Runners: one contract (``prepare()`` -> ``run(target)``) for every experiment kind.

base.py holds the contract and the study loop; vector.py the kNN experiment (builds,
sweeps, load tests), points.py one sweep point across its repeats, agents.py the agent
platform experiment.
"""

from .agents import AgentRunner
from .base import Runner
from .vector import ExperimentRunner, VectorRunner

__all__ = ["AgentRunner", "ExperimentRunner", "Runner", "VectorRunner"]
