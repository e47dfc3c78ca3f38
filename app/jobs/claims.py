"""What every claimed unit of work shares (an inference response, a judgement, a score): a row
a task takes with a fencing token and a lease, gives back, or finds held by another task."""

from __future__ import annotations

from sqlalchemy import Connection, text

# The tables whose rows are claimed this way; the name goes into SQL, so only these.
CLAIMED_TABLES = ("responses", "judgements", "scores")


def _table(table: str) -> str:
    if table not in CLAIMED_TABLES:
        raise ValueError(f"{table!r} holds no claimed work")
    return table


def lease_left(conn: Connection, table: str, row_id: int) -> tuple[str | None, float]:
    """The row's status, and the seconds left on the lease of whoever holds it."""
    row = conn.execute(text(
        f"SELECT status, extract(epoch FROM claimed_until - now()) FROM {_table(table)} "
        "WHERE id = :id"), {"id": row_id}).one_or_none()
    return (None, 0.0) if row is None else (row[0], float(row[1] or 0.0))


def release(conn: Connection, table: str, row_id: int, token: str, *,
            error: str | None = None, attempt: int | None = None) -> bool:
    """Give the row back as pending, if this task still holds it: for a later attempt
    (`attempt` given: it counts, and the error is kept), or to wait for a limit (nothing
    counts). False when the claim was lost."""
    return conn.execute(text(
        f"UPDATE {_table(table)} SET status = 'pending', claim_token = NULL, "
        "claimed_until = NULL, error = COALESCE(:error, error), "
        "attempts = COALESCE(:attempts, attempts), updated_at = now() "
        "WHERE id = :id AND claim_token = :token RETURNING id"
    ), {"id": row_id, "token": token, "error": error,
        "attempts": None if attempt is None else attempt + 1}).one_or_none() is not None
