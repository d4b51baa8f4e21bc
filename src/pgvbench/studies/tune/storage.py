"""The tuning session's Optuna storage (SQLite), whose writes a signal cannot split."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from ..._deferred import signals_deferred


class HeldStorage(optuna.storages.RDBStorage):
    """RDBStorage whose every call runs with Ctrl-C/SIGTERM held until it returns.

    A KeyboardInterrupt raised inside SQLAlchemy's commit reaches the caller as Optuna's
    StorageInternalError: `pgvbench tune` interrupted at that instant ended in an
    "internal error" (exit 1, not 130). Each call is a short SQLite transaction, so
    holding the signal for it delays the stop by milliseconds.
    """


def _held(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with signals_deferred():
            return method(*args, **kwargs)

    return call


for _name, _method in vars(optuna.storages.BaseStorage).items():
    if not _name.startswith("_") and callable(_method):
        setattr(HeldStorage, _name, _held(getattr(optuna.storages.RDBStorage, _name)))


def storage(path: Path) -> HeldStorage:
    return HeldStorage(url=f"sqlite:///{path.resolve()}")
