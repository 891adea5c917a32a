"""Dispatcher pieces without a database: signatures, the retry schedule, SSRF guard."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from email.utils import formatdate

import pytest
from standardwebhooks.webhooks import Webhook

from sync_service.workers.webhooks import (
    HostGuard,
    Refused,
    SsrfPolicy,
    WebhookSettings,
    next_delay,
    parse_retry_after,
    sign,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA="


def test_signature_matches_the_reference_implementation():
    body = b'{"type": "x"}'
    ts = int(time.time())
    header = sign([SECRET], "evt_1", ts, body)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    assert Webhook(SECRET).verify(body, headers) == {"type": "x"}
    assert header == Webhook(SECRET).sign("evt_1", datetime.fromtimestamp(ts), body.decode())


def test_retry_schedule_jitter_and_retry_after():
    settings = WebhookSettings()
    assert settings.schedule == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    for run_attempt, base in enumerate(settings.schedule[1:], start=1):
        delay = next_delay(settings, run_attempt, None)
        assert base * 0.9 <= delay <= base * 1.1
    assert next_delay(settings, 8, None) is None  # 8 attempts, then failed
    assert next_delay(settings, 1, 120) == 120  # Retry-After longer than the schedule wins
    assert 4.5 <= next_delay(settings, 1, 1) <= 5.5  # …but never shortens it
    assert next_delay(settings, 1, 10**9) == settings.max_retry_after
    assert parse_retry_after("30") == 30
    assert 50 < parse_retry_after(formatdate(time.time() + 60, usegmt=True)) <= 60
    assert parse_retry_after("soon") is None


BLOCKED = ["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "::1/128", "::ffff:0:0/96", "fc00::/7"]
POLICY = SsrfPolicy.from_lists(BLOCKED, ["localhost", ".internal"])


def test_url_refusal():
    def check(url, allow=()):
        return POLICY.url_refusal(url, tuple(allow))

    assert check("https://127.0.0.1/x").startswith("refused")
    assert check("https://localhost./x").startswith("refused")
    assert check("https://[::1]/x").startswith("refused")
    assert check("https://[::ffff:127.0.0.1]/x").startswith("refused")
    assert check("https://b\u00fccher.example/x").startswith("refused")
    assert check("https://example.com/x") is None  # names are checked when connecting
    assert check("http://example.com/x").startswith("refused: plain http")
    assert check("http://127.0.0.1/x").startswith("refused")
    assert check("http://127.0.0.1:8080/x", ["127.0.0.1"]) is None
    assert check("https://10.9.9.9/x", ["10.0.0.0/8"]) is None
    assert check("https://169.254.169.254/latest", ["10.0.0.0/8"]).startswith("refused")


def scripted(*answers):
    """A resolver that gives each answer in turn (then the last again); no network."""
    calls = []

    async def lookup(host, port, family):
        calls.append(host)
        return list(answers[min(len(calls), len(answers)) - 1])

    lookup.calls = calls
    return lookup


def test_guard_checks_every_answer_every_time():
    # DNS rebinding: a public answer first, then loopback. The second resolution is
    # checked again and refused (no verdict or answer is kept between connections).
    lookup = scripted(["203.0.113.7"], ["127.0.0.1"])
    guard = HostGuard(POLICY, (), lookup)
    first = asyncio.run(guard.resolve("rebind.example", 443))
    assert [r["host"] for r in first] == ["203.0.113.7"]
    with pytest.raises(Refused, match="resolves to 127.0.0.1"):
        asyncio.run(guard.resolve("rebind.example", 443))
    assert lookup.calls == ["rebind.example", "rebind.example"]
    # One private address among public ones refuses the whole answer.
    with pytest.raises(Refused):
        asyncio.run(HostGuard(POLICY, (), scripted(["203.0.113.7", "::ffff:10.0.0.1"])).resolve("x.example", 443))
    # Names are checked before any lookup; an allowlisted name may resolve anywhere.
    never = scripted(["203.0.113.7"])
    with pytest.raises(Refused):
        asyncio.run(HostGuard(POLICY, (), never).resolve("metadata.google.internal.", 80))
    assert never.calls == []
    allowed = asyncio.run(HostGuard(POLICY, ("ci.internal",), scripted(["10.1.2.3"])).resolve("ci.internal", 80))
    assert allowed[0]["host"] == "10.1.2.3"
