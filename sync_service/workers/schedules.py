"""The schedules worker: writes the upcoming occurrences of cron schedules ahead of
time, over a horizon (14 days, at most `max_ahead` per schedule), and tops them up
when half of it has passed. Postgres cannot read a cron expression well and we will
not hand-write a parser: croniter iterates the expression, zoneinfo turns each local
time into an instant (functions/93_schedules_timeline.sql stores them; the pg_cron
tick of functions/92_schedules_run.sql applies them when due).

Daylight saving, for a job at 02:30 local time:
- the night 02:30 does not exist (clocks jump 02:00 -> 03:00): it runs once, at the
  instant 02:30 names with the offset before the jump, which the clock shows as 03:30;
- the night 02:30 happens twice (clocks go back 03:00 -> 02:00): it runs once, at the
  first 02:30 (summer time).
croniter iterates wall-clock times without a zone (its own zone handling misplaces
runs around the changes), so each wall time comes once, and zoneinfo resolves it with
fold=0: both rules above follow from that. Two wall times that name one instant (an
hourly job's 02:30 and 03:30 on the spring night) make one occurrence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from croniter import croniter
from psycopg.rows import dict_row
from pydantic_settings import SettingsConfigDict

from .base import Worker, WorkerSettings

log = logging.getLogger("cfgctl.schedules")

FOREVER = datetime.max.replace(tzinfo=UTC)  # 'infinity': the series has ended


class ScheduleSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="CFGCTL_SCHEDULES_", extra="ignore")

    batch_size: int = 50
    poll_interval: float = 30.0
    horizon_days: float = 14.0
    max_ahead: int = 500  # occurrences written ahead per schedule at most


def occurrences(cron: str, zone: str, after: datetime, through: datetime, until: datetime | None = None,
                limit: int = 500) -> tuple[list[datetime], bool]:
    """The instants (UTC) cron names in zone after `after` up to `through` (and `until`),
    at most `limit`; and whether the series ended (until passed). Raises ValueError
    (croniter's, or an unknown zone's) for what cannot be computed."""
    tz = ZoneInfo(zone)
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise ValueError(f"croniter refuses the cron expression {cron!r}")
    # Wall-clock iteration from the local time of `after` (a little earlier: an instant
    # in the repeated hour maps back to the first one; later ones are filtered below).
    start = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=1)
    it = croniter(cron, start)
    found: list[datetime] = []
    while len(found) < limit:
        wall = it.get_next(datetime)
        instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if until is not None and instant > until:
            return found, True
        if instant > through:
            return found, False
        if instant > after and instant not in found:
            found.append(instant)
    return found, False


class ScheduleMaterialiser(Worker):
    name = "schedules"
    channels = ("cfgctl_schedules",)
    settings_class = ScheduleSettings
    settings: ScheduleSettings

    async def claim(self, conn: psycopg.AsyncConnection, lane: str) -> Sequence[dict]:
        # Due for a top-up once half the horizon is used.
        half = timedelta(days=self.settings.horizon_days / 2)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("select * from cfg_private.schedules_to_materialise(now() + %s, %s)",
                              (half, self.settings.batch_size))
            return await cur.fetchall()

    async def handle(self, conn: psycopg.AsyncConnection, batch: Sequence[dict]) -> int:
        through = datetime.now(UTC) + timedelta(days=self.settings.horizon_days)
        failed = 0
        for s in batch:
            room = self.settings.max_ahead
            if s["max_runs"] is not None:
                room = min(room, s["max_runs"] - s["runs"])
            try:
                due, ended = occurrences(s["cron"], s["timezone"], s["start_after"], through, s["until"], max(room, 0))
                error = None
            except (ValueError, KeyError) as exc:
                due, ended, error = [], False, str(exc)
                failed += 1
                self.count("invalid")
            if error is None and (ended or len(due) >= room and s["max_runs"] is not None):
                reach = FOREVER
            else:
                # Not past the last one written: the rest of the horizon is computed next time.
                reach = due[-1] if len(due) >= room and due else through
            await conn.execute("select cfg_private.record_occurrences(%s, %s, %s::timestamptz[], %s, %s)",
                               (s["id"], s["change_hash"], due, reach, error))
            self.count("occurrences", len(due))
        return failed
