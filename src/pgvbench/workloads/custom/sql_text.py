"""SQL text of user operations: what is code and what is a literal, ``:name`` placeholders,
and the obvious writes a statement contains."""

from __future__ import annotations

import re

# Words that make a statement write wherever they appear (CTEs can hide DML), and
# statement kinds refused when they lead the SQL (a column may be called "comment").
_WRITE_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "INTO"})
_WRITE_LEADERS = frozenset(
    {
        "ALTER",
        "DROP",
        "CREATE",
        "GRANT",
        "REVOKE",
        "COPY",
        "VACUUM",
        "REINDEX",
        "CLUSTER",
        "REFRESH",
        "LOCK",
        "CALL",
        "COMMENT",
        "SECURITY",
        "IMPORT",
        "DO",
    }
)


def split_sql(sql: str) -> list[tuple[bool, str]]:
    """Cut SQL into (is_code, text) pieces: string literals, quoted identifiers,
    dollar-quoted bodies and comments are not code (no placeholders, no keywords)."""
    pieces: list[tuple[bool, str]] = []
    code_start = 0
    i = 0
    n = len(sql)
    while i < n:
        end = _literal_end(sql, i)
        if end is None:
            i += 1
            continue
        if i > code_start:
            pieces.append((True, sql[code_start:i]))
        pieces.append((False, sql[i:end]))
        i = code_start = end
    if code_start < n:
        pieces.append((True, sql[code_start:]))
    return pieces


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _literal_end(sql: str, i: int) -> int | None:
    """End of the non-code piece starting at ``i``, or None if ``sql[i]`` is code."""
    c = sql[i]
    prev = sql[i - 1] if i else " "
    if c == "'":
        escapes = prev in "eE" and (i < 2 or not _ident_char(sql[i - 2]))
        return _quoted_end(sql, i, "'", backslash=escapes)
    if c == '"':
        return _quoted_end(sql, i, '"', backslash=False)
    if sql.startswith("--", i):
        newline = sql.find("\n", i)
        return len(sql) if newline < 0 else newline + 1
    if sql.startswith("/*", i):
        return _comment_end(sql, i)
    if c == "$" and not _ident_char(prev):
        match = _DOLLAR_TAG.match(sql, i)
        if match is not None:
            close = sql.find(match.group(0), match.end())
            if close < 0:
                raise ValueError("unterminated dollar-quoted string")
            return close + len(match.group(0))
    return None


def _ident_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def _quoted_end(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    while j < len(sql):
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < len(sql) and sql[j + 1] == quote:  # doubled quote: an escaped one
                j += 2
                continue
            return j + 1
        j += 1
    kind = "string literal" if quote == "'" else "quoted identifier"
    raise ValueError(f"unterminated {kind}")


def _comment_end(sql: str, i: int) -> int:
    depth = 0
    j = i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise ValueError("unterminated /* comment")


# ``:name`` but not the second colon of a ``::cast`` nor ``a:b`` (array slices).
_PLACEHOLDER = re.compile(r"(?<![:\w$]):([A-Za-z_][A-Za-z0-9_]*)")
_POSITIONAL = re.compile(r"(?<![\w$])\$\d+")


def rewrite_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` -> ``$n`` outside literals and casts; return the SQL and the names in
    ``$n`` order (a name used twice is one parameter). Raises ValueError on bad SQL."""
    order: list[str] = []
    out: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    for is_code, text in split_sql(sql):
        if is_code:
            positional = _POSITIONAL.search(text)
            if positional is not None:
                raise ValueError(
                    f"uses the positional parameter {positional.group(0)}; "
                    "write :name placeholders instead"
                )
            text = _PLACEHOLDER.sub(number, text)
        out.append(text)
    return "".join(out), tuple(order)


def code_words(sql: str) -> list[str]:
    """Upper-cased words of the SQL outside literals, identifiers in quotes and comments."""
    words: list[str] = []
    for is_code, text in split_sql(sql):
        if is_code:
            words.extend(w.upper() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", text))
    return words


def write_keywords(sql: str) -> list[str]:
    """The obvious writes in a statement (empty for a plain query)."""
    words = code_words(sql)
    found = [w for w in words if w in _WRITE_WORDS]
    if words and words[0] in _WRITE_LEADERS:
        found.insert(0, words[0])
    return list(dict.fromkeys(found))
