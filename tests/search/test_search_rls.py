"""The RLS matrix lines of saved filters and of the search RPCs, run by tests/support/rls.py
on a world with a shared filter of org A's editor."""

from __future__ import annotations

from sync_service.db import acting_as
from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    by_id,
    expect,
    rpc_matrix_test,
    shared_world,
    table_matrix_test,
)
from tests.support.world import World

#                      select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    # The row: a filter org A's editor shared. Viewers keep personal filters only.
    "saved_filters": ("-YYY--Y", "--YY--Y", "--YY--Y", "--YY--Y"),
}

TABLES = {
    "saved_filters": Table(
        by_id("saved_filters", "saved_filter"),
        lambda w: ("insert into cfg.saved_filters (org_id, name, shared) values (%(org)s, 'Mine', true)",
                   {"org": w.org_a}),
        update=("name", "Renamed"),
    ),
}

MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")
EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
SIGNED_IN = expect(DENIED, "ok", "ok", "ok", "ok", "ok", "ok")

RPCS = {
    "search": Rpc(lambda w: ("select cfg.search('billing', %(org)s)", {"org": w.org_a}), expected=MEMBERS),
    # Across the caller's orgs: everyone signed in gets an answer (their own orgs' matches).
    "search:all_orgs": Rpc(lambda w: ("select cfg.search('billing')", {}), expected=SIGNED_IN),
    "quick_find": Rpc(lambda w: ("select count(*) from cfg.quick_find('bill')", {}), expected=SIGNED_IN),
    "save_filter": Rpc(
        lambda w: ("select * from cfg.save_filter(%(org)s, 'Mine', 'port')", {"org": w.org_a}),
        effect=lambda w: ("select count(*) from cfg.saved_filters where org_id = %(org)s", {"org": w.org_a}),
        expected=MEMBERS,
    ),
    "save_filter:shared": Rpc(
        lambda w: ("select * from cfg.save_filter(%(org)s, 'Ours', 'port', shared => true)", {"org": w.org_a}),
        effect=lambda w: ("select count(*) from cfg.saved_filters where org_id = %(org)s", {"org": w.org_a}),
        expected=EDITORS,
    ),
    "reindex_search": Rpc(lambda w: ("select cfg.reindex_search(%(org)s)", {"org": w.org_a}),
                          expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")),
    "list_saved_filters": Rpc(lambda w: ("select count(*) from cfg.list_saved_filters(%(org)s)", {"org": w.org_a}),
                              expected=MEMBERS),
    "run_saved_filter": Rpc(lambda w: ("select cfg.run_saved_filter(%(f)s)", {"f": w.saved_filter}),
                            expected=MEMBERS),
    "delete_saved_filter": Rpc(
        lambda w: ("select * from cfg.delete_saved_filter(%(f)s)", {"f": w.saved_filter}),
        effect=lambda w: ("select count(*) from cfg.saved_filters where org_id = %(org)s", {"org": w.org_a}),
        expected=EDITORS,
    ),
}


def with_a_shared_filter(conn, world: World) -> None:
    with acting_as(conn, world["editor"]) as cur:
        world.saved_filter = cur.execute(
            "select id from cfg.save_filter(%s, 'Ports', 'port', shared => true)", (world.org_a,)
        ).fetchone()["id"]


shared = shared_world("search", with_a_shared_filter)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)
