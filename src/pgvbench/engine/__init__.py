"""Load engines: drive operations against the server and measure them."""

from .histogram import LatencyHistogram
from .outcome import EngineOutcome
from .threaded import LoadShape, run_load

__all__ = ["EngineOutcome", "LatencyHistogram", "LoadShape", "run_load"]
