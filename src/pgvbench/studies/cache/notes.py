"""The wording of the notes a cache record carries (kept in results.json beside the
figures they qualify): how pages were evicted, why the OS cache was or was not dropped,
what was skipped. Measurement code calls these instead of writing sentences itself."""

from __future__ import annotations

DROP_CACHES = "/proc/sys/vm/drop_caches"

EVICT_RELATION = "pg_buffercache_evict_relation"
EVICT_ALL = "pg_buffercache_evict_all"
EVICT_PER_BUFFER = "pg_buffercache_evict"


def eviction(method: str | None, buffers: int) -> str:
    """How the relations left shared_buffers (``method`` None: no eviction function)."""
    if method == EVICT_RELATION:
        return f"{EVICT_RELATION}: {buffers} buffers evicted"
    if method == EVICT_ALL:
        return f"{EVICT_ALL}: {buffers} buffers evicted"
    if method == EVICT_PER_BUFFER:
        return f"{EVICT_PER_BUFFER} per buffer: {buffers} buffers tried"
    return "no eviction function (pg_buffercache < 1.5, PostgreSQL < 17): not evicted"


OS_DROPPED = f"sync; echo 3 > {DROP_CACHES}"
OS_NOT_ROOT = "not root: dropping the OS page cache needs root"
OS_NOT_WRITABLE = f"{DROP_CACHES} is not writable (read-only /proc, e.g. an unprivileged container)"
OS_SPEC_OFF = "drop_os_cache = false in the spec"
OS_EXTERNAL = "external server: its OS page cache is not on this host to drop"


def os_drop_failed(error: BaseException) -> str:
    return f"writing {DROP_CACHES} failed: {error}"


SIZES_SKIPPED = (
    "shared_buffers sizes skipped: an external server is never restarted; "
    "measured with its current shared_buffers"
)
AUTOPREWARM_SKIPPED = "autoprewarm skipped: it needs a server restart"
NO_WARM_REFERENCE = "no warm run: steady state judged against this run's own window"


def not_applied(name: str, why: str) -> str:
    return f"{name} not applied: {why}"


def prewarmed(blocks: int) -> str:
    return f"pg_prewarm read {blocks} blocks"


def aborted(why: str) -> str:
    return f"load aborted: {why}"


def failed_queries(errors: int) -> str:
    return f"{errors} queries failed"
