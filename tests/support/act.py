"""The one way tests act as a user and look at what happened.

`attempt(conn, who, sql, params)` runs one statement as `who` exactly as PostgREST does
(role + request.jwt.claims in one transaction, through sync_service.db.acting_as) and
returns an Outcome instead of raising, so a test can assert on allowed and refused calls
alike. Deferred constraints are checked before the end, as a commit would.

- On its own, the call is its own transaction: committed, or rolled back with
  `rollback=True` (the cells of a matrix that share one world).
- Inside a transaction the caller opened (`with conn.transaction(force_rollback=True)`),
  it is a savepoint; afterwards the connection is the superuser again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

from sync_service.db import CfgError, Identity, acting_as


@dataclass
class Outcome:
    ok: bool
    rowcount: int = 0
    rows: list | None = None
    code: str | None = None
    message: str = ""
    detail: Any = None
    hint: str | None = None

    def __str__(self) -> str:
        return self.message

    @property
    def status(self) -> str:
        """'ok' or the SQLSTATE of the refusal."""
        return "ok" if self.ok else str(self.code)


def attempt(conn: psycopg.Connection, who: Identity, query: Any, params: Any = None, *,
            rollback: bool = False) -> Outcome:
    """Run query as who; never raises for a database refusal (see the module docstring)."""
    seen: dict = {}
    try:
        with acting_as(conn, who) as cur:
            cur.execute(query, params)
            seen["rowcount"] = cur.rowcount
            seen["rows"] = cur.fetchall() if cur.description else None
            cur.execute("set constraints all immediate")  # what commit would check
            if rollback:
                raise psycopg.Rollback()
        outcome = Outcome(True, seen["rowcount"], seen["rows"])
    except CfgError as exc:
        outcome = Outcome(False, code=exc.code, message=str(exc), detail=exc.detail, hint=exc.hint)
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        # A savepoint keeps its SET LOCALs until the outer transaction ends: back to superuser.
        conn.execute("reset role")
        conn.execute("select set_config('request.jwt.claims', '', true)")
    return outcome
