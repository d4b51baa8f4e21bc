"""Word lists the agent platform's documents are made of: padding text, tags, names.

Fixed vocabularies (not random), so a seed gives the same documents in every version that
keeps these lists unchanged.
"""

from __future__ import annotations

import itertools

import numpy as np

_PADDING_TEXT = (
    "the customer asked about the invoice for last month and wanted a refund because the "
    "order arrived late our agent checked the shipping status with the carrier api and "
    "found a delay at the regional warehouse then it proposed a discount on the next "
    "renewal the user prefers email over phone and works in the berlin office on the "
    "data platform team they use postgres with pgvector for semantic search and want "
    "lower latency during peak hours the deployment runs on kubernetes with three "
    "replicas and a connection pooler the release notes mention a migration of the "
    "billing service and a new onboarding flow for enterprise accounts please summarize "
    "the meeting notes and create follow up tasks for the security review the contract "
    "renewal is due next quarter and legal needs the updated terms the dashboard shows "
    "an error rate spike after the last release rollback was discussed but not approved "
    "remember that the account owner is on vacation until monday and the backup contact "
    "handles escalations the model answered with a wrong date so the evaluation flagged "
    "the response for human review the knowledge base article explains how to rotate "
    "api keys and configure single sign on for new workspaces"
)
_WORDS = tuple(_PADDING_TEXT.split())
_TAG_TEXT = (
    "billing onboarding support urgent vip refund shipping security compliance legal "
    "sales renewal churn feedback bug feature docs api sso latency outage incident "
    "migration pricing contract invoice escalation product research hr finance ops "
    "infra kubernetes postgres search analytics marketing partner trial enterprise "
    "smb emea apac americas mobile web desktop integration slack email phone chat "
    "priority followup draft approved rejected archived internal external beta ga "
    "deprecated roadmap planning retro okr hiring training privacy gdpr soc2 audit "
    "backup restore performance cost quota limits upgrade downgrade cancel payment "
    "tax shipping-delay returns warranty inventory logistics procurement vendor"
)
_TAG_WORDS = tuple(_TAG_TEXT.split())
MODELS = (
    ("gpt-4o", 5),
    ("gpt-4o-mini", 4),
    ("claude-3-5-sonnet", 4),
    ("claude-3-haiku", 2),
    ("gemini-1.5-pro", 2),
    ("llama-3.1-70b-instruct", 2),
    ("mistral-large", 1),
)
TOOLS = (
    "web_search", "sql_query", "send_email", "create_ticket", "calendar_lookup",
    "crm_update", "code_interpreter", "file_reader", "http_request", "vector_recall",
)  # fmt: skip
CAPABILITIES = (
    "streaming", "pushNotifications", "stateTransitionHistory", "memory", "rag",
    "toolUse", "codeExecution", "fileUpload", "multiTurn", "handoff",
)  # fmt: skip
AGENT_ROLES = (
    "support", "sales", "research", "billing", "ops", "coding", "onboarding", "triage",
)  # fmt: skip
MEMORY_SOURCES = ("conversation", "tool_call", "document", "reflection", "web", "email")
ENTITY_TYPES = ("person", "org", "product", "place", "date", "ticket")
ENTITY_NAMES = (
    "Alice Martin", "Bob Chen", "Acme Corp", "Globex", "Berlin", "Project Atlas",
    "Invoice 4471", "Q3 renewal", "Postgres", "Initech", "Maria Garcia", "Ticket 982",
)  # fmt: skip
LANGS = (("en", 8), ("de", 2), ("fr", 2), ("es", 1), ("ja", 1))
EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "bge-m3", "e5-large")
CHUNK_SOURCES = ("confluence", "gdrive", "notion", "s3", "web", "zendesk", "sharepoint")
DOC_TYPES = ("pdf", "html", "markdown", "docx", "email", "slides")
SECTIONS = ("overview", "setup", "pricing", "faq", "security", "api", "troubleshooting")
GROUPS = ("all-staff", "support", "sales", "engineering", "finance", "legal", "admins")
ARTIFACTS = ("summary", "report", "draft_reply", "sql_result", "plan", "diff")
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("web", "slack", "email", "api", "voice")
MIME_TYPES = ("application/pdf", "image/png", "text/csv", "text/plain")


def make_corpus(rng: np.random.Generator, min_chars: int) -> str:
    """Word salad with sentences: padding that compresses and indexes like real text."""
    n_words = min_chars // 5 + 1000
    picks = rng.integers(0, len(_WORDS), size=n_words).tolist()
    ends = set(np.flatnonzero(rng.random(n_words) < 1 / 12).tolist())
    words = [_WORDS[p] + ("." if i in ends else "") for i, p in enumerate(picks)]
    return " ".join(words)


def make_tag_words(n: int) -> list[str]:
    """A vocabulary of ``n`` distinct tag words, most common first (Zipf rank order)."""
    base = list(dict.fromkeys(_TAG_WORDS))
    pairs = (f"{a}-{b}" for b in base for a in base if a != b)
    numbered = (f"tag-{i}" for i in itertools.count())
    words: dict[str, None] = {}
    for word in itertools.chain(base, pairs, numbered):
        if len(words) >= n:
            break
        words.setdefault(word)
    return list(words)
