"""The `webhooks` worker: signed deliveries of the outbox's events (README, "Webhooks").

settings (CFGCTL_WEBHOOK_*), signing (signatures, the retry schedule), guard (SSRF),
dispatcher (the SQL it calls and the worker itself).
"""

from .dispatcher import Claimed, Dispatcher, Result
from .guard import REASONS, HostGuard, Refused, SsrfPolicy, system_lookup
from .settings import WebhookSettings
from .signing import next_delay, parse_retry_after, secret_key, sign

__all__ = [
    "REASONS", "Claimed", "Dispatcher", "HostGuard", "Refused", "Result", "SsrfPolicy", "WebhookSettings",
    "next_delay", "parse_retry_after", "secret_key", "sign", "system_lookup",
]
