"""CPU use of the load generator (this process) and of the server's processes."""

from __future__ import annotations

import resource

import psutil


def client_cpu_seconds() -> float:
    """User + system CPU of this process, all threads (the Python load generator)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ServerCpuProbe:
    """CPU seconds of a postmaster and all its backends, including exited ones.

    Backends that exit between two readings (connect_per_op) are still counted: the
    postmaster reaps them, so their time shows up in its ``children_*`` counters.
    """

    def __init__(self, postmaster_pid: int) -> None:
        self.process = psutil.Process(postmaster_pid)

    def seconds(self) -> float | None:
        try:
            own = self.process.cpu_times()
            total = own.user + own.system + own.children_user + own.children_system
            for child in self.process.children(recursive=False):
                try:
                    times = child.cpu_times()
                except psutil.Error:
                    continue  # exited between listing and reading: reaped soon, counted then
                total += times.user + times.system
            return total
        except psutil.Error:
            return None
