"""Agent lookups: load an agent by id, or find agents by model (expression index)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ...datasets.agents.dataset import AgentDataset
from ...engine.operations import ParamOperation
from .params import (
    BINARY,
    TABLE_SIZE,
    TEXT,
    TEXT_OID,
    UUID_OID,
    AlternatingOperation,
    qualified,
    table_params,
)
from .sampling import agent_choice, ids, operation_rng

_LOOKUP_LIMIT = 100  # a model is shared by many agents: cap the rows of a by-model lookup


def agent_lookup_op(
    dataset: AgentDataset,
    *,
    schema: str,
    prefix: str,
    seed: int,
    access_zipf: float,
    settings: Mapping[str, str] | None = None,
) -> AlternatingOperation:
    """Load an agent by id, or find agents by model (``config->>'model'``, expression index)."""
    rng = operation_rng(seed, "agent_lookup")
    table = qualified(schema, prefix, "agents")
    agents = agent_choice(dataset, access_zipf, TABLE_SIZE, rng)
    agent_ids = ids(dataset, "agents", agents)
    # Drawn separately so the by-model lookups are not the by-id agents' models.
    model_agents = agent_choice(dataset, access_zipf, TABLE_SIZE, rng)
    models = {a: _agent_model(dataset, a) for a in set(model_agents.tolist())}
    by_id = ParamOperation(
        name="agent_lookup_id",
        sql=f"SELECT id, tenant_id, name, config, capabilities FROM {table} WHERE id = $1",
        types=[UUID_OID],
        formats=[BINARY],
        params=table_params([[agent_ids[int(a)]] for a in agents]),
        settings=settings,
    )
    by_model = ParamOperation(
        name="agent_lookup_model",
        sql=(
            f"SELECT id, tenant_id, name FROM {table} "
            f"WHERE config->>'model' = $1 LIMIT {_LOOKUP_LIMIT}"
        ),
        types=[TEXT_OID],
        formats=[TEXT],
        params=table_params([[models[int(a)]] for a in model_agents]),
        settings=settings,
    )
    return AlternatingOperation("agent_lookup", by_id, by_model)


def _agent_model(dataset: AgentDataset, agent: int) -> bytes:
    return str(json.loads(dataset.agent_config(agent))["model"]).encode()
