"""What every claimed unit of work shares (an inference response, a judgement, a score): a row
a task takes with a fencing token and a lease, gives back, or finds held by another task.

`claimed_until` is the row's deadline: for a running row, the end of its task's lease; for a
pending row handed back to wait, when its next task is due (NULL: due since it was queued).
A row long past its deadline has lost its task (a message the broker dropped, a worker that
vanished): `take_back_lost` finds those, so that they can be queued again.
"""

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
            error: str | None = None, attempt: int | None = None,
            due_in: float | None = None) -> bool:
    """Give the row back as pending, if this task still holds it: for a later attempt
    (`attempt` given: it counts, and the error is kept), or to wait for a limit (nothing
    counts). `due_in`: the seconds until the task that takes it up again is due. False when
    the claim was lost."""
    return conn.execute(text(
        f"UPDATE {_table(table)} SET status = 'pending', claim_token = NULL, "
        "claimed_until = now() + make_interval(secs => CAST(:due_in AS float)), "
        "error = COALESCE(:error, error), attempts = COALESCE(:attempts, attempts), "
        "updated_at = now() WHERE id = :id AND claim_token = :token RETURNING id"
    ), {"id": row_id, "token": token, "error": error, "due_in": due_in,
        "attempts": None if attempt is None else attempt + 1}).one_or_none() is not None


def take_back_lost(conn: Connection, table: str, lost_after_s: float) -> list[tuple[int, int]]:
    """The rows whose task is lost: pending more than `lost_after_s` past the time their task
    was due, or running with a lease that ran out more than `lost_after_s` ago. Each is made
    pending again (an expired claim is void; a late answer from its holder is thrown away), due
    `lost_after_s` from now, so that the task queued for it now has that long before it counts
    as lost in turn. Returns (id, attempts made) of each, to queue its task again. Two sweeps
    at once take back each row once: the second finds it due later."""
    return [(row_id, attempts) for row_id, attempts in conn.execute(text(
        f"UPDATE {_table(table)} SET status = 'pending', claim_token = NULL, "
        "claimed_until = now() + make_interval(secs => :after), updated_at = now() "
        "WHERE status IN ('pending', 'running') "
        "AND COALESCE(claimed_until, updated_at, created_at) "
        "< now() - make_interval(secs => :after) RETURNING id, attempts"
    ), {"after": lost_after_s})]
