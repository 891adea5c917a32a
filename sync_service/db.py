"""Connections and acting as a user the way PostgREST does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

import psycopg
from psycopg.rows import dict_row


class CfgError(Exception):
    """An error the database raised on purpose (PT4xx) or a refused identity."""

    def __init__(self, message: str, code: str | None = None, detail: object = None, hint=None):
        super().__init__(message)
        self.code = code
        self.detail = detail
        self.hint = hint

    @classmethod
    def from_psycopg(cls, exc: psycopg.Error) -> CfgError:
        diag = exc.diag
        detail: object = diag.message_detail
        if detail:
            try:
                detail = json.loads(detail)
            except ValueError:
                pass
        return cls(diag.message_primary or str(exc), diag.sqlstate, detail, diag.message_hint)


@dataclass(frozen=True)
class Identity:
    """Who a transaction acts as: role plus JWT claims, as PostgREST sets them."""

    role: str  # 'authenticated' | 'service_role' | 'anon'
    user_id: UUID | None = None
    email: str | None = None
    extra_claims: tuple[tuple[str, object], ...] = ()

    def claims(self) -> dict:
        claims: dict = {"role": self.role, "aud": "authenticated" if self.user_id else self.role}
        if self.user_id:
            claims["sub"] = str(self.user_id)
        if self.email:
            claims["email"] = self.email
        claims.update(dict(self.extra_claims))
        return claims

    @property
    def label(self) -> str:
        return self.email or self.role


SERVICE = Identity(role="service_role")
ANON = Identity(role="anon")


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, row_factory=dict_row, **kwargs)


def act_as(cur: psycopg.Cursor, identity: Identity) -> None:
    """Switch the current transaction to identity, exactly as PostgREST does per request."""
    cur.execute(
        "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
        (identity.role, json.dumps(identity.claims())),
    )


@contextmanager
def acting_as(conn: psycopg.Connection, identity: Identity) -> Iterator[psycopg.Cursor]:
    """One transaction as identity; database errors come out as CfgError."""
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            act_as(cur, identity)
            yield cur
    except psycopg.errors.DatabaseError as exc:
        if isinstance(exc, psycopg.errors.OperationalError) and exc.sqlstate is None:
            raise
        raise CfgError.from_psycopg(exc) from exc


def user_identity(conn: psycopg.Connection, email: str) -> Identity:
    """The identity of a user by email, with the claims the access token hook adds."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select id, email from auth.users where lower(email) = lower(%s)", (email,))
        row = cur.fetchone()
        if row is None:
            raise CfgError(f"no user with email {email!r}", "PT404")
        identity = Identity(role="authenticated", user_id=row["id"], email=row["email"])
        event = {"user_id": str(identity.user_id), "claims": identity.claims()}
        cur.execute(
            "select cfg_private.custom_access_token_hook(%s::jsonb) -> 'claims' -> 'org_roles' as r",
            (json.dumps(event),),
        )
        org_roles = cur.fetchone()["r"]
    return Identity(
        role="authenticated",
        user_id=identity.user_id,
        email=identity.email,
        extra_claims=(("org_roles", org_roles),),
    )
