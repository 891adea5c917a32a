"""SSRF: the database (cfg_private.webhook_refusal, check_webhook_url) and the dispatcher
(SsrfPolicy, HostGuard) give the same verdict on every host form, from one list; the
dispatcher checks the addresses at every connection (DNS rebinding), per allowlist."""

from __future__ import annotations

import asyncio
import ipaddress

import aiohappyeyeballs
import aiohttp
import pytest

from sync_service.db import SERVICE, CfgError, acting_as
from sync_service.workers.webhooks import Dispatcher, Refused, SsrfPolicy
from tests.support.act import attempt
from tests.support.webhooks import (
    Receiver,
    Reply,
    ThreadDispatcher,
    allow_host,
    attempts,
    create_endpoint,
    emit,
    fast_settings,
    wait_until,
)

# (host, resolved address or None, allowlist, expected refusal)
FORMS = [
    # IPv4: loopback, private, link-local and metadata, CGNAT, "this network"; public.
    ("127.0.0.1", None, (), "blocked_address"),
    ("127.1.2.3", None, (), "blocked_address"),
    ("10.1.2.3", None, (), "blocked_address"),
    ("172.16.0.1", None, (), "blocked_address"),
    ("172.31.255.255", None, (), "blocked_address"),
    ("192.168.1.1", None, (), "blocked_address"),
    ("169.254.169.254", None, (), "blocked_address"),
    ("100.100.100.200", None, (), "blocked_address"),
    ("0.0.0.0", None, (), "blocked_address"),
    ("172.32.0.1", None, (), None),
    ("8.8.8.8", None, (), None),
    # IPv6: loopback, unspecified, unique-local (fd00:ec2::254 metadata), link-local, multicast; public.
    ("::1", None, (), "blocked_address"),
    ("::", None, (), "blocked_address"),
    ("fd00:ec2::254", None, (), "blocked_address"),
    ("fe80::1", None, (), "blocked_address"),
    ("ff02::1", None, (), "blocked_address"),
    ("2606:4700:4700::1111", None, (), None),
    ("2606:4700:4700:0000:0000:0000:0000:1111", None, (), None),
    # Every IPv6 form that embeds an IPv4 address, whatever that address is.
    ("::127.0.0.1", None, (), "blocked_address"),  # compatible ::/96
    ("::8.8.8.8", None, (), "blocked_address"),
    ("::ffff:127.0.0.1", None, (), "blocked_address"),  # mapped ::ffff:0:0/96
    ("::ffff:7f00:1", None, (), "blocked_address"),
    ("0:0:0:0:0:ffff:7f00:1", None, (), "blocked_address"),
    ("::ffff:8.8.8.8", None, (), "blocked_address"),
    ("::ffff:0:127.0.0.1", None, (), "blocked_address"),  # translated ::ffff:0:0:0/96
    ("::ffff:0:808:808", None, (), "blocked_address"),
    ("64:ff9b::7f00:1", None, (), "blocked_address"),  # NAT64
    ("64:ff9b::8.8.8.8", None, (), "blocked_address"),
    ("64:ff9b:1::a00:1", None, (), "blocked_address"),
    ("2002:7f00:1::", None, (), "blocked_address"),  # 6to4
    ("2002:808:808::1", None, (), "blocked_address"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", None, (), "blocked_address"),  # Teredo
    # IPv6 text that one parser reads and the other does not: refused by both.
    ("::ffff:127.1", None, (), "invalid_host"),  # inet reads ::ffff:127.1.0.0
    ("::ffff:0177.0.0.1", None, (), "invalid_host"),
    ("1::2::3", None, (), "invalid_host"),
    ("fe80::1%eth0", None, (), "invalid_host"),
    # Upper case and trailing dots.
    ("LOCALHOST", None, (), "local_name"),
    ("localhost.", None, (), "local_name"),
    ("localhost..", None, (), "local_name"),
    ("127.0.0.1.", None, (), "blocked_address"),
    ("Metadata.Google.Internal.", None, (), "local_name"),
    ("metadata", None, (), "local_name"),
    ("printer.local", None, (), "local_name"),
    ("app.localhost", None, (), "local_name"),
    ("EXAMPLE.COM.", None, (), None),
    ("localhost.example.com", None, (), None),
    ("a_b.example", None, (), None),
    # Numeric forms the OS resolver turns into addresses (inet_aton: octal, hex, short).
    ("2130706433", None, (), "numeric_host"),
    ("017700000001", None, (), "numeric_host"),
    ("0x7f000001", None, (), "numeric_host"),
    ("0x7f.1", None, (), "numeric_host"),
    ("127.1", None, (), "numeric_host"),
    ("0177.0.0.1", None, (), "numeric_host"),  # inet reads 177.0.0.1, the resolver 127.0.0.1
    ("01.2.3.4", None, (), "numeric_host"),
    ("1.2.3", None, (), "numeric_host"),
    ("example.123", None, (), "numeric_host"),
    ("123.example", None, (), None),
    # Non-ASCII names (IDNA maps full-width digits and circled letters to ASCII); punycode is fine.
    ("bücher.example", None, (), "non_ascii"),
    ("１２７.０.０.１", None, (), "non_ascii"),
    ("ⓛocalhost", None, (), "non_ascii"),
    ("xn--bcher-kva.example", None, (), None),
    # Not a host at all.
    ("", None, (), "invalid_host"),
    ("a..b", None, (), "invalid_host"),
    ("exa%2ecom", None, (), "invalid_host"),
    ("exa mple.com", None, (), "invalid_host"),
    # Allowlists: names (any address), addresses, CIDR networks; families never mix.
    ("127.0.0.1", None, ("127.0.0.1",), None),
    ("10.9.9.9", None, ("10.0.0.0/8",), None),
    ("169.254.169.254", None, ("10.0.0.0/8",), "blocked_address"),
    ("ci.internal", None, ("ci.internal",), None),
    ("CI.internal.", None, ("ci.internal",), None),
    ("::ffff:127.0.0.1", None, ("127.0.0.1",), "blocked_address"),
    ("0177.0.0.1", None, ("177.0.0.1",), "numeric_host"),
    ("10.1.2.3", None, ("010.0.0.0/8",), "blocked_address"),  # a non-canonical entry admits nothing
    ("10.1.2.3", None, ("10.0.0.0/40",), "blocked_address"),
    # What a name resolves to (the dispatcher's check at connection time).
    ("rebind.example", "127.0.0.1", (), "blocked_address"),
    ("rebind.example", "203.0.113.7", (), None),
    ("public.example", "::ffff:10.0.0.1", (), "blocked_address"),
    ("public.example", "2002:a00:1::", (), "blocked_address"),
    ("ci.corp", "10.1.2.3", ("10.0.0.0/8",), None),
    ("ci.corp", "10.1.2.3", ("ci.corp",), None),
    ("ci.corp", "10.1.2.3", ("other.corp",), "blocked_address"),
    ("app.internal", "203.0.113.7", (), "local_name"),
]


@pytest.fixture
def policy(conn) -> SsrfPolicy:
    """The dispatcher's policy, built from the database's lists exactly as Dispatcher.start does."""
    with acting_as(conn, SERVICE) as cur:
        row = cur.execute("select cfg_private.webhook_blocked_networks()::text[] as networks, "
                          "cfg_private.webhook_blocked_names() as names").fetchone()
    return SsrfPolicy.from_lists(row["networks"], row["names"])


def test_database_and_dispatcher_give_the_same_verdict(conn, policy):
    with acting_as(conn, SERVICE) as cur:
        sql_verdicts = [
            cur.execute("select cfg_private.webhook_refusal(%s, %s::inet, %s::text[]) as r",
                        (host, address, list(allowed))).fetchone()["r"]
            for host, address, allowed, _ in FORMS
        ]
    py_verdicts = [
        policy.refusal(host, ipaddress.ip_address(address) if address else None, allowed)
        for host, address, allowed, _ in FORMS
    ]
    expected = [want for *_, want in FORMS]
    mismatches = [(f[0], f[1], f[2], want, got_sql, got_py)
                  for f, want, got_sql, got_py in zip(FORMS, expected, sql_verdicts, py_verdicts, strict=True)
                  if not want == got_sql == got_py]
    assert mismatches == []


def url_of(host: str, scheme: str = "https") -> str:
    return f"{scheme}://[{host}]/x" if ":" in host else f"{scheme}://{host}/x"


def test_endpoint_urls_refused_by_the_database_are_refused_by_the_dispatcher(conn, world, policy):
    """check_webhook_url (with the org's allowlist) and the dispatcher's pre-connection
    check agree on every URL of the table, https and plain http."""
    entries = {"127.0.0.1", "10.0.0.0/8", "ci.internal"}
    for entry in entries:
        allow_host(conn, world.org_a, entry)
    disagreements = []
    for host, address, _, _ in FORMS:
        if address is not None or " " in host or "%" in host:
            continue  # not a URL the format check lets through
        for scheme in ("https", "http"):
            url = url_of(host, scheme)
            out = attempt(conn, world["admin"], "select cfg_private.check_webhook_url(%s, %s)", (world.org_a, url))
            assert out.ok or out.code == "PT422", (url, out)
            database = None if out.ok else out.message
            dispatcher = policy.url_refusal(url, tuple(sorted(entries)))
            if (database is None) != (dispatcher is None):
                disagreements.append((url, database, dispatcher))
    assert disagreements == []


def test_non_ascii_and_trailing_dot_hosts_are_refused_when_created(conn, world):
    for url in ("https://bücher.example/x", "https://１２７.０.０.１/x"):
        with pytest.raises(CfgError) as error:
            create_endpoint(conn, world["admin"], world.org_a, url)
        assert error.value.code == "PT422" and error.value.detail["reason"] == "non_ascii"
    for url in ("https://localhost./x", "https://metadata.google.internal./x", "https://[::ffff:127.0.0.1]/x",
                "https://[64:ff9b::a9fe:a9fe]/x", "https://[2002:a9fe:a9fe::]/x", "https://0177.0.0.1/x"):
        with pytest.raises(CfgError) as error:
            create_endpoint(conn, world["admin"], world.org_a, url)
        assert error.value.code == "PT422" and error.value.detail["reason"] == "ssrf", url


# =============================================================================
# Item 4: the allowlist check trusts the role the transaction runs as, not the claim
# =============================================================================


def test_allowlist_check_ignores_a_forged_role_claim(conn, world):
    allow_host(conn, world.org_a, "127.0.0.1")
    other = world["other_admin"]
    # A member of org B who sets the role claim to service_role by hand (a client can
    # write request.jwt.claims; it cannot SET ROLE service_role).
    forged = type(other)(role="authenticated", user_id=other.user_id, email=other.email,
                         extra_claims=(*other.extra_claims, ("role", "service_role")))
    assert forged.claims()["role"] == "service_role"
    with acting_as(conn, forged) as cur:
        probe = cur.execute("select cfg_private.webhook_host_allowed(%s, '127.0.0.1') as a, "
                            "cfg_private.webhook_allowlist(%s) as l", (world.org_a, world.org_a)).fetchone()
    assert probe == {"a": False, "l": []}
    with acting_as(conn, world["admin"]) as cur:
        assert cur.execute("select cfg_private.webhook_host_allowed(%s, '127.0.0.1.') as a",
                           (world.org_a,)).fetchone()["a"] is True
    with acting_as(conn, SERVICE) as cur:
        assert cur.execute("select cfg_private.webhook_allowlist(%s) as l", (world.org_a,)).fetchone()["l"] == [
            "127.0.0.1"]


# =============================================================================
# The dispatcher: every connection is checked by the resolver it connects with
# =============================================================================

PUBLIC = "203.0.113.7"  # a public address (TEST-NET-3): never connected to, see below


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def public_host_on_loopback(monkeypatch, receiver):
    """Connections to PUBLIC land on the local receiver: the test stands in for a public
    host without sending anything off this machine. Any other non-loopback address fails."""
    real = aiohappyeyeballs.start_connection

    async def start_connection(addr_infos, **kwargs):
        mapped = []
        for family, type_, proto, canonname, sockaddr in addr_infos:
            if sockaddr[0] == PUBLIC:
                sockaddr = ("127.0.0.1", sockaddr[1])
            assert ipaddress.ip_address(sockaddr[0]).is_loopback, f"test tried to reach {sockaddr}"
            mapped.append((family, type_, proto, canonname, sockaddr))
        return await real(mapped, **kwargs)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", start_connection)


def scripted(*answers):
    """A resolver giving each answer in turn (then the last one again)."""
    calls = []

    async def lookup(host, port, family):
        calls.append(host)
        return list(answers[min(len(calls), len(answers)) - 1])

    lookup.calls = calls
    return lookup


def post_twice(dispatcher: Dispatcher, allowed: tuple[str, ...], url: str) -> list:
    async def run():
        outcomes = []
        try:
            for _ in range(2):
                try:
                    async with dispatcher._session(allowed).post(url, data=b"{}") as resp:
                        outcomes.append(resp.status)
                except aiohttp.ClientError as exc:
                    outcomes.append(exc)
        finally:
            for session in dispatcher.sessions.values():
                await session.close()
        return outcomes

    return asyncio.run(run())


def test_dns_rebinding_second_connection_is_refused(policy, receiver, public_host_on_loopback):
    # The receiver closes each connection, so the second request needs a new one.
    receiver.script("/hook", Reply(200, headers={"Connection": "close"}), Reply(200, headers={"Connection": "close"}))
    lookup = scripted([PUBLIC], ["127.0.0.1"])
    dispatcher = Dispatcher("unused", fast_settings(), lookup=lookup)
    dispatcher.policy = policy
    first, second = post_twice(dispatcher, (), f"http://rebind.example:{receiver.server.server_port}/hook")
    assert first == 200
    assert isinstance(second, aiohttp.ClientConnectorError) and isinstance(second.__cause__, Refused)
    assert "resolves to 127.0.0.1" in str(second.__cause__)
    assert lookup.calls == ["rebind.example", "rebind.example"]  # resolved again, checked again
    assert len(receiver.on("/hook")) == 1  # nothing reached the local receiver the second time


def test_a_connection_one_allowlist_admitted_is_not_reused_for_another(policy, receiver):
    lookup = scripted(["127.0.0.1"])
    dispatcher = Dispatcher("unused", fast_settings(), lookup=lookup)
    dispatcher.policy = policy
    url = f"http://ci.corp:{receiver.server.server_port}/hook"

    async def run():
        try:
            async with dispatcher._session(("ci.corp",)).post(url, data=b"{}") as resp:
                admitted = resp.status  # kept alive in that allowlist's pool
            try:
                async with dispatcher._session(()).post(url, data=b"{}") as resp:
                    return admitted, resp.status
            except aiohttp.ClientError as exc:
                return admitted, exc
        finally:
            for session in dispatcher.sessions.values():
                await session.close()

    admitted, other = asyncio.run(run())
    assert admitted == 200 and isinstance(other.__cause__, Refused)
    assert len(receiver.on("/hook")) == 1


def test_dispatcher_refuses_a_name_resolving_to_loopback(conn, world, receiver, db_url):
    # https to a public-looking name passes the database; at send time the name resolves
    # to 127.0.0.1 (where the receiver listens) and the connection is refused.
    endpoint = create_endpoint(conn, world["admin"], world.org_a,
                               f"https://rebind.example:{receiver.server.server_port}/hook")
    lookup = scripted(["127.0.0.1"])
    with ThreadDispatcher(db_url, fast_settings(retry_schedule="0"), lookup=lookup):
        emit(conn, world.org_a)

        def failed():
            with conn.transaction():
                return conn.execute("select id from cfg_private.webhook_deliveries where endpoint_id = %s "
                                    "and status = 'failed'", (endpoint["id"],)).fetchone()

        delivery = wait_until(failed, what="delivery failed")
    (logged,) = attempts(conn, delivery["id"])
    assert logged["status_code"] is None
    assert logged["error"].startswith("refused: rebind.example resolves to 127.0.0.1"), logged["error"]
    assert lookup.calls and receiver.requests == []
