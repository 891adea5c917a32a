"""Tenancy: orgs and their default pipeline, members and the last-admin rule, the
outbox events and NOTIFY, and where secret values live."""

from __future__ import annotations

import psycopg
import pytest

from sync_service.db import CfgError, acting_as
from tests.support.world import add_member, create_user


@pytest.fixture(autouse=True)
def _autocommit(conn):
    # Superuser reads between acting_as blocks must not hold a transaction open
    # (acting_as would become a savepoint whose SET LOCAL role outlives it).
    conn.autocommit = True


def members(conn, org_id) -> dict[str, str]:
    rows = conn.execute(
        "select u.email, m.role::text from cfg.org_members m join auth.users u on u.id = m.user_id "
        "where m.org_id = %s", (org_id,)
    ).fetchall()
    return {r["email"]: r["role"] for r in rows}


# =============================================================================
# Organisations
# =============================================================================


def test_create_org_makes_the_creator_admin_with_the_default_pipeline(conn, world):
    with acting_as(conn, world["outsider"]) as cur:
        org = cur.execute("select * from cfg.create_org('  Acme Corp  ', 'acme')").fetchone()
        # The creator sees it at once through RLS.
        visible = cur.execute("select slug from cfg.orgs").fetchall()
    assert org["name"] == "Acme Corp" and org["slug"] == "acme"
    assert org["created_by"] == world["outsider"].user_id
    assert visible == [{"slug": "acme"}]
    assert members(conn, org["id"]) == {"outsider@example.test": "admin"}
    envs = conn.execute(
        "select slug, name, position, requires_approval from cfg.environments where org_id = %s "
        "order by position", (org["id"],)
    ).fetchall()
    assert envs == [
        {"slug": "dev", "name": "Development", "position": 0, "requires_approval": False},
        {"slug": "staging", "name": "Staging", "position": 1, "requires_approval": False},
        {"slug": "prod", "name": "Production", "position": 2, "requires_approval": True},
    ]


def test_org_creator_cannot_be_forged(conn, world):
    with acting_as(conn, world["outsider"]) as cur:
        org = cur.execute("select * from cfg.create_org('Mine', 'mine')").fetchone()
    invited_by = conn.execute("select invited_by from cfg.org_members where org_id = %s", (org["id"],)
                              ).fetchone()["invited_by"]
    assert invited_by == world["outsider"].user_id


def test_automation_authors_come_from_the_jwt(conn, world):
    with acting_as(conn, world["editor"]) as cur:
        row = cur.execute(
            "insert into cfg.automations (org_id, name, slug, created_by, updated_by) "
            "values (%s, 'Forged', 'forged', %s, %s) returning created_by, updated_by",
            (world.org_a, world["admin"].user_id, world["admin"].user_id),
        ).fetchone()
    assert row == {"created_by": world["editor"].user_id, "updated_by": world["editor"].user_id}
    with acting_as(conn, world["admin"]) as cur:
        row = cur.execute(
            "update cfg.automations set description = 'x', created_by = %s where slug = 'forged' "
            "returning created_by, updated_by", (world["viewer"].user_id,)
        ).fetchone()
    assert row == {"created_by": world["editor"].user_id, "updated_by": world["admin"].user_id}


def test_updated_at_moves_on_every_write(conn, world):
    before = conn.execute("select updated_at from cfg.automations where id = %s", (world.automation_a,)
                          ).fetchone()["updated_at"]
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.automations set description = 'x', updated_at = '2000-01-01' where id = %s",
                    (world.automation_a,))
    after = conn.execute("select updated_at from cfg.automations where id = %s", (world.automation_a,)
                         ).fetchone()["updated_at"]
    assert after > before


# =============================================================================
# Members and the last-admin rule
# =============================================================================


def test_invited_member_then_set_role_then_remove(conn, world):
    add_member(conn, world["admin"], world.org_a, world["outsider"], "editor")
    added = conn.execute("select role::text, invited_by from cfg.org_members where org_id = %s and user_id = %s",
                         (world.org_a, world["outsider"].user_id)).fetchone()
    assert added == {"role": "editor", "invited_by": world["admin"].user_id}
    with acting_as(conn, world["admin"]) as cur:
        changed = cur.execute("select * from cfg.set_member_role(%s, %s, 'viewer')",
                              (world.org_a, world["outsider"].user_id)).fetchone()
        assert changed["role"] == "viewer"
    assert members(conn, world.org_a)["outsider@example.test"] == "viewer"
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select * from cfg.remove_member(%s, %s)", (world.org_a, world["outsider"].user_id))
    assert "outsider@example.test" not in members(conn, world.org_a)


