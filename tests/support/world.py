"""The small world most tests start from: two orgs, a user per role in org A, an admin in
org B, the service key and anon; users and memberships made the way the API makes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from sync_service.db import SERVICE, Identity, acting_as

# =============================================================================
# A small world: two orgs, a user per role in org A, an admin in org B.
# =============================================================================


@dataclass
class World:
    org_a: UUID
    org_b: UUID
    users: dict[str, Identity] = field(default_factory=dict)
    automation_a: UUID | None = None
    automation_b: UUID | None = None
    section_a: UUID | None = None
    entry_a: UUID | None = None
    secret_entry_a: UUID | None = None

    def __getitem__(self, name: str) -> Identity:
        return self.users[name]


def create_user(conn: psycopg.Connection, email: str) -> Identity:
    """A confirmed account, as GoTrue's sign-up writes it when confirmations are off."""
    row = conn.execute(
        "insert into auth.users (email, email_confirmed_at) values (%s, now()) returning id", (email,)
    ).fetchone()
    conn.commit()
    return Identity(role="authenticated", user_id=row["id"], email=email)


def add_member(conn: psycopg.Connection, admin: Identity, org_id: UUID, member: Identity,
               role: str) -> None:
    """Membership the only way the API allows: the admin invites, the member accepts."""
    with acting_as(conn, admin) as cur:
        invitation = cur.execute("select id from cfg.invite_member(%s, %s, %s)",
                                 (org_id, member.email, role)).fetchone()["id"]
    with acting_as(conn, member) as cur:
        cur.execute("select cfg.accept_invitation(%s)", (invitation,))


def build_world(conn: psycopg.Connection) -> World:
    users = {
        name: create_user(conn, f"{name}@example.test")
        for name in ("admin", "editor", "viewer", "other_admin", "outsider")
    }
    with acting_as(conn, users["admin"]) as cur:
        org_a = cur.execute("select id from cfg.create_org('Org A', 'org-a')").fetchone()["id"]
    for name in ("editor", "viewer"):
        add_member(conn, users["admin"], org_a, users[name], name)
    with acting_as(conn, users["admin"]) as cur:
        automation_a = cur.execute(
            "select id from cfg.create_automation(%s, 'Billing', 'billing')", (org_a,)
        ).fetchone()["id"]
        section_a = cur.execute(
            "insert into cfg.config_sections (org_id, automation_id, name) "
            "values (%s, %s, 'http') returning id", (org_a, automation_a)
        ).fetchone()["id"]
        entry_a = cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
            "values (%s, %s, %s, 'port', '8080') returning id", (org_a, automation_a, section_a)
        ).fetchone()["id"]
        secret_entry_a = cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
            "values (%s, %s, %s, 'api_key', '\"sk_live_hunter2\"', true) returning id",
            (org_a, automation_a, section_a),
        ).fetchone()["id"]
    with acting_as(conn, users["other_admin"]) as cur:
        org_b = cur.execute("select id from cfg.create_org('Org B', 'org-b')").fetchone()["id"]
        automation_b = cur.execute(
            "select id from cfg.create_automation(%s, 'Other', 'other')", (org_b,)
        ).fetchone()["id"]
    users["service"] = SERVICE
    users["anon"] = Identity(role="anon")
    return World(org_a, org_b, users, automation_a, automation_b, section_a, entry_a, secret_entry_a)
