"""User-defined SQL operations from the spec's ``[[operation]]`` tables.

A custom operation is the user's SQL with ``:name`` placeholders, each fed by a
seeded generator (a Zipf-chosen agent uuid, a random query vector, an int in a range,
...). Parameters are precomputed into a table indexed by ``seq``, as for the built-in
agent operations, so the hot path stays a list lookup.

Safety: unless ``writes = true`` the SQL may not contain an obvious write (INSERT,
UPDATE, DELETE, ...), and it runs with ``default_transaction_read_only = on`` so a
write hidden in a function fails loudly instead of changing the user's data.

Modules: sql_text (literals, placeholders, writes), parse (the [[operation]] tables),
build (parameter tables and the checks against the server).
"""

from pgvbench.workloads.custom.build import READ_ONLY_SETTINGS, compile_custom
from pgvbench.workloads.custom.parse import (
    GENERATORS,
    RESERVED_NAMES,
    CustomOpSpec,
    ParamSpec,
    parse_operations,
)
from pgvbench.workloads.custom.sql_text import (
    code_words,
    rewrite_placeholders,
    split_sql,
    write_keywords,
)

__all__ = [
    "GENERATORS",
    "READ_ONLY_SETTINGS",
    "RESERVED_NAMES",
    "CustomOpSpec",
    "ParamSpec",
    "code_words",
    "compile_custom",
    "parse_operations",
    "rewrite_placeholders",
    "split_sql",
    "write_keywords",
]
