"""The RLS matrix lines of export and import (no tables of their own: the RPCs only), run
by tests/support/rls.py on the shared world: org A's automation "billing" has a secret."""

from __future__ import annotations

import json

from tests.support.rls import DENIED, Rpc, expect, rpc_matrix_test, shared_world

MATRIX: dict = {}
TABLES: dict = {}

MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")
# Who may reveal secrets in org A (editors, the default).
REVEALERS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
EDITORS = REVEALERS

DOCUMENT = {"format": "cfgctl.export", "format_version": 1, "org": "elsewhere", "automations": [
    {"slug": "imported", "name": "Imported", "type": "service", "content": {"sections": {"http": {"entries": {
        "port": {"value": 81}}}}}}]}


def _reveals(w):
    return ("select count(*) from cfg.audit_log where org_id = %(org)s and operation = 'REVEAL'", {"org": w.org_a})


RPCS = {
    "export_automations": Rpc(
        lambda w: ("select cfg.export_automations(%(org)s, '{\"where\": {}}')", {"org": w.org_a}),
        expected=MEMBERS,
    ),
    "export_automations: with secret values": Rpc(
        lambda w: ("select cfg.export_automations(%(org)s, '{\"where\": {}}', include_secrets => true)",
                   {"org": w.org_a}),
        effect=_reveals, expected=REVEALERS,
    ),
    "import_automations": Rpc(
        lambda w: ("select cfg.import_automations(%(org)s, %(d)s::jsonb, dry_run => false)",
                   {"org": w.org_a, "d": json.dumps(DOCUMENT)}),
        effect=lambda w: ("select count(*) from cfg.automations where org_id = %(org)s", {"org": w.org_a}),
        expected=EDITORS,
    ),
    "import_automations: dry run": Rpc(
        lambda w: ("select cfg.import_automations(%(org)s, %(d)s::jsonb)", {"org": w.org_a, "d": json.dumps(DOCUMENT)}),
        expected=EDITORS,
    ),
}

shared = shared_world("export")
test_rpc_matrix = rpc_matrix_test(RPCS)
