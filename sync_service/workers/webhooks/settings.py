"""The webhook worker's settings: CFGCTL_WEBHOOK_* environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from ..base import WorkerSettings


class WebhookSettings(WorkerSettings):
    """CFGCTL_WEBHOOK_*; tests shorten the times."""

    model_config = SettingsConfigDict(env_prefix="CFGCTL_WEBHOOK_", extra="ignore")

    # Chosen by bench/bench_webhooks.py (README, Webhooks): 100 drains fastest on 2 cores.
    batch_size: int = 100
    lanes: int = 4
    http_concurrency: int = 256
    timeout: float = 15.0
    lease: float = 60.0
    poll_interval: float = 1.0
    # Delay before each attempt of a run: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    retry_schedule: str = "0,5,300,1800,7200,18000,36000,36000"
    jitter: float = 0.1
    max_retry_after: float = 86400.0
    disable_after: float = 5 * 86400.0
    # Hosts, IPs or CIDRs every org may reach although private (the operator's allowlist).
    allow_hosts: str = ""

    @property
    def schedule(self) -> list[float]:
        return [float(x) for x in self.retry_schedule.split(",") if x.strip()]