@pytest.mark.parametrize("actor", ["admin", "service"])
def test_last_admin_cannot_be_removed_or_demoted(conn, world, actor):
    admin_id = world["admin"].user_id
    attempts = [
        ("select cfg.remove_member(%s, %s)", (world.org_a, admin_id)),
        ("select cfg.set_member_role(%s, %s, 'editor')", (world.org_a, admin_id)),
        ("select cfg.set_member_role(%s, %s, 'viewer')", (world.org_a, admin_id)),
        ("delete from cfg.org_members where org_id = %s and user_id = %s", (world.org_a, admin_id)),
        ("update cfg.org_members set role = 'editor' where org_id = %s and user_id = %s",
         (world.org_a, admin_id)),
    ]
    before = members(conn, world.org_a)
    for sql, params in attempts:
        with pytest.raises(CfgError) as info, acting_as(conn, world[actor]) as cur:
            cur.execute(sql, params)
        assert info.value.code == "PT409", sql
        assert "last admin" in str(info.value)
        assert info.value.hint == "Make another member admin first."
        assert info.value.detail == {"org_id": str(world.org_a), "user_id": str(admin_id)}
    assert members(conn, world.org_a) == before


def test_last_admin_can_leave_once_another_admin_exists(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_member_role(%s, %s, 'admin')", (world.org_a, world["editor"].user_id))
        cur.execute("select cfg.set_member_role(%s, %s, 'editor')", (world.org_a, world["admin"].user_id))
    assert members(conn, world.org_a)["admin@example.test"] == "editor"
    # The new admin is now the last one: they can remove the old one, not themselves.
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("select cfg.remove_member(%s, %s)", (world.org_a, world["admin"].user_id))
    with pytest.raises(CfgError) as info, acting_as(conn, world["editor"]) as cur:
        cur.execute("select cfg.remove_member(%s, %s)", (world.org_a, world["editor"].user_id))
    assert info.value.code == "PT409"
    assert members(conn, world.org_a) == {"editor@example.test": "admin", "viewer@example.test": "viewer"}


def test_admins_can_swap_roles_in_one_statement(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        cur.execute(
            "update cfg.org_members set role = case when role = 'admin' then 'editor'::cfg.org_role "
            "else 'admin'::cfg.org_role end where org_id = %s and user_id in (%s, %s)",
            (world.org_a, world["admin"].user_id, world["editor"].user_id),
        )
    assert members(conn, world.org_a) == {
        "admin@example.test": "editor", "editor@example.test": "admin", "viewer@example.test": "viewer"}


def test_deleting_an_org_removes_its_members(conn, world):
    with acting_as(conn, world["service"]) as cur:
        cur.execute("delete from cfg.orgs where id = %s", (world.org_b,))
    assert members(conn, world.org_b) == {}


def test_member_rpcs_on_a_non_member_are_not_found(conn, world):
    for sql in ("select cfg.set_member_role(%s, %s, 'editor')", "select cfg.remove_member(%s, %s)"):
        with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
            cur.execute(sql, (world.org_a, world["outsider"].user_id))
        assert info.value.code == "PT404"
        assert "not a member" in str(info.value)


def test_a_user_in_two_orgs_keeps_separate_roles(conn, world):
    add_member(conn, world["other_admin"], world.org_b, world["viewer"], "admin")
    # Admin in B, still only a viewer in A.
    with acting_as(conn, world["viewer"]) as cur:
        cur.execute("select cfg.create_automation(%s, 'In B', 'in-b')", (world.org_b,))
        cur.execute("select cfg.remove_member(%s, %s)", (world.org_b, world["other_admin"].user_id))
    with pytest.raises(CfgError) as info, acting_as(conn, world["viewer"]) as cur:
        cur.execute("select cfg.create_automation(%s, 'In A', 'in-a')", (world.org_a,))
    assert info.value.code == "PT403"
    assert members(conn, world.org_b) == {"viewer@example.test": "admin"}
    slugs = conn.execute("select slug from cfg.automations where slug like 'in-%%'").fetchall()
    assert slugs == [{"slug": "in-b"}]


# =============================================================================
# Outbox events
# =============================================================================


def new_events(conn, after_id: int) -> list[dict]:
    return conn.execute(
        "select * from cfg_private.events where id > %s order by id", (after_id,)
    ).fetchall()


def last_event_id(conn) -> int:
    return conn.execute("select coalesce(max(id), 0) as m from cfg_private.events").fetchone()["m"]


def test_automation_lifecycle_emits_events_with_the_actor(conn, world):
    mark = last_event_id(conn)
    with acting_as(conn, world["editor"]) as cur:
        created = cur.execute("select id from cfg.create_automation(%s, 'Mailer', 'mailer')",
                              (world.org_a,)).fetchone()["id"]
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.automations set status = 'paused' where id = %s", (created,))
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.delete_automation(%s)", (created,))
    events = new_events(conn, mark)
    assert [(e["type"], e["actor_email"]) for e in events] == [
        ("automation.created", "editor@example.test"),
        ("automation.updated", "editor@example.test"),
        ("automation.deleted", "admin@example.test"),
    ]
    for e in events:
        assert e["org_id"] == world.org_a
        assert e["subject_type"] == "automation" and e["subject_id"] == created == e["automation_id"]
        assert e["payload"]["automation"]["slug"] == "mailer"
    assert events[0]["actor_id"] == world["editor"].user_id
    assert events[1]["payload"]["automation"]["status"] == "paused"
    assert events[2]["actor_id"] == world["admin"].user_id


def test_member_changes_emit_events_with_the_actor(conn, world):
    outsider = world["outsider"].user_id
    add_member(conn, world["admin"], world.org_a, world["outsider"], "viewer")
    mark = last_event_id(conn)  # member.invited and member.added: tests/tenancy/test_invitations.py
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_member_role(%s, %s, 'editor')", (world.org_a, outsider))
        # Setting the same role again changes nothing and emits nothing.
        cur.execute("select cfg.set_member_role(%s, %s, 'editor')", (world.org_a, outsider))
        cur.execute("select cfg.remove_member(%s, %s)", (world.org_a, outsider))
    events = new_events(conn, mark)
    assert [e["type"] for e in events] == ["member.role_changed", "member.removed"]
    assert [e["payload"] for e in events] == [
        {"user_id": str(outsider), "role": "editor", "previous_role": "viewer"},
        {"user_id": str(outsider), "role": "editor", "previous_role": None},
    ]
    assert {(e["actor_id"], e["actor_email"], e["org_id"], e["subject_id"]) for e in events} == {
        (world["admin"].user_id, "admin@example.test", world.org_a, outsider)}
    assert len({e["txid"] for e in events}) == 1


def test_refused_changes_emit_no_events(conn, world):
    mark = last_event_id(conn)
    with pytest.raises(CfgError), acting_as(conn, world["viewer"]) as cur:
        cur.execute("select cfg.create_automation(%s, 'Nope', 'nope')", (world.org_a,))
    with pytest.raises(CfgError), acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.remove_member(%s, %s)", (world.org_a, world["admin"].user_id))
    assert new_events(conn, mark) == []


def test_api_roles_cannot_read_or_write_the_outbox(conn, world):
    for actor in ("admin", "editor"):
        with pytest.raises(CfgError) as info, acting_as(conn, world[actor]) as cur:
            cur.execute("select * from cfg_private.events")
        assert info.value.code == "42501"
    with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
        cur.execute("insert into cfg_private.events (org_id, type, subject_type) "
                    "values (%s, 'automation.created', 'automation')", (world.org_a,))
    assert info.value.code == "42501"


def test_notify_is_delivered_on_commit_only(conn, world, db_url):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen cfgctl_events")
        mark = last_event_id(conn)
        # Rolled back: no notification at all.
        with pytest.raises(RuntimeError), acting_as(conn, world["editor"]) as cur:
            cur.execute("select cfg.create_automation(%s, 'Ghost', 'ghost')", (world.org_a,))
            raise RuntimeError("abort")
        # Committed: one notification per event, carrying its id, only after commit.
        with acting_as(conn, world["editor"]) as cur:
            cur.execute("select cfg.create_automation(%s, 'Real', 'real')", (world.org_a,))
            assert list(listener.notifies(timeout=0.3)) == []
        received = list(listener.notifies(timeout=5, stop_after=1))
    [event] = new_events(conn, mark)
    assert event["type"] == "automation.created" and event["payload"]["automation"]["slug"] == "real"
    assert [(n.channel, n.payload) for n in received] == [("cfgctl_events", str(event["id"]))]


# =============================================================================
# Secret values live in Vault; entry_secrets holds their ids (docs/secrets.md)
# =============================================================================


def secret_value(conn, entry_id):
    row = conn.execute("select cfg_private.secret_member_value(v.decrypted_secret, s.member)::jsonb as value "
                       "from cfg.entry_secrets s join vault.decrypted_secrets v on v.id = s.secret_id "
                       "where s.id = %s", (entry_id,)).fetchone()
    return None if row is None else row["value"]


def entry(conn, entry_id) -> dict:
    return conn.execute("select value, is_secret from cfg.config_entries where id = %s", (entry_id,)
                        ).fetchone()


def test_a_secret_value_is_moved_to_vault(conn, world):
    assert entry(conn, world.secret_entry_a) == {"value": None, "is_secret": True}
    assert secret_value(conn, world.secret_entry_a) == "sk_live_hunter2"
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set value = '\"sk_live_rotated\"' where id = %s",
                    (world.secret_entry_a,))
    assert entry(conn, world.secret_entry_a) == {"value": None, "is_secret": True}
    assert secret_value(conn, world.secret_entry_a) == "sk_live_rotated"
    # Editing something else keeps the stored secret.
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set description = 'Stripe' where id = %s",
                    (world.secret_entry_a,))
    assert secret_value(conn, world.secret_entry_a) == "sk_live_rotated"


