"""Nothing in schema cfg goes unmatrixed: the RLS matrix lines of all areas together
(tests/<area>/test_<area>_rls.py, run by tests/support/rls.py) name every table and every
function in cfg. A new area adds its module to AREAS."""

from __future__ import annotations

from tests.analytics import test_analytics_rls
from tests.audit import test_audit_rls
from tests.bulk import test_bulk_rls
from tests.export import test_export_rls
from tests.graph import test_graph_rls
from tests.promotion import test_promotion_rls
from tests.realtime import test_realtime_rls
from tests.schedules import test_schedules_rls
from tests.search import test_search_rls
from tests.secrets import test_secrets_rls
from tests.templates import test_templates_rls
from tests.tenancy import test_tenancy_rls
from tests.validation import test_validation_rls
from tests.versioning import test_versioning_rls
from tests.webhooks import test_webhooks_rls

AREAS = (test_tenancy_rls, test_audit_rls, test_versioning_rls, test_promotion_rls, test_webhooks_rls,
         test_secrets_rls, test_validation_rls, test_templates_rls, test_realtime_rls, test_search_rls,
         test_bulk_rls, test_schedules_rls, test_export_rls, test_graph_rls, test_analytics_rls)


def _lines(attribute: str) -> list[str]:
    # An RPC may have several lines ("promote: without approval"): the function is the part before ':'.
    return [name.split(":")[0] for area in AREAS for name in getattr(area, attribute)]


def test_matrix_covers_every_table_in_cfg(conn):
    tables = {r["relname"] for r in conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'cfg' and c.relkind in ('r', 'p')")}
    lines = _lines("MATRIX")
    assert len(lines) == len(set(lines)), "a table has lines in two areas"
    assert set(lines) == tables
    for area in AREAS:
        assert set(area.MATRIX) == set(area.TABLES), area.__name__


def test_matrix_covers_every_function_in_cfg(conn):
    names = {r["proname"] for r in conn.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'cfg'")}
    assert set(_lines("RPCS")) == names


def test_every_table_in_cfg_has_rls_enabled(conn):
    rows = conn.execute(
        "select c.relname, c.relrowsecurity from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'cfg' and c.relkind = 'r'"
    ).fetchall()
    assert rows and all(r["relrowsecurity"] for r in rows), rows


def test_no_api_role_reaches_a_table_in_cfg_private(conn):
    """cfg_private's tables (search terms and queue, quick find's names, rollups, ...) are
    read through definer helpers that check the caller: RLS on everywhere, no privilege for
    anon, and signed-in users only where policies decide (cfg_private.deployed_entries)."""
    rows = conn.execute(
        "select c.relname, c.relrowsecurity, "
        "       has_table_privilege('anon', c.oid, 'select, insert, update, delete') as anon, "
        "       has_table_privilege('authenticated', c.oid, 'select, insert, update, delete') as signed_in, "
        "       exists (select 1 from pg_policy p where p.polrelid = c.oid) as policed "
        "from pg_class c where c.relnamespace = 'cfg_private'::regnamespace and c.relkind in ('r', 'p')"
    ).fetchall()
    names = {r["relname"] for r in rows}
    assert {"entry_search", "search_queue", "quick_find_names"} <= names
    assert [r for r in rows if not r["relrowsecurity"] or r["anon"] or (r["signed_in"] and not r["policed"])] == []
