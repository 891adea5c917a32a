"""Bad input at every surface gets a clear error (SQLSTATE + a message a person can act
on) and changes nothing: every table in cfg, the audit log and the outbox keep their rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.rls import shared_world
from tests.support.world import World

INJECTION = "x'); drop table cfg.orgs; --"
MIB = 1048576


@pytest.fixture
def _autocommit(conn):
    conn.autocommit = True


# One world for the table of refused inputs: each case runs in a rolled-back transaction.
shared = shared_world("bad_input")


def snapshot(conn) -> dict[str, int]:
    """Row counts of everything a refused call could have touched."""
    tables = [r["t"] for r in conn.execute(
        "select format('%I.%I', n.nspname, c.relname) as t from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where c.relkind = 'r' and (n.nspname = 'cfg' or (n.nspname, c.relname) = ('cfg_private', 'events'))"
    )]
    assert len(tables) >= 9
    counts = conn.execute(
        " union all ".join(f"select '{t}' as t, count(*) as n from {t}" for t in tables)  # noqa: S608
    ).fetchall()
    return {r["t"]: r["n"] for r in counts}


def json_string_of_text_length(length: int) -> str:
    """A JSON string literal whose jsonb::text is exactly `length` bytes."""
    return '"' + "x" * (length - 2) + '"'


@dataclass(frozen=True)
class Bad:
    actor: str
    sql: str
    params: Callable[[World], tuple]
    code: str
    message: str


def _org(w: World) -> tuple:
    return (w.org_a,)


def _entry(value: str, secret: bool = False) -> Bad:
    return Bad(
        "editor",
        "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
        "values (%s, %s, %s, 'big', %s, %s)",
        lambda w: (w.org_a, w.automation_a, w.section_a, value, secret),
        "23514",
        "a secret value is at most 1 MiB" if secret else "config_entries_value_max_1mib",
    )


ORG_SLUG = "invalid organisation slug"
AUTOMATION_SLUG = "invalid automation slug"
UNKNOWN_ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")

CASES: dict[str, Bad] = {
    # ---- invalid slugs (RPCs explain the rule; the table's CHECK backs them up) ----
    **{
        f"org-slug-{name}": Bad("outsider", "select cfg.create_org('Acme', %s)", lambda w, s=slug: (s,),
                                "PT422", ORG_SLUG)
        for name, slug in [("uppercase", "Acme"), ("spaces", "acme corp"), ("empty", ""),
                           ("200-chars", "a" * 200), ("leading-hyphen", "-acme"),
                           ("trailing-hyphen", "acme-"), ("null", None), ("unicode", "acmé")]
    },
    **{
        f"automation-slug-{name}": Bad("editor", "select cfg.create_automation(%s, 'Mailer', %s)",
                                       lambda w, s=slug: (w.org_a, s), "PT422", AUTOMATION_SLUG)
        for name, slug in [("uppercase", "Mailer"), ("spaces", "mail er"), ("empty", ""),
                           ("200-chars", "m" * 200), ("leading-hyphen", "-mailer"),
                           ("underscore", "mail_er"), ("null", None)]
    },
    "org-slug-direct-insert": Bad("service", "insert into cfg.orgs (name, slug) values ('Acme', 'Acme Corp')",
                                  lambda w: (), "23514", "orgs_slug_format"),
    "automation-slug-direct-insert": Bad(
        "editor", "insert into cfg.automations (org_id, name, slug) values (%s, 'M', '-mailer')",
        _org, "23514", "automations_slug_format"),
    # ---- duplicates ----
    "org-slug-duplicate": Bad("outsider", "select cfg.create_org('Again', 'org-a')", lambda w: (),
                              "PT409", "an organisation with slug 'org-a' already exists"),
    "automation-slug-duplicate": Bad("editor", "select cfg.create_automation(%s, 'Again', 'billing')", _org,
                                     "PT409", "an automation with slug 'billing' already exists"),
    "automation-slug-duplicate-direct": Bad(
        "editor", "insert into cfg.automations (org_id, name, slug) values (%s, 'Again', 'billing')",
        _org, "23505", "automations_org_slug_key"),
    "section-name-duplicate": Bad(
        "editor", "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'http')",
        lambda w: (w.org_a, w.automation_a), "23505", "config_sections_automation_name_key"),
    "entry-key-duplicate": Bad(
        "editor", "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
        "values (%s, %s, %s, 'port', '1')", lambda w: (w.org_a, w.automation_a, w.section_a),
        "23505", "config_entries_section_key_key"),
    "environment-slug-duplicate": Bad(
        "admin", "insert into cfg.environments (org_id, name, slug, position) values (%s, 'P', 'prod', 9)",
        _org, "23505", "environments_org_slug_key"),
    # ---- unknown org ----
    "unknown-org-create-automation": Bad("editor", "select cfg.create_automation(%s, 'M', 'm')",
                                         lambda w: (UNKNOWN_ORG,), "PT404", "organisation not found"),
    "unknown-org-invite-member": Bad("admin", "select cfg.invite_member(%s, 'viewer@example.test', 'viewer')",
                                     lambda w: (UNKNOWN_ORG,), "PT404", "organisation not found"),
    "unknown-org-list-invitations": Bad("admin", "select cfg.list_invitations(%s)", lambda w: (UNKNOWN_ORG,),
                                        "PT404", "organisation not found"),
    "unknown-invitation-revoke": Bad("admin", "select cfg.revoke_invitation(%s)", lambda w: (UNKNOWN_ORG,),
                                     "PT404", "invitation not found"),
    "unknown-invitation-accept": Bad("outsider", "select cfg.accept_invitation(%s)", lambda w: (UNKNOWN_ORG,),
                                     "PT404", "invitation not found"),
    "unknown-org-list-members": Bad("admin", "select cfg.list_members(%s)", lambda w: (UNKNOWN_ORG,),
                                    "PT404", "organisation not found"),
    "unknown-org-audit-events": Bad("admin", "select cfg.audit_events(%s)", lambda w: (UNKNOWN_ORG,),
                                    "PT404", "organisation not found"),
    "unknown-org-direct-insert": Bad(
        "editor", "insert into cfg.automations (org_id, name, slug) values (%s, 'M', 'm')",
        lambda w: (UNKNOWN_ORG,), "42501", "row-level security"),
    "unknown-org-service-insert": Bad(
        "service", "insert into cfg.automations (org_id, name, slug) values (%s, 'M', 'm')",
        lambda w: (UNKNOWN_ORG,), "23503", "automations_org_id_fkey"),
    # The service key skips the role check, not the existence check.
    "unknown-org-service-create-automation": Bad("service", "select cfg.create_automation(%s, 'M', 'm')",
                                                 lambda w: (UNKNOWN_ORG,), "PT404", "organisation not found"),
    "unknown-org-service-invite-member": Bad(
        "service", "select cfg.invite_member(%s, 'viewer@example.test', 'viewer')",
        lambda w: (UNKNOWN_ORG,), "PT404", "organisation not found"),
    "unknown-org-service-audit-events": Bad("service", "select cfg.audit_events(%s)", lambda w: (UNKNOWN_ORG,),
                                            "PT404", "organisation not found"),
    "unknown-org-service-list-members": Bad("service", "select cfg.list_members(%s)", lambda w: (UNKNOWN_ORG,),
                                            "PT404", "organisation not found"),
    "unknown-automation-delete": Bad("admin", "select cfg.delete_automation(%s)", lambda w: (UNKNOWN_ORG,),
                                     "PT404", "automation not found"),
    # ---- values over 1 MiB ----
    "value-over-1mib": _entry(json_string_of_text_length(MIB + 1)),
    "secret-value-over-1mib": _entry(json_string_of_text_length(MIB + 1), secret=True),
    "value-over-1mib-by-update": Bad(
        "editor", "update cfg.config_entries set value = %s where id = %s",
        lambda w: (json_string_of_text_length(MIB + 1), w.entry_a), "23514", "config_entries_value_max_1mib"),
    "secret-over-1mib-direct": Bad(
        "editor", "update cfg.config_entries set value = %s where id = %s",
        lambda w: (json_string_of_text_length(MIB + 1), w.secret_entry_a), "23514",
        "a secret value is at most 1 MiB"),
    # ---- unknown role and enum values ----
    "unknown-role-invite-member": Bad("admin", "select cfg.invite_member(%s, 'outsider@example.test', 'owner')",
                                      _org, "22P02", 'invalid input value for enum cfg.org_role: "owner"'),
    "unknown-role-set-role": Bad("admin", "select cfg.set_member_role(%s, %s, 'superadmin')",
                                 lambda w: (w.org_a, w["viewer"].user_id), "22P02",
                                 'invalid input value for enum cfg.org_role: "superadmin"'),
    "unknown-role-direct-update": Bad("admin", "update cfg.org_members set role = 'root' where org_id = %s",
                                      _org, "22P02", "invalid input value for enum cfg.org_role"),
    "role-wrong-case": Bad("admin", "select cfg.invite_member(%s, 'outsider@example.test', 'Admin')",
                           _org, "22P02", "invalid input value for enum cfg.org_role"),
    "unknown-automation-type": Bad("editor", "select cfg.create_automation(%s, 'M', 'm', 'lambda')", _org,
                                   "PT422", "unknown automation type 'lambda'"),
    "unknown-automation-type-direct": Bad(
        "editor", "update cfg.automations set type = 'lambda' where org_id = %s", _org, "23503",
        "automations_type_fkey"),
    "unknown-automation-status": Bad("editor", "update cfg.automations set status = 'deleted' where org_id = %s",
                                     _org, "22P02", "invalid input value for enum cfg.automation_status"),
    # ---- another org's ids ----
    "section-on-other-orgs-automation": Bad(
        "editor", "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'x')",
        lambda w: (w.org_a, w.automation_b), "23503", "config_sections_automation_fkey"),
    "section-on-other-orgs-automation-as-service": Bad(
        "service", "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'x')",
        lambda w: (w.org_a, w.automation_b), "23503", "config_sections_automation_fkey"),
    "section-in-other-org": Bad(
        "editor", "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'x')",
        lambda w: (w.org_b, w.automation_b), "42501", "row-level security"),
    "entry-with-section-of-other-automation": Bad(
        "editor", "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
        "values (%s, %s, %s, 'k', '1')", lambda w: (w.org_a, w.automation_b, w.section_a),
        "23503", "config_entries_section_fkey"),
    "secret-row-written-directly": Bad(
        "service", "insert into cfg.entry_secrets (id, org_id, secret_id, token) values (%s, %s, %s, 'x')",
        lambda w: (w.entry_a, w.org_b, w.entry_a), "42501", "permission denied for table entry_secrets"),
    "create-automation-in-other-org": Bad("editor", "select cfg.create_automation(%s, 'M', 'm')",
                                          lambda w: (w.org_b,), "PT404", "organisation not found"),
    "invite-member-to-other-org": Bad("admin", "select cfg.invite_member(%s, 'admin@example.test', 'admin')",
                                      lambda w: (w.org_b,), "PT404", "organisation not found"),
    "delete-other-orgs-automation": Bad("admin", "select cfg.delete_automation(%s)",
                                        lambda w: (w.automation_b,), "PT404", "automation not found"),
    "set-role-in-other-org": Bad("other_admin", "select cfg.set_member_role(%s, %s, 'admin')",
                                 lambda w: (w.org_a, w["other_admin"].user_id), "PT404",
                                 "organisation not found"),
    # ---- wrong types and shapes ----
    "org-id-not-a-uuid": Bad("editor", "select cfg.create_automation('org-a', 'M', 'm')", lambda w: (),
                             "22P02", "invalid input syntax for type uuid"),
    "value-not-json": Bad(
        "editor", "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
        "values (%s, %s, %s, 'k', '{not json')", lambda w: (w.org_a, w.automation_a, w.section_a),
        "22P02", "invalid input syntax for type json"),
    "position-not-a-number": Bad(
        "admin", "insert into cfg.environments (org_id, name, slug, position) values (%s, 'QA', 'qa', 'third')",
        _org, "22P02", "invalid input syntax for type integer"),
    "position-negative": Bad(
        "admin", "insert into cfg.environments (org_id, name, slug, position) values (%s, 'QA', 'qa', -1)",
        _org, "23514", "environments_position_nonnegative"),
    "position-taken": Bad(
        "admin", "insert into cfg.environments (org_id, name, slug, position) values (%s, 'QA', 'qa', 2)",
        _org, "23505", "environments_org_position_key"),
    "automation-name-blank": Bad("editor", "select cfg.create_automation(%s, '   ', 'm')", _org,
                                 "PT422", "automation name must be 1-200 characters"),
    "automation-name-too-long": Bad("editor", "select cfg.create_automation(%s, %s, 'm')",
                                    lambda w: (w.org_a, "n" * 201), "PT422",
                                    "automation name must be 1-200 characters"),
    "org-name-blank": Bad("outsider", "select cfg.create_org('  ', 'blank')", lambda w: (),
                          "PT422", "organisation name must be 1-200 characters"),
    "org-name-null": Bad("outsider", "select cfg.create_org(null, 'blank')", lambda w: (),
                         "PT422", "organisation name must be 1-200 characters"),
    "org-name-too-long": Bad("outsider", "select cfg.create_org(%s, 'long')", lambda w: ("n" * 201,),
                             "PT422", "organisation name must be 1-200 characters"),
    "description-too-long": Bad("editor", "select cfg.create_automation(%s, 'M', 'm', 'service', '{}', %s)",
                                lambda w: (w.org_a, "d" * 10001), "23514", "automations_description_length"),
    "too-many-tags": Bad("editor", "select cfg.create_automation(%s, 'M', 'm', 'service', %s)",
                         lambda w: (w.org_a, [f"t{i}" for i in range(51)]), "23514", "automations_tags_limit"),
    "entry-key-with-spaces": Bad(
        "editor", "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
        "values (%s, %s, %s, 'my key', '1')", lambda w: (w.org_a, w.automation_a, w.section_a),
        "23514", "config_entries_key_format"),
    "plain-entry-without-value": Bad(
        "editor", "insert into cfg.config_entries (org_id, automation_id, section_id, key) "
        "values (%s, %s, %s, 'k')", lambda w: (w.org_a, w.automation_a, w.section_a),
        "23514", "config_entries_value_placement"),
    "section-name-injection": Bad(
        "editor", "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, %s)",
        lambda w: (w.org_a, w.automation_a, INJECTION), "23514", "config_sections_name_format"),
    "member-email-injection": Bad("admin", "select cfg.invite_member(%s, %s, 'viewer')",
                                  lambda w: (w.org_a, INJECTION), "PT422", "is not an email address"),
    "invitation-lifetime-too-long": Bad("admin", "select cfg.invite_member(%s, 'x@example.test', 'viewer', '1 year')",
                                        _org, "PT422", "1 hour to 30 days"),
    # ---- pipeline changes (two-person rule): requests and the direct writes they replace ----
    **{
        f"environment-change-{name}": Bad(
            "admin", "select cfg.request_environment_change("
            "(select id from cfg.environments where org_id = %s and slug = 'prod'), %s::jsonb)",
            lambda w, c=change: (w.org_a, c), "PT422", "a change is one of")
        for name, change in [("null", None), ("not-an-object", '"requires_approval"'), ("empty", "{}"),
                             ("two-keys", '{"requires_approval": false, "position": 0}'),
                             ("approval-on", '{"requires_approval": true}'), ("delete-false", '{"delete": false}'),
                             ("position-negative", '{"position": -1}'), ("position-text", '{"position": "1"}'),
                             ("position-fraction", '{"position": 1.5}'), ("unknown-key", '{"name": "Prod"}')]
    },
    "environment-change-reason-too-long": Bad(
        "admin", "select cfg.request_environment_change("
        "(select id from cfg.environments where org_id = %s and slug = 'prod'), '{\"position\": 9}', %s)",
        lambda w: (w.org_a, "r" * 2001), "PT422", "reason is at most 2000 characters"),
    "environment-change-unknown-environment": Bad(
        "admin", "select cfg.request_environment_change(%s, '{\"requires_approval\": false}')",
        lambda w: (UNKNOWN_ORG,), "PT404", "environment not found"),
    "environment-change-unknown-request": Bad(
        "admin", "select cfg.approve_environment_change(%s)", lambda w: (UNKNOWN_ORG,),
        "PT404", "environment change request not found"),
    "environment-approval-off-direct": Bad(
        "admin", "update cfg.environments set requires_approval = false where org_id = %s and slug = 'prod'",
        _org, "PT403", "needs another admin's approval"),
    "environment-reorder-direct": Bad(
        "admin", "update cfg.environments set position = 5 where org_id = %s and slug = 'dev'",
        _org, "PT403", "needs another admin's approval"),
    "environment-delete-direct": Bad(
        "admin", "delete from cfg.environments where org_id = %s and slug = 'prod'",
        _org, "PT403", "needs another admin's approval"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_clearly_and_changes_nothing(shared, case: Bad):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        before = snapshot(conn)
        with pytest.raises(CfgError) as info, acting_as(conn, world[case.actor]) as cur:
            cur.execute(case.sql, case.params(world))
            cur.execute("set constraints all immediate")  # what commit would check
        # The failed acting_as savepoint rolled back, role included: we are the superuser again.
        assert conn.execute("select current_user as u").fetchone()["u"] == "postgres"
        after = snapshot(conn)
    error = info.value
    assert error.code == case.code, (error.code, str(error))
    assert case.message in str(error) or case.message in str(error.__cause__), str(error)
    assert after == before
    # The RPCs' own errors carry machine-readable detail (JSON) for the API.
    if case.code.startswith("PT4") and "organisation not found" not in case.message:
        assert isinstance(error.detail, dict) or error.hint, (error.detail, error.hint)


def test_exactly_1mib_is_accepted(conn, world, _autocommit):
    value = json_string_of_text_length(MIB)
    with acting_as(conn, world["editor"]) as cur:
        cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
            "values (%s, %s, %s, 'big', %s), (%s, %s, %s, 'big_secret', %s)",
            (world.org_a, world.automation_a, world.section_a, value,
             world.org_a, world.automation_a, world.section_a, value),
        )
        cur.execute("update cfg.config_entries set is_secret = true where key = 'big_secret'")
    sizes = conn.execute(
        "select octet_length(coalesce(v.decrypted_secret, e.value::text)) as n from cfg.config_entries e "
        "left join cfg.entry_secrets s on s.id = e.id left join vault.decrypted_secrets v on v.id = s.secret_id "
        "where e.key like 'big%%'"
    ).fetchall()
    assert sizes == [{"n": MIB}, {"n": MIB}]


def test_the_same_slug_in_another_org_is_fine(conn, world, _autocommit):
    with acting_as(conn, world["other_admin"]) as cur:
        row = cur.execute("select org_id, slug from cfg.create_automation(%s, 'Billing', 'billing')",
                          (world.org_b,)).fetchone()
    assert row == {"org_id": world.org_b, "slug": "billing"}


def test_sql_looking_strings_are_stored_verbatim(conn, world, _autocommit):
    with acting_as(conn, world["outsider"]) as cur:
        org = cur.execute("select id, name from cfg.create_org(%s, 'injected')", (INJECTION,)).fetchone()
        automation = cur.execute(
            "select * from cfg.create_automation(%s, %s, 'robert', 'service', %s, %s)",
            (org["id"], INJECTION, [INJECTION, "--", "'; select 1; --"], INJECTION),
        ).fetchone()
        section = cur.execute(
            "insert into cfg.config_sections (org_id, automation_id, name, description) "
            "values (%s, %s, 'main', %s) returning id", (org["id"], automation["id"], INJECTION)
        ).fetchone()["id"]
        cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, description) "
            "values (%s, %s, %s, 'query', to_jsonb(%s::text), %s), "
            "(%s, %s, %s, 'nested', jsonb_build_object('sql', %s::text), '')",
            (org["id"], automation["id"], section, INJECTION, INJECTION,
             org["id"], automation["id"], section, INJECTION),
        )
    assert org["name"] == INJECTION
    assert automation["name"] == INJECTION and automation["description"] == INJECTION
    assert automation["tags"] == [INJECTION, "--", "'; select 1; --"]
    values = conn.execute(
        "select key, value, description from cfg.config_entries where automation_id = %s order by key",
        (automation["id"],),
    ).fetchall()
    assert values == [
        {"key": "nested", "value": {"sql": INJECTION}, "description": ""},
        {"key": "query", "value": INJECTION, "description": INJECTION},
    ]
    # Tags are searchable as data, and the tables are all still there.
    with acting_as(conn, world["outsider"]) as cur:
        found = cur.execute("select slug from cfg.automations where tags @> array[%s]", (INJECTION,)
                            ).fetchall()
    assert found == [{"slug": "robert"}]
    assert conn.execute("select to_regclass('cfg.orgs') is not null as ok").fetchone()["ok"]
    assert conn.execute("select count(*) from cfg.orgs").fetchone()["count"] == 3
    # The audit log stores the strings as data too.
    audited = conn.execute("select new_values ->> 'name' as n from cfg.audit_log "
                           "where table_name = 'automations' and row_id = %s", (automation["id"],)).fetchone()
    assert audited["n"] == INJECTION


def test_an_sql_looking_email_is_just_an_invalid_address(conn, world, _autocommit):
    # invite_member must not build SQL from the email: a classic tautology is no address.
    before = snapshot(conn)
    with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.invite_member(%s, %s, 'viewer')", (world.org_a, "' or '1'='1"))
    assert info.value.code == "PT422"
    assert snapshot(conn) == before