def test_marking_an_entry_secret_moves_its_value(conn, world):
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set is_secret = true where id = %s", (world.entry_a,))
    assert entry(conn, world.entry_a) == {"value": None, "is_secret": True}
    assert secret_value(conn, world.entry_a) == 8080


def test_unmarking_a_secret_requires_a_plain_value(conn, world):
    with pytest.raises(CfgError) as info, acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set is_secret = false where id = %s", (world.secret_entry_a,))
    assert info.value.code == "PT422"
    assert "api_key stops being secret: give it a plain value" in str(info.value)
    assert info.value.detail == {"entry_id": str(world.secret_entry_a), "key": "api_key"}
    assert entry(conn, world.secret_entry_a) == {"value": None, "is_secret": True}
    assert secret_value(conn, world.secret_entry_a) == "sk_live_hunter2"

    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set is_secret = false, value = '\"pk_test\"' where id = %s",
                    (world.secret_entry_a,))
    assert entry(conn, world.secret_entry_a) == {"value": "pk_test", "is_secret": False}
    assert secret_value(conn, world.secret_entry_a) is None


def test_a_viewer_reads_a_secret_entry_without_its_value(conn, world):
    with acting_as(conn, world["viewer"]) as cur:
        rows = cur.execute("select key, value, is_secret from cfg.config_entries order by key").fetchall()
    assert rows == [{"key": "api_key", "value": None, "is_secret": True},
                    {"key": "port", "value": 8080, "is_secret": False}]


