"""A server handle: applies a spec's settings to the server a run measures and returns
the target to connect to. The runner holds the handle, so [server.settings] and each
[[server.sweep]] entry go through one call whichever server it is.

- :class:`EmbeddedHandle`: the server pgvbench owns; ALTER SYSTEM, restart if needed.
- :class:`ExternalHandle`: someone else's server; session settings folded into the DSN.
- :class:`FixedHandle`: a target used as it is (settings already in place, e.g. tests).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping

from ..results import ServerSettingsInfo
from .cluster import with_options
from .connection import Target
from .embedded import EmbeddedServer
from .external import session_settings
from .replicas import ReplicaSet


@dataclasses.dataclass(frozen=True, kw_only=True)
class Applied:
    target: Target  # connect here from now on (an embedded server may have restarted)
    info: ServerSettingsInfo | None  # what became of each setting; None: nothing applied


class ServerHandle(abc.ABC):
    """Applies settings; ``embedded`` is the server pgvbench owns, if it owns one."""

    embedded: EmbeddedServer | None = None
    configurable = True  # can apply [[server.sweep]] entries

    @abc.abstractmethod
    def apply(self, settings: Mapping[str, str], *, where: str, table: str) -> Applied:
        """Put ``settings`` in force (on top of the server's base configuration); ``where``
        (the spec file) and ``table`` (e.g. "[server.settings]") name them in errors."""

    def check(self, settings: Mapping[str, str], *, base: Mapping[str, str], where: str) -> None:
        """Refuse settings the server would reject, before any work (embedded only; an
        external server's are checked by the caller, session settings being per DSN)."""
        return None


class EmbeddedHandle(ServerHandle):
    def __init__(self, server: EmbeddedServer, *, replicas: ReplicaSet | None = None) -> None:
        self.embedded = server
        self._server = server
        self._replicas = replicas

    def apply(self, settings: Mapping[str, str], *, where: str, table: str) -> Applied:
        applied = self._server.apply_settings(settings, source=where)
        if self._replicas is not None:
            # after the settings: each standby copies them (and must match some of them)
            self._replicas.start()
        return Applied(
            target=Target(
                dsn=self._server.dsn(),
                kind="embedded",
                bin_dir=self._server.bin_dir,
                postmaster_pid=self._server.postmaster_pid(),
                replicas=self._replicas.dsns() if self._replicas is not None else (),
            ),
            info=ServerSettingsInfo(
                requested=dict(settings),
                in_effect=applied.in_effect,
                not_applied=applied.not_applied,
                restarted=applied.restarted,
                method="ALTER SYSTEM",
            ),
        )

    def check(self, settings: Mapping[str, str], *, base: Mapping[str, str], where: str) -> None:
        self._server.check_settings(settings, base=base, where=where)


class ExternalHandle(ServerHandle):
    def __init__(self, dsn: str, *, replicas: tuple[str, ...] = ()) -> None:
        self._dsn = dsn
        self._replicas = replicas  # a multi-host --dsn's standbys (server/cluster.py)

    def apply(self, settings: Mapping[str, str], *, where: str, table: str) -> Applied:
        dsn, info = session_settings(self._dsn, settings, source=f"{where}: {table}")
        replicas = tuple(with_options(standby, dsn) for standby in self._replicas)
        return Applied(target=Target(dsn=dsn, kind="external", replicas=replicas), info=info)


class FixedHandle(ServerHandle):
    """A target taken as it is: no settings applied, no configurations to sweep."""

    def __init__(self, target: Target) -> None:
        self._target = target

    configurable = False

    def apply(self, settings: Mapping[str, str], *, where: str, table: str) -> Applied:
        return Applied(target=self._target, info=None)


def as_handle(target: Target | ServerHandle) -> ServerHandle:
    return target if isinstance(target, ServerHandle) else FixedHandle(target)
