"""Servers pgvbench runs against: the embedded default or an external DSN."""

from .connection import Target, connect, redact_dsn
from .embedded import EmbeddedServer
from .locations import default_data_dir

__all__ = ["EmbeddedServer", "Target", "connect", "default_data_dir", "redact_dsn"]
