"""Benchmarks for secrets in Vault (issue 10). Each prints its figure, a baseline
measured in the same run on the same throwaway cluster, and the ratio.

(a) cfg.save_config of 50 entries of which 10 are secret (every value changed, so each
    secret is a new Vault secret: AES-GCM encryption and a token) against the same
    content with those 10 as plain entries. Target <= 1.3x. Alternating half-second
    rounds; the ratio is the median of the per-round ratios.
(b) cfg.reveal_secret p50 and p99 (Vault decryption, the role checks, the audit row
    and the event). Target p50 < 5 ms. Baseline: cfg.get_config of the same automation.
(c) cfg.rollback to a version with 10 secrets against a rollback to one without.
    Target <= 1.5x.

The embedded Vault (supabase/local/30_vault.sql) encrypts in plpython3u; a hosted
project's Supabase Vault encrypts in C (libsodium). The cluster is the test suite's
fast mode (fsync off). Run: .venv/bin/python bench/bench_secrets.py
"""

from __future__ import annotations

import json
import statistics
import time

import psycopg
from bench_versioning import call, entries_content, paired_rates, user
from common import throwaway_database
from psycopg.rows import dict_row

from sync_service.db import Identity


def head(conn, automation_id) -> int:
    return conn.execute("select coalesce(max(version), 0) as v from cfg.config_versions where automation_id = %s",
                        (automation_id,)).fetchone()["v"]


def saver(conn, who: Identity, automation_id, secrets: int):
    generation = iter(range(1, 10**9))

    def save() -> None:
        body = json.dumps(entries_content(50, next(generation), secrets=secrets))
        call(conn, who, "select cfg.save_config(%s, %s, %s::jsonb)", (automation_id, head(conn, automation_id), body))
    return save


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        editor = user(conn, "editor@example.test")
        org = call(conn, editor, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        secret_a, plain_a, rollback_a, rollback_b = (
            call(conn, editor, "select id from cfg.create_automation(%s, %s, %s)", (org, name, name))[0]["id"]
            for name in ("secrets", "plain", "rollback-secrets", "rollback-plain")
        )

        # (a)
        with_secrets, without, ratio = paired_rates(saver(conn, editor, secret_a, 10), saver(conn, editor, plain_a, 0))
        print(f"(a) save_config, 50 entries (10 secret), all changed: {1000 / with_secrets:.2f} ms "
              f"vs the same with 10 plain entries {1000 / without:.2f} ms -> ratio {ratio:.2f}x (target <= 1.3x)")

        # (b)
        samples, baseline = [], []
        for _ in range(300):
            start = time.perf_counter()
            call(conn, editor, "select cfg.reveal_secret(%s, 'section0', 'key0')", (secret_a,))
            samples.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            call(conn, editor, "select cfg.get_config(%s)", (secret_a,))
            baseline.append((time.perf_counter() - start) * 1000)
        samples.sort()
        p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99) - 1]
        print(f"(b) reveal_secret: p50 {p50:.2f} ms, p99 {p99:.2f} ms vs get_config p50 "
              f"{statistics.median(baseline):.2f} ms -> ratio {p50 / statistics.median(baseline):.2f}x "
              f"(target p50 < 5 ms)")

        # (c) two versions each, then roll back and forth between them.
        for automation_id, secrets in ((rollback_a, 10), (rollback_b, 0)):
            save = saver(conn, editor, automation_id, secrets)
            save()
            save()

        def roller(automation_id):
            def roll() -> None:
                # Back to version 1 (a new version equal to it), then to version 2.
                target = 1 if head(conn, automation_id) % 2 == 0 else 2
                call(conn, editor, "select cfg.rollback(%s, %s)", (automation_id, target))
            return roll
        with_secrets, without, ratio = paired_rates(roller(rollback_a), roller(rollback_b))
        print(f"(c) rollback to a version with 10 secrets (50 entries): {1000 / with_secrets:.2f} ms vs one "
              f"without {1000 / without:.2f} ms -> ratio {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
