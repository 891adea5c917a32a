"""Dispatcher pieces without a database: signatures, the retry schedule, SSRF guard."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from email.utils import formatdate

from standardwebhooks.webhooks import Webhook

from sync_service.dispatcher import HostGuard, WebhookSettings, next_delay, parse_retry_after, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA="
BLOCKED = ["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "::1/128", "fc00::/7"]


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


def test_host_guard():
    guard = HostGuard(BLOCKED, [], ttl=30)

    def check(url, allow=()):
        return asyncio.run(guard.check(url, list(allow)))

    assert check("https://127.0.0.1/x").startswith("refused")
    assert check("https://localhost/x").startswith("refused")  # a name resolving to loopback
    assert check("https://[::1]/x").startswith("refused")
    assert check("http://127.0.0.1/x").startswith("refused: plain http")
    assert check("http://127.0.0.1:8080/x", ["127.0.0.1"]) is None
    assert check("https://10.9.9.9/x", ["10.0.0.0/8"]) is None
    assert check("https://169.254.169.254/latest", ["10.0.0.0/8"]).startswith("refused")
    # The operator's send-time allowlist (CFGCTL_WEBHOOK_ALLOW_HOSTS) applies to every org.
    assert asyncio.run(HostGuard(BLOCKED, ["127.0.0.1"], ttl=30).check("http://127.0.0.1/x", [])) is None
