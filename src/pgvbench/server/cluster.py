"""A real cluster's primary and standbys from one multi-host DSN (``--dsn``).

``host=a,b,c`` (ports likewise, or one port for all) or ``postgresql://a,b:5433,c/db``
names every server of a cluster; pgvbench asks each whether it is in recovery
(``pg_is_in_recovery()``): the one that is not is the primary (writes, lag), the others
are the standbys reads are spread over. libpq's own multi-host options that pick one
server per connection (``target_session_attrs``, ``load_balance_hosts``) are dropped from
the per-server DSNs; :func:`balanced_dsn` builds the one DSN that lets libpq pick a
standby at random per connection (``load_balance_hosts=random``, libpq 16 and later).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from psycopg import conninfo as pg_conninfo
from psycopg import pq

from ..errors import ConnectError
from .connection import connect, parse_dsn, redact_dsn

PER_HOST = ("host", "hostaddr", "port")  # the keys libpq lists one value per server
PICK_ONE = ("target_session_attrs", "load_balance_hosts")  # libpq choosing one server
LOAD_BALANCE_LIBPQ = 160000  # load_balance_hosts arrived in libpq 16


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cluster:
    primary: str  # a DSN naming the primary alone
    standbys: tuple[str, ...]  # one DSN per standby, in the order the DSN lists them


def hosts_of(dsn: str) -> list[str]:
    """One DSN per server the DSN lists (a single-server DSN: itself)."""
    params = parse_dsn(dsn)
    lists = {key: str(params[key]).split(",") for key in PER_HOST if params.get(key)}
    count = max((len(values) for values in lists.values()), default=1)
    for key, values in lists.items():
        if len(values) not in (1, count):
            raise ConnectError(
                f"the DSN lists {count} servers but {len(values)} values of {key}; give one "
                f"{key} for all servers or one per server, in the same order as the hosts."
            )
    out = []
    for i in range(count):
        one: dict[str, Any] = {k: v for k, v in params.items() if k not in PICK_ONE}
        for key, values in lists.items():
            one[key] = values[i] if len(values) == count else values[0]
        out.append(pg_conninfo.make_conninfo("", **one))
    return out


def find_cluster(dsn: str, *, standbys: int) -> Cluster:
    """Ask each server of a multi-host DSN whether it is in recovery; exactly one must be
    the primary and ``standbys`` the others (the spec's [server] replicas)."""
    servers = hosts_of(dsn)
    primaries: list[str] = []
    found: list[str] = []
    for one in servers:
        with connect(one) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        (found if row is not None and row[0] else primaries).append(one)
    listed = ", ".join(redact_dsn(s) for s in servers)
    if len(primaries) != 1:
        raise ConnectError(
            f"--dsn lists {len(servers)} server(s) ({listed}) of which {len(primaries)} "
            "accept writes (pg_is_in_recovery() false); reading from standbys needs exactly "
            "one primary in the list, for the writes, and the standbys after it."
        )
    if len(found) != standbys:
        raise ConnectError(
            f"[server] replicas = {standbys}, but --dsn lists {len(found)} standby(s) "
            f"({listed}); list the primary and {standbys} standby(s) in the DSN's hosts, "
            "or set replicas to the number of standbys it lists."
        )
    return Cluster(primary=primaries[0], standbys=tuple(found))


def load_balancing_supported() -> bool:
    """Whether the libpq psycopg uses knows load_balance_hosts (16 and later)."""
    return pq.version() >= LOAD_BALANCE_LIBPQ


def balanced_dsn(dsns: Sequence[str]) -> str:
    """One DSN over these servers that lets libpq pick one at random per connection; the
    first DSN's other parameters are kept."""
    parts = [parse_dsn(d) for d in dsns]
    merged: dict[str, Any] = {k: v for k, v in parts[0].items() if k not in PICK_ONE}
    for key in PER_HOST:
        values = [str(p.get(key) or "") for p in parts]
        if any(values):
            merged[key] = ",".join(values)
    merged["load_balance_hosts"] = "random"
    return pg_conninfo.make_conninfo("", **merged)


def with_options(dsn: str, options_from: str) -> str:
    """``dsn`` with the ``options`` of ``options_from`` (session settings folded into the
    primary's DSN, given to a standby's too)."""
    options = parse_dsn(options_from).get("options")
    params = parse_dsn(dsn)
    if options:
        params["options"] = options
    return pg_conninfo.make_conninfo("", **params)
