"""Signatures (Standard Webhooks) and the retry schedule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from email.utils import parsedate_to_datetime

from .settings import WebhookSettings

# =============================================================================
# Signatures (Standard Webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body>)
# =============================================================================

_keys: dict[str, bytes] = {}


def secret_key(secret: str) -> bytes:
    key = _keys.get(secret)
    if key is None:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        _keys[secret] = key
    return key


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one `v1,<sig>` per valid secret, space separated."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), to_sign, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def next_delay(settings: WebhookSettings, run_attempt: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after run attempt `run_attempt` failed; None when exhausted."""
    schedule = settings.schedule
    if run_attempt >= len(schedule):
        return None
    delay = schedule[run_attempt] * random.uniform(1 - settings.jitter, 1 + settings.jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.max_retry_after))
    return delay

