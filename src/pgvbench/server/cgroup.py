"""A smaller machine for the embedded server: a cgroup memory limit and a cpuset.

With ample host memory the OS page cache hides the point where index + heap stop fitting
in RAM. A cgroup's memory limit counts the page cache its processes bring in, so under
[server] memory_limit the server reads from disk where a machine of that size would; the
cpuset gives it [server] cpus cores.

One cgroup per data directory, named ``pgvbench-<hash of the data dir>``, directly under
the root of each hierarchy holding the controller (cgroup v1: memory and cpuset mounted
apart; v2: one unified directory; a host may mix them). pg_ctl joins the cgroup in its
child before exec (:meth:`ServerCgroup.preexec`), so the postmaster and every process it
forks are inside from their first page. The data dir records the cgroup (RECORD_FILE)
before it is made; only a recorded cgroup of that name is ever removed, once empty.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pwd
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import SafetyError, ServerError
from ..spec.machine import format_cpu_list, gib, host_cpus, parse_cpu_list
from ..spec.model import MachineLimits
from .cgroup_read import MOUNTS, PREFIX, Hierarchy, membership, oom_kills, read
from .cgroup_read import hierarchies as hierarchies  # re-exported

RECORD_FILE = "pgvbench.cgroup.json"
_EMPTY_WAIT_S = 10.0  # after pg_ctl stop -w the backends are gone; the kernel may lag


def cgroup_name(data_dir: Path) -> str:
    return PREFIX + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def _needed(limits: MachineLimits) -> list[str]:
    return [
        name
        for name, wanted in (("memory", limits.memory_bytes is not None), ("cpuset", limits.cpus))
        if wanted
    ]


def check_available(limits: MachineLimits | None) -> None:
    """Refuse (exit 2), before any work, limits this host cannot apply: never an unlimited
    run in their place."""
    if limits is None:
        return
    found = hierarchies()
    for name in _needed(limits):
        why = _unavailable(name, found.get(name))
        if why:
            key = "memory_limit" if name == "memory" else "cpus"
            raise ServerError(
                f"[server] {key} runs the embedded server in a cgroup with the {name} "
                f"controller, and {why}. pgvbench does not run without a limit it was asked "
                f"for: fix that, or remove {key} from [server] to use the whole host."
            )


def dsn_refusal(spec_path: object) -> str:
    """The error for [server] limits with --dsn (the message of a SpecError, exit 2)."""
    return (
        f"{spec_path}: [server] memory_limit / cpus run pgvbench's embedded server as a "
        "smaller machine; they cannot limit a server reached with --dsn. Remove them, or "
        "leave --dsn out to measure the embedded server under them (limit your own server "
        "with its own cgroup, container or instance size)."
    )


@contextlib.contextmanager
def client_beside(limits: MachineLimits | None) -> Iterator[tuple[int, ...]]:
    """Run this process (the load generator: threads, worker processes and pgbench started
    from now on inherit it) on the CPUs the server was not given, so [server] cpus are the
    server's own, as on a machine of that size with its clients elsewhere; yields those
    CPUs (() when the server has them all, and both share). Restored on exit."""
    before = os.sched_getaffinity(0)
    rest = tuple(c for c in host_cpus() if limits and limits.cpus and c not in limits.cpus)
    if rest:
        os.sched_setaffinity(0, rest)
    try:
        yield rest
    finally:
        if rest:
            os.sched_setaffinity(0, before)


def _unavailable(name: str, found: Hierarchy | None) -> str | None:
    if found is None:
        return (
            f"this host has none mounted ({MOUNTS} lists no cgroup v1 {name} hierarchy and "
            f"no cgroup2 mount offering it in cgroup.controllers)"
        )
    if found.read_only:
        return f"{found.root} is mounted read-only (e.g. an unprivileged container)"
    if not os.access(found.root, os.W_OK):
        return f"{found.root} is not writable by this user (uid {os.geteuid()}): run as root"
    return None


class ServerCgroup:
    """The cgroup(s) the server of one data directory runs in, with ``limits``."""

    def __init__(self, *, data_dir: Path, limits: MachineLimits) -> None:
        self.data_dir = data_dir
        self.limits = limits
        self.name = cgroup_name(data_dir)
        found = hierarchies()
        self.where: dict[str, Hierarchy] = {}
        for name in _needed(limits):
            hierarchy = found.get(name)
            why = _unavailable(name, hierarchy)
            if why or hierarchy is None:
                raise ServerError(f"cannot limit the embedded server's {name}: {why}")
            self.where[name] = hierarchy

    @property
    def dirs(self) -> list[Path]:
        """One directory per hierarchy (v2 holds both controllers in one)."""
        return list(dict.fromkeys(h.root / self.name for h in self.where.values()))

    def ensure(self) -> None:
        """Make the cgroup(s), or take back the recorded ones, and write the limits."""
        recorded = set(_recorded(self.data_dir))
        for path in self.dirs:
            if path.exists() and str(path) not in recorded:
                raise SafetyError(
                    f"the cgroup {path} exists but {self.data_dir / RECORD_FILE} does not "
                    "record pgvbench making it, so pgvbench will neither use nor remove it. "
                    f"If it is a leftover of a pgvbench run, remove it (rmdir {path}) and "
                    "run again."
                )
        _write_record(self.data_dir, sorted(recorded | {str(p) for p in self.dirs}))
        try:
            for name, hierarchy in self.where.items():
                path = hierarchy.root / self.name
                if hierarchy.version == 2:
                    _enable(hierarchy.root, name)
                path.mkdir(exist_ok=True)
                if name == "memory":
                    self._write_memory(hierarchy, path)
                else:
                    self._write_cpuset(hierarchy, path)
        except OSError as exc:
            release(self.data_dir)
            raise ServerError(
                f"cannot set up the cgroup {self.name} for [server] memory_limit / cpus: "
                f"{exc.strerror or exc} ({exc.filename or ''}); pgvbench removed what it had "
                "made and did not start the server."
            ) from None

    def _write_memory(self, hierarchy: Hierarchy, path: Path) -> None:
        limit = str(self.limits.memory_bytes)
        if hierarchy.version == 1:
            # memory + swap as well, at the same value: past the limit the server's own
            # memory is not swapped out (a small cloud instance has no swap), it is the
            # page cache that gives way, as on the machine simulated
            memsw = path / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text("-1")  # never below limit_in_bytes while it moves
            (path / "memory.limit_in_bytes").write_text(limit)
            if memsw.exists():
                memsw.write_text(limit)
        else:
            (path / "memory.max").write_text(limit)
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")

    def _write_cpuset(self, hierarchy: Hierarchy, path: Path) -> None:
        if hierarchy.version == 1:  # a v1 cpuset takes no process until both are set
            mems = read(hierarchy.root / "cpuset.effective_mems") or read(
                hierarchy.root / "cpuset.mems"
            )
            (path / "cpuset.mems").write_text(mems)
        (path / "cpuset.cpus").write_text(format_cpu_list(self.limits.cpus))

    def preexec(self, user: str | None) -> Callable[[], None]:
        """The child's set-up before exec: join the cgroup(s) as root, then drop to
        ``user`` (done here, not by subprocess, which would drop privileges first)."""
        procs = [os.fsencode(p / "cgroup.procs") for p in self.dirs]
        ids = None
        if user is not None:
            entry = pwd.getpwnam(user)
            ids = (entry.pw_uid, entry.pw_gid)

        def setup() -> None:  # after fork: system calls only
            pid = str(os.getpid()).encode()
            for path in procs:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            if ids is not None:
                os.setgroups([])
                os.setresgid(ids[1], ids[1], ids[1])
                os.setresuid(ids[0], ids[0], ids[0])

        return setup

    def holds(self, pid: int) -> bool:
        """Whether ``pid`` runs inside this cgroup for every limited controller."""
        member = membership(pid)
        for name, hierarchy in self.where.items():
            key = "" if hierarchy.version == 2 else name
            if member.get(key) != "/" + self.name:
                return False
        return True

    def in_effect(self) -> bool:
        """The cgroup's files hold this spec's limits (a kept server may have others)."""
        for name, hierarchy in self.where.items():
            path = hierarchy.root / self.name
            if name == "memory":
                file = "memory.limit_in_bytes" if hierarchy.version == 1 else "memory.max"
                if read(path / file) != str(self.limits.memory_bytes):
                    return False
            elif parse_cpu_list(read(path / "cpuset.cpus")) != self.limits.cpus:
                return False
        return True


def _enable(root: Path, controller: str) -> None:
    """v2: a child gets a controller only once its parent's subtree_control lists it."""
    control = root / "cgroup.subtree_control"
    if controller not in read(control).split():
        control.write_text(f"+{controller}")


