"""Failover on this machine, no Docker: Redis, replicas api-1..3 and nginx; SIGKILL api-1 mid-run, every task finishes.

    .venv/bin/python scripts/failover_demo.py [--tasks 9] [--step-seconds 1] [--lease-ttl 3] [--keep]

Prints one row per task (final status, the replica that finished it, attempts, runs of each node) and exits
non-zero if a task did not complete, nobody took api-1's tasks over, or a completed node ran again.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from redis_persist.embedded import EmbeddedRedis
from redis_persist.testing import LocalCluster, run_failover_scenario

log = logging.getLogger("failover_demo")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=9, help="data_pipeline tasks to start (default 9)")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="seconds each node takes (default 1)")
    parser.add_argument("--lease-ttl", type=float, default=3.0, help="replicas' lease TTL in seconds (default 3)")
    parser.add_argument("--victim", default="api-1", help="replica to SIGKILL (default api-1)")
    parser.add_argument("--redis-url", help="use this module-enabled Redis instead of starting an embedded one")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, nginx.conf) afterwards")
    return parser.parse_args()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    args = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    run_dir = Path(tempfile.mkdtemp(prefix="redis-persist-failover-"))
    log.info("run folder (Redis data, rendered nginx.conf, nginx logs): %s", run_dir)
    redis = cluster = report = None
    keep = args.keep
    try:
        redis_url = args.redis_url
        if not redis_url:
            redis = EmbeddedRedis(run_dir / "redis")
            redis.start()
            redis_url = redis.url
        cluster = LocalCluster(redis_url, run_dir, lease_ttl_seconds=args.lease_ttl)
        cluster.start()
        report = run_failover_scenario(
            cluster, victim=args.victim, task_count=args.tasks, step_seconds=args.step_seconds
        )
    except (KeyboardInterrupt, SystemExit) as stop:
        log.warning("interrupted; stopping everything")
        return 130 if isinstance(stop, KeyboardInterrupt) else stop.code
    except Exception:
        keep = True
        log.exception("the demo failed")
        return 2
    finally:
        # Nothing may interrupt the clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster is not None:
            cluster.stop()
        if redis is not None:
            redis.stop()
        if report is not None and report.problems:
            keep = True
        replica_logs = [r.log_path for r in cluster.replicas.values()] if cluster else []
        if keep:
            log.info("kept nginx files in %s; replica logs: %s", run_dir, ", ".join(map(str, replica_logs)))
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            for path in replica_logs:
                path.unlink(missing_ok=True)

    print(report.table())
    print()
    taken_over = report.taken_over
    print(
        f"{args.victim} was SIGKILLed with {len(taken_over)} task(s) in flight; "
        f"{sum(o.owner not in (None, args.victim) for o in taken_over)} finished on another replica "
        f"(lease TTL {report.lease_ttl_seconds:g} s)."
    )
    if report.problems:
        print("\nPROBLEMS:")
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    print("OK: every task completed, and no completed node ran twice.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