def test_a_secret_row_without_its_entry_is_refused_at_commit(conn, world):
    stray = create_user(conn, "stray@example.test").user_id  # any uuid that is no entry id
    # Not even the superuser (API roles may not write the table at all: its matrix line).
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with conn.transaction():
            conn.execute("insert into cfg.entry_secrets (id, org_id, secret_id, token) "
                         "values (%s, %s, gen_random_uuid(), 'x')", (stray, world.org_a))
    assert conn.execute("select count(*) from cfg.entry_secrets where id = %s", (stray,)
                        ).fetchone()["count"] == 0


def test_two_admins_demoting_each_other_concurrently_leave_one_admin(conn, world, db_url):
    """Write skew: each transaction alone keeps an admin; both together would leave none."""
    import threading

    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_member_role(%s, %s, 'admin')", (world.org_a, world["editor"].user_id))
    outcome: dict[str, object] = {}
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        with acting_as(first, world["admin"]) as cur:
            cur.execute("select cfg.set_member_role(%s, %s, 'editor')", (world.org_a, world["admin"].user_id))

            def demote_other() -> None:
                try:
                    with acting_as(second, world["editor"]) as cur2:
                        cur2.execute("select cfg.set_member_role(%s, %s, 'viewer')",
                                     (world.org_a, world["editor"].user_id))
                    outcome["second"] = "committed"
                except CfgError as exc:
                    outcome["second"] = exc.code

            thread = threading.Thread(target=demote_other)
            thread.start()
            thread.join(timeout=1.0)
            # The second demotion waits for the first to finish before checking.
            assert thread.is_alive(), f"second demotion did not wait: {outcome}"
        thread.join(timeout=10)
    assert outcome == {"second": "PT409"}
    roles = members(conn, world.org_a)
    assert [email for email, role in roles.items() if role == "admin"] == ["editor@example.test"]


def test_users_cannot_forge_outbox_events(conn, world):
    """emit_event is for triggers and RPCs; a user calling it directly is refused."""
    with pytest.raises(CfgError) as caught, acting_as(conn, world["admin"]) as cur:
        cur.execute(
            "select cfg_private.emit_event(%s, 'promotion.applied', 'automation', null, null, '{}', null)",
            (world.org_a,),
        )
    assert caught.value.code == "42501"


def test_my_orgs_lists_the_callers_orgs_with_their_role(conn, world):
    from sync_service.db import acting_as

    seen = {}
    for name in ("viewer", "admin", "other_admin", "outsider", "service"):
        with acting_as(conn, world[name]) as cur:
            seen[name] = {(r["slug"], r["role"]) for r in cur.execute("select * from cfg.my_orgs()").fetchall()}
    assert seen["viewer"] == {("org-a", "viewer")}
    assert seen["admin"] == {("org-a", "admin")}
    assert seen["other_admin"] == {("org-b", "admin")}
    assert seen["outsider"] == set()
    assert seen["service"] == {("org-a", None), ("org-b", None)}