def _recorded(data_dir: Path) -> list[str]:
    try:
        body = json.loads((data_dir / RECORD_FILE).read_text(encoding="utf-8"))
        return [str(p) for p in body["cgroups"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _write_record(data_dir: Path, paths: list[str]) -> None:
    body = {
        "created_by": "pgvbench",
        "cgroups": paths,
        "note": "cgroups pgvbench made for this data directory's server ([server] "
        "memory_limit / cpus); it removes them when the server stops.",
    }
    (data_dir / RECORD_FILE).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def release(data_dir: Path) -> str | None:
    """Remove the cgroups the data dir records, once their processes are gone; a notice
    when one cannot be removed (None when all went). Anything not of our naming directly
    under a cgroup mount is left alone, whatever the record says."""
    recorded = _recorded(data_dir)
    if not recorded:
        return None
    roots = {h.root for h in hierarchies().values()}
    expected = cgroup_name(data_dir)
    problems: list[str] = []
    for text in recorded:
        path = Path(text)
        if path.name != expected or path.parent not in roots or not path.is_dir():
            continue
        deadline = time.monotonic() + _EMPTY_WAIT_S
        while read(path / "cgroup.procs") and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            path.rmdir()
        except OSError as exc:
            pids = ", ".join(read(path / "cgroup.procs").split()) or "none"
            problems.append(f"{path} ({exc.strerror or exc}; processes still in it: {pids})")
    if problems:
        return (
            "pgvbench could not remove the cgroup it made for the server: "
            + "; ".join(problems)
            + ". Remove it with rmdir once those processes have ended."
        )
    with contextlib.suppress(FileNotFoundError):
        (data_dir / RECORD_FILE).unlink()
    return None


def confined(data_dir: Path, pid: int) -> bool:
    """Whether ``pid`` runs in a cgroup pgvbench made for this data directory."""
    name = "/" + cgroup_name(data_dir)
    return name in membership(pid).values()


def oom_failure(data_dir: Path, limits: MachineLimits | None) -> str | None:
    """Why the run failed when the kernel killed server processes for want of memory in
    the server's cgroup (a backend killed mid-query shows only as a lost connection)."""
    found = hierarchies().get("memory")
    if limits is None or limits.memory_bytes is None or found is None:
        return None
    kills = oom_kills(found.root / cgroup_name(data_dir))
    if not kills:
        return None
    return (
        f"the embedded server ran out of its [server] memory_limit "
        f"({gib(limits.memory_bytes)}): the kernel killed {kills} of its processes (out of "
        "memory in its cgroup), which ended the run. shared_buffers, maintenance_work_mem "
        "(an index build) and work_mem times the connections must fit inside the limit: "
        "raise memory_limit or lower those settings."
    )


def evict_page_cache(data_dir: Path) -> int:
    """Drop the data directory's clean pages from the OS page cache; the bytes advised.

    A page is charged to the cgroup that first read it: pages an unlimited server left
    cached would serve the limited one for free and hide the cliff. The server is down
    (its shutdown checkpoint wrote everything), so its files' pages are clean.
    """
    advised = 0
    for folder, _, files in os.walk(data_dir):
        for name in files:
            path = os.path.join(folder, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                advised += os.fstat(fd).st_size
            except OSError as exc:
                if exc.errno not in (errno.ESPIPE, errno.EINVAL):
                    raise
            finally:
                os.close(fd)
    return advised


def describe(limits: MachineLimits) -> str:
    """The limits for notices: memory_limit 2 GiB, cpus 1 (CPU 1)."""
    parts = []
    if limits.memory_bytes is not None:
        parts.append(f"memory_limit {gib(limits.memory_bytes)}")
    if limits.cpus:
        parts.append(f"cpus {len(limits.cpus)} (CPU {format_cpu_list(limits.cpus)})")
    return ", ".join(parts)


# --- what the embedded server calls ----------------------------------------------------------


def before_start(
    data_dir: Path, limits: MachineLimits | None, user: str | None
) -> Callable[[], None] | None:
    """Ready the cgroup for a pg_ctl that starts the postmaster (the server is down) and
    return the child's set-up; None without limits (a leftover cgroup is removed)."""
    if limits is None:
        release(data_dir)
        return None
    group = ServerCgroup(data_dir=data_dir, limits=limits)
    group.ensure()
    if limits.memory_bytes is not None:
        evict_page_cache(data_dir)
    return group.preexec(user)


def for_restart(
    data_dir: Path, limits: MachineLimits | None, user: str | None
) -> Callable[[], None] | None:
    """The child's set-up for a pg_ctl restart: the same cgroup, limits rewritten."""
    if limits is None:
        return None
    group = ServerCgroup(data_dir=data_dir, limits=limits)
    group.ensure()
    return group.preexec(user)


def check_started(data_dir: Path, limits: MachineLimits | None, pid: int | None) -> None:
    """The postmaster pg_ctl started is inside the cgroup (ServerError if not)."""
    if limits is None or pid is None:
        return
    group = ServerCgroup(data_dir=data_dir, limits=limits)
    if not group.holds(pid) or not group.in_effect():
        raise ServerError(
            f"the embedded server (postmaster pid {pid}) did not start inside the cgroup "
            f"{group.name} that applies [server] {describe(limits)}; /proc/{pid}/cgroup "
            "says otherwise. pgvbench stops it rather than measure without the limits."
        )


def running_mismatch(data_dir: Path, limits: MachineLimits | None, pid: int | None) -> str | None:
    """Why a server already running does not run under ``limits`` (None: it does)."""
    if pid is None:
        return None
    inside = confined(data_dir, pid)
    if limits is None:
        if not inside:
            return None
        state, wanted = "under the [server] memory_limit / cpus of an earlier run", "none"
    else:
        group = ServerCgroup(data_dir=data_dir, limits=limits)
        if group.holds(pid) and group.in_effect():
            return None
        state = "under other [server] limits" if inside else "without [server] limits"
        wanted = describe(limits)
    return (
        f"the embedded server in {data_dir} is already running {state} (started with "
        f"`pgvbench server start` or kept with --keep-server), and this spec sets {wanted}; "
        "pgvbench does not restart a server this run did not start. Stop it with "
        f"`pgvbench server stop --data-dir {data_dir}` and run again."
    )
