"""The RLS matrix lines of automation types, validation rules, their versions and the
validation status, and of the validation RPCs, run by tests/support/rls.py on a world
with a rule and a spare type in org A."""

from __future__ import annotations

import json

from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    by_id,
    copy_of,
    expect,
    q,
    rpc_matrix_test,
    shared_world,
    table_matrix_test,
)
from tests.support.world import World

#                               select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    "automation_types":          ("-YYY--Y", "---Y--Y", "---Y--Y", "---Y--Y"),
    "validation_rules":          ("-YYY--Y", "---Y--Y", "---Y--Y", "---Y--Y"),
    # Written only by cfgctl's definer code (rule triggers, deployments).
    "validation_rule_versions":  ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "validation_status":         ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

RULE = {"name": "port", "section": "http", "key": "port", "schema": {"type": "integer"}}

TABLES = {
    "automation_types": Table(
        by_id("automation_types", "spare_type"),
        lambda w: ("insert into cfg.automation_types (org_id, slug, name) values (%(org)s, 'edge', 'Edge')",
                   {"org": w.org_a}),
        update=("name", "Renamed"),
    ),
    "validation_rules": Table(
        by_id("validation_rules", "rule"),
        lambda w: ("insert into cfg.validation_rules (org_id, type_id, name, scope, schema) "
                   "values (%(org)s, %(t)s, 'another', 'content', '{}')", {"org": w.org_a, "t": w.service_type}),
        update=("description", "changed"),
    ),
    "validation_rule_versions": Table(
        lambda w: ("select id from cfg.validation_rule_versions where rule_id = %(r)s", {"r": w.rule}),
        copy_of("validation_rule_versions"), update=("change", "updated"),
    ),
    "validation_status": Table(
        lambda w: ("select id from cfg.validation_status where automation_id = %(a)s", {"a": w.automation_a}),
        copy_of("validation_status"), update=("status", "errors"),
    ),
}

ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")
MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")


def _count(table: str):
    return lambda w: (q("select count(*) from cfg.{t} where org_id = %(org)s", t=table), {"org": w.org_a})


RPCS = {
    "add_automation_type": Rpc(
        lambda w: ("select * from cfg.add_automation_type(%(org)s, 'edge', 'Edge')", {"org": w.org_a}),
        effect=_count("automation_types"), expected=ADMINS,
    ),
    "list_automation_types": Rpc(
        lambda w: ("select * from cfg.list_automation_types(%(org)s)", {"org": w.org_a}), expected=MEMBERS,
    ),
    "remove_automation_type": Rpc(
        lambda w: ("select cfg.remove_automation_type(%(t)s)", {"t": w.spare_type}),
        effect=_count("automation_types"), expected=ADMINS,
    ),
    "add_validation_rule": Rpc(
        lambda w: ("select * from cfg.add_validation_rule(%(t)s, %(d)s::jsonb)",
                   {"t": w.service_type, "d": json.dumps({**RULE, "name": "other"})}),
        effect=_count("validation_rules"), expected=ADMINS,
    ),
    "edit_validation_rule": Rpc(
        lambda w: ("select * from cfg.edit_validation_rule(%(r)s, '{\"severity\": \"warning\"}')", {"r": w.rule}),
        effect=lambda w: ("select version from cfg.validation_rules where id = %(r)s", {"r": w.rule}),
        expected=ADMINS,
    ),
    "remove_validation_rule": Rpc(
        lambda w: ("select cfg.remove_validation_rule(%(r)s)", {"r": w.rule}),
        effect=_count("validation_rules"), expected=ADMINS,
    ),
    "list_validation_rules": Rpc(
        lambda w: ("select * from cfg.list_validation_rules(%(org)s)", {"org": w.org_a}), expected=MEMBERS,
    ),
    "test_validation_rule": Rpc(
        # A dry run that finds the port (8080) is not a string.
        lambda w: ("select * from cfg.test_validation_rule(%(t)s, %(d)s::jsonb)",
                   {"t": w.service_type, "d": json.dumps({**RULE, "schema": {"type": "string"}})}),
        expected=ADMINS,
    ),
    "validate_config": Rpc(
        lambda w: ("select cfg.validate_config(%(a)s)", {"a": w.automation_a}), expected=MEMBERS,
    ),
}


def with_a_rule(conn, world: World) -> None:
    """world.service_type (org A's), world.rule (a warning: http.port a string), world.spare_type (unused)."""
    world.service_type = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                                      (world.org_a,)).fetchone()["id"]
    world.spare_type = conn.execute("insert into cfg.automation_types (org_id, slug, name) "
                                    "values (%s, 'spare', 'Spare') returning id", (world.org_a,)).fetchone()["id"]
    # A warning about what dev runs (port 8080 is no string): a validation status row.
    world.rule = conn.execute(
        "insert into cfg.validation_rules (org_id, type_id, name, scope, section, key, schema, severity) "
        "values (%s, %s, 'port', 'entry', 'http', 'port', '{\"type\": \"string\"}', 'warning') returning id",
        (world.org_a, world.service_type),
    ).fetchone()["id"]


shared = shared_world("validation", with_a_rule)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)
