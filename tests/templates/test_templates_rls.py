"""The RLS matrix lines of templates, their versions and automation origins, and of the
template and clone RPCs, run by tests/support/rls.py on a world with a template in org A
and an automation made from it."""

from __future__ import annotations

import json

from sync_service.db import acting_as
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

#                           select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    "templates":            ("-YYY--Y", "---Y--Y", "---Y--Y", "---Y--Y"),
    # Written only by cfgctl's definer code (template triggers, create/apply/clone).
    "template_versions":    ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "automation_origins":   ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

TABLES = {
    "templates": Table(
        by_id("templates", "template"),
        lambda w: ("insert into cfg.templates (org_id, type_id, slug, name) values (%(org)s, %(t)s, 'other', 'Other')",
                   {"org": w.org_a, "t": w.service_type}),
        update=("description", "changed"),
    ),
    "template_versions": Table(
        lambda w: ("select id from cfg.template_versions where template_id = %(t)s", {"t": w.template}),
        copy_of("template_versions"), update=("message", "forged"),
    ),
    "automation_origins": Table(
        lambda w: ("select id from cfg.automation_origins where automation_id = %(a)s", {"a": w.from_template}),
        copy_of("automation_origins"), update=("template_version", 9),
    ),
}

ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")
EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")

CONTENT = {"sections": {"http": {"entries": {"port": {"value": {"$placeholder": "port"}}}}}}
PLACEHOLDERS = [{"name": "port", "type": "number", "default": 8080}]


def _count(table: str):
    return lambda w: (q("select count(*) from cfg.{t} where org_id = %(org)s", t=table), {"org": w.org_a})


RPCS = {
    "add_template": Rpc(
        lambda w: ("select * from cfg.add_template(%(org)s, 'service', 'another', 'Another', %(c)s::jsonb)",
                   {"org": w.org_a, "c": json.dumps(CONTENT | {"sections": {}})}),
        effect=_count("templates"), expected=ADMINS,
    ),
    "edit_template": Rpc(
        lambda w: ("select * from cfg.edit_template(%(t)s, message => 'again')", {"t": w.template}),
        effect=lambda w: ("select version from cfg.templates where id = %(t)s", {"t": w.template}),
        expected=ADMINS,
    ),
    "get_template": Rpc(lambda w: ("select cfg.get_template(%(t)s)", {"t": w.template}), expected=MEMBERS),
    "list_templates": Rpc(lambda w: ("select * from cfg.list_templates(%(org)s)", {"org": w.org_a}),
                          expected=MEMBERS),
    "create_automation_from_template": Rpc(
        lambda w: ("select cfg.create_automation_from_template(%(org)s, %(t)s, 'New', 'new-one', '{\"port\": 81}')",
                   {"org": w.org_a, "t": w.template}),
        effect=_count("automations"), expected=EDITORS,
    ),
    "template_drift": Rpc(lambda w: ("select cfg.template_drift(%(a)s)", {"a": w.from_template}), expected=MEMBERS),
    # A dry run (the default): editors, as a save.
    "apply_template": Rpc(lambda w: ("select cfg.apply_template(%(a)s)", {"a": w.from_template}), expected=EDITORS),
    "clone_automation": Rpc(
        lambda w: ("select cfg.clone_automation(%(a)s, 'Copy', 'copy')", {"a": w.automation_a}),
        effect=_count("automations"), expected=EDITORS,
    ),
    "automation_origin": Rpc(lambda w: ("select cfg.automation_origin(%(a)s)", {"a": w.from_template}),
                             expected=MEMBERS),
}


def with_a_template(conn, world: World) -> None:
    """world.template (org A's, type service), world.from_template (an automation made from it)."""
    world.service_type = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                                      (world.org_a,)).fetchone()["id"]
    conn.commit()
    with acting_as(conn, world["admin"]) as cur:
        world.template = cur.execute(
            "select id from cfg.add_template(%s, 'service', 'std', 'Std', %s::jsonb, %s::jsonb)",
            (world.org_a, json.dumps(CONTENT), json.dumps(PLACEHOLDERS)),
        ).fetchone()["id"]
        made = cur.execute("select cfg.create_automation_from_template(%s, %s, 'From', 'from-std') as r",
                           (world.org_a, world.template)).fetchone()["r"]
    world.from_template = made["automation"]["id"]


shared = shared_world("templates", with_a_template)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)
