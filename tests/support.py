"""Test helpers. The reusable harness lives in redis_persist.testing (also used by the demo and bench/);
these names stay importable from here so tests keep one import line."""

from __future__ import annotations

from pathlib import Path

from redis_persist.testing import ServiceProcess, free_port, node_runs, read_events, wait_until

__all__ = ["free_port", "wait_until", "ServiceProcess", "read_events", "node_runs", "TEST_GRAPHS_DIR", "REPO"]

REPO = Path(__file__).resolve().parent.parent
TEST_GRAPHS_DIR = REPO / "tests" / "graphs"
