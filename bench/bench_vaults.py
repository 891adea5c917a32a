"""Benchmark for the external-vault sync (issue 10, item 4): how fast the `vaults` worker
checks bindings against AWS Secrets Manager, against the same checks made directly with
boto3, in the same run, on the same moto_server.

(d) 200 reference bindings, all due and in step: the worker claims them, asks for each
    secret's current version (DescribeSecret) and records that nothing changed. Baseline:
    the 200 DescribeSecret calls alone, on as many threads as the worker has (20). The
    ratio is what cfgctl's claims, credential reads and reports add. Target <= 1.5x.
    Also printed: the first sync of the same bindings (each value read and recorded as a
    version of kind sync), which is what binding 200 secrets at once costs.

moto_server answers from memory on this machine, so the external calls are far cheaper
than AWS's (tens of ms each): the ratio is the worst case for cfgctl's share.
Run: .venv/bin/python bench/bench_vaults.py
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import psycopg
from bench_versioning import call, user
from common import _free_port, report, throwaway_database
from psycopg.rows import dict_row

from sync_service.workers.vaults import VaultSync, VaultSyncSettings

BINDINGS = 200
KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "moto-accepts-any-key"}


def start_moto() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


async def run_until(db_url: str, settings: VaultSyncSettings, done) -> float:
    """Seconds the worker takes until done() is true."""
    worker = VaultSync(db_url, settings, instance="bench")
    start = time.perf_counter()
    task = asyncio.create_task(worker.run())
    while not await asyncio.to_thread(done):
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    worker.stop()
    await task
    return elapsed


def main() -> None:
    moto, moto_url = start_moto()
    try:
        sm = boto3.client("secretsmanager", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id=KEYS["access_key_id"], aws_secret_access_key=KEYS["secret_access_key"])
        names = [f"bench/secret-{i}" for i in range(BINDINGS)]
        for name in names:
            sm.create_secret(Name=name, SecretString=f"value-{name}")
        with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            admin = user(conn, "admin@example.test")
            org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
            automation = call(conn, admin, "select id from cfg.create_automation(%s, 'App', 'app')", (org,))[0]["id"]
            content = {"sections": {"s": {"entries": {
                f"k{i}": {"value": f"local-{i}", "secret": True} for i in range(BINDINGS)}}}}
            call(conn, admin, "select cfg.save_config(%s, 0, %s::jsonb)", (automation, json.dumps(content)))
            backend = call(conn, admin, "select id from cfg.add_vault_backend(%s, 'aws', 'aws_sm', %s, %s)",
                           (org, json.dumps({"region": "us-east-1", "endpoint_url": moto_url}),
                            json.dumps(KEYS)))[0]["id"]
            for i, name in enumerate(names):
                call(conn, admin, "select cfg.bind_secret(%s, 's', %s, %s, %s)",
                     (automation, f"k{i}", backend, f"aws-sm://{name}"))
            settings = VaultSyncSettings(poll_interval=0.05, check_every=3600.0)  # two lanes of 20

            def synced_since(t0):
                return lambda: conn.execute(
                    "select count(*) = %s as done from cfg.secret_bindings where last_success_at >= %s",
                    (BINDINGS, t0)).fetchone()["done"]

            t0 = conn.execute("select now() as t").fetchone()["t"]
            first = asyncio.run(run_until(url, settings, synced_since(t0)))

            def describe_all() -> float:
                start = time.perf_counter()
                with ThreadPoolExecutor(settings.batch_size) as pool:
                    list(pool.map(lambda n: sm.describe_secret(SecretId=n), names))
                return time.perf_counter() - start

            figures, baselines = [], []
            for _ in range(3):
                baselines.append(describe_all())
                conn.execute("update cfg.secret_bindings set next_check_at = now()")
                t0 = conn.execute("select now() as t").fetchone()["t"]
                figures.append(asyncio.run(run_until(url, settings, synced_since(t0))))
            figure, baseline = sorted(figures)[1], sorted(baselines)[1]
            versions = conn.execute("select count(*) as n from cfg.config_versions where kind = 'sync'").fetchone()["n"]
            print(f"first sync of {BINDINGS} reference bindings (read, token, {versions} sync version(s)): "
                  f"{first:.2f} s = {BINDINGS / first:.0f} bindings/s")
            report(f"(d) {BINDINGS} bindings checked, in step", figure * 1000, baseline * 1000, "ms", "<= 1.5x")
            print(f"    = {BINDINGS / figure:.0f} checks/s vs {BINDINGS / baseline:.0f} DescribeSecret/s")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
