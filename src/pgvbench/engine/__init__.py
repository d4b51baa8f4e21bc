"""Load engines: drive operations against the server and measure them."""

from .closed_loop import LoadOutcome, run_closed_loop
from .histogram import LatencyHistogram

__all__ = ["LatencyHistogram", "LoadOutcome", "run_closed_loop"]
