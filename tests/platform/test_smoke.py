from sync_service.db import acting_as


def test_viewer_lists_only_own_org_automations(conn, world):
    with acting_as(conn, world["viewer"]) as cur:
        slugs = [r["slug"] for r in cur.execute("select slug from cfg.automations")]
    assert slugs == ["billing"]
