"""Shared by the benchmarks: a throwaway migrated cluster and a uniform report line."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync_service import local_stack as local  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh cluster (crash safety off, as in the tests), migrated, no seed. On a machine
    shared with others, CFGCTL_BENCH_PORT and CFGCTL_BENCH_DIR pin its port and parent directory."""
    parent = os.environ.get("CFGCTL_BENCH_DIR", "/var/tmp")
    os.makedirs(parent, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="cfgctl-bench-", dir=parent))
    os.chmod(base, 0o755)
    port = int(os.environ.get("CFGCTL_BENCH_PORT") or _free_port())
    cluster = local.Cluster(data_dir=base / "pg" / "data", port=port, fast=True)
    cluster.init()
    cluster.start()
    try:
        local.provision(cluster.db_url, seed=False)
        yield cluster.db_url
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def median_seconds(fn: Callable[[], object], runs: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(name: str, figure: float, baseline: float, unit: str, target: str) -> None:
    ratio = figure / baseline
    print(f"{name}: {figure:.2f} {unit} vs baseline {baseline:.2f} {unit} -> ratio {ratio:.2f}x (target {target})")
