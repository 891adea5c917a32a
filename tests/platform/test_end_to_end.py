"""Versioning and webhooks together, as a team would wire them: a save and a production
promotion reach a receiver subscribed to them, signed, filtered by environment, with no
secret value anywhere in what is sent."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook

from tests.support.versioning import content, head, rpc, save
from tests.support.webhooks import Receiver, ThreadDispatcher, allow_host, create_endpoint


def test_save_and_prod_promotion_arrive_signed_and_filtered(conn, world, db_url):
    allow_host(conn, world.org_a)
    prod = conn.execute("select id from cfg.environments where org_id = %s and slug = 'prod'",
                        (world.org_a,)).fetchone()["id"]
    conn.commit()
    a = world.automation_a
    with Receiver() as receiver:
        saves = create_endpoint(conn, world["admin"], world.org_a, receiver.url("/saves"), ["config.saved"])
        prod_only = create_endpoint(conn, world["admin"], world.org_a, receiver.url("/prod"),
                                    ["promotion.requested", "promotion.applied"], environment_id=prod)
        with ThreadDispatcher(db_url):
            save(conn, world["editor"], a, head(conn, a),
                 content({"http": {"port": 9000, "api_key": ("secret", "sk_live_rotated_value")}}), "bump port")
            rpc(conn, world["editor"], "select cfg.promote(%s, 'dev', 'staging', false)", (a,))
            request = rpc(conn, world["editor"], "select cfg.promote(%s, 'staging', 'prod', false) as r",
                          (a,))["r"]
            rpc(conn, world["admin"], "select cfg.approve_promotion(%s)", (request["request_id"],))
            [saved] = receiver.wait_for(1, "/saves")
            receiver.wait_for(2, "/prod")
        prod_events = receiver.on("/prod")
        queued_for_prod = conn.execute("select count(*) as n from cfg_private.webhook_deliveries "
                                       "where endpoint_id = %s", (prod_only["id"],)).fetchone()["n"]

    body = Webhook(saves["secret"]).verify(saved.body, saved.headers)
    assert body["type"] == "config.saved"
    # Staging's promotion.applied went to nobody: the /prod endpoint filters on prod.
    assert queued_for_prod == 2
    assert sorted(Webhook(prod_only["secret"]).verify(r.body, r.headers)["type"] for r in prod_events) == [
        "promotion.applied", "promotion.requested"]
    everything = b"".join(r.body for r in receiver.requests)
    assert b"sk_live_rotated_value" not in everything and b"sk_live_hunter2" not in everything
