"""The regression gate: compare two results files statistically (``pgvbench compare``)."""

from .core import CompareOptions, Comparison, Row, compare_results
from .environment import EnvironmentCheck, check_environment
from .runs import RULES
from .stats import Decision, MetricRule, decide, min_p_value

__all__ = [
    "RULES",
    "CompareOptions",
    "Comparison",
    "Decision",
    "EnvironmentCheck",
    "MetricRule",
    "Row",
    "check_environment",
    "compare_results",
    "decide",
    "min_p_value",
]
