"""A2A task operations: status transitions and appended messages, on Zipf-chosen agents' tasks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...datasets.agents.dataset import AgentDataset
from ...datasets.agents.model import TASK_STATUSES
from ...engine.operations import ParamOperation
from .params import (
    BINARY,
    DOC_POOL,
    JSONB_OID,
    TABLE_SIZE,
    TEXT,
    TEXT_OID,
    UUID_OID,
    Row,
    new_id,
    qualified,
    table_params,
    with_new_id,
)
from .sampling import ids, operation_rng, task_choice

_NEXT_STATUSES = TASK_STATUSES[1:]  # a task never goes back to "submitted"


def _tasks_to_touch(
    dataset: AgentDataset, operation: str, seed: int, access_zipf: float
) -> tuple[np.random.Generator, np.ndarray, dict[int, bytes]]:
    """The operation's stream, its TABLE_SIZE tasks and their uuids."""
    if dataset.tasks == 0:
        raise ValueError(f"{operation} needs tasks: the dataset has none")
    rng = operation_rng(seed, operation)
    tasks = task_choice(dataset, access_zipf, TABLE_SIZE, rng)
    return rng, tasks, ids(dataset, "tasks", tasks)


def task_update_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> ParamOperation:
    """A2A status transition: set status and append {state, timestamp} to state->history."""
    rng, tasks, task_ids = _tasks_to_touch(dataset, "task_update", seed, access_zipf)
    statuses = [s.encode() for s in _NEXT_STATUSES]
    next_status = rng.integers(0, len(statuses), size=TABLE_SIZE)
    rows: list[Row] = [
        [task_ids[int(t)], statuses[int(s)]] for t, s in zip(tasks, next_status, strict=True)
    ]
    # History entries take the loaded data's shape ({"state", "timestamp"}); coalesce keeps
    # a state without history from turning NULL (jsonb_set is strict).
    sql = (
        f"UPDATE {qualified(schema, prefix, 'tasks')} SET status = $2, "
        "state = jsonb_set(state, '{history}', coalesce(state->'history', '[]'::jsonb) "
        "|| jsonb_build_object('state', $2::text, 'timestamp', now())), "
        "updated_at = now() WHERE id = $1"
    )
    return ParamOperation(
        name="task_update",
        sql=sql,
        types=[UUID_OID, TEXT_OID],
        formats=[BINARY, TEXT],
        params=table_params(rows),
        settings=settings,
    )


def message_append_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> ParamOperation:
    """INSERT an A2A message into a task of a Zipf-chosen agent."""
    rng, tasks, task_ids = _tasks_to_touch(dataset, "message_append", seed, access_zipf)
    parts = _message_parts(dataset, rng)
    pick = rng.integers(0, len(parts), size=TABLE_SIZE)
    roles = (b"user", b"agent")
    role = rng.integers(0, 2, size=TABLE_SIZE)
    rows: list[Row] = [
        [task_ids[int(t)], roles[int(r)], parts[int(p)]]
        for t, r, p in zip(tasks, role, pick, strict=True)
    ]
    sql = (
        f"INSERT INTO {qualified(schema, prefix, 'messages')} "
        "(id, task_id, role, parts, created_at) VALUES ($1, $2, $3, $4, now())"
    )
    return ParamOperation(
        name="message_append",
        sql=sql,
        types=[UUID_OID, UUID_OID, TEXT_OID, JSONB_OID],
        formats=[BINARY, BINARY, TEXT, TEXT],
        params=with_new_id(rows, new_id("message_append", seed)),
        settings=settings,
    )


def _message_parts(dataset: AgentDataset, rng: np.random.Generator) -> list[bytes]:
    if dataset.messages == 0:
        return [b'[{"kind":"text","text":"ok"}]']
    sample = rng.choice(dataset.messages, size=min(DOC_POOL, dataset.messages), replace=False)
    return [dataset.message_parts(int(m)).encode() for m in sample]
