"""The lean program the parent of `serve --workers N` becomes once its checks passed (`os.execv`, same pid).

`redis-persist serve` loads typer, pydantic-settings, redis-py and the embedded-Redis helpers to check the
settings, Redis and the graphs; a Python process cannot give that memory back (~33 MB of its ~47 MB
resident), and the parent then only starts and watches its children for the rest of its life. So once the
checks passed it replaces its own image with this module, which imports the standard library, the logging
setup and the supervisor only (~14 MB). The pid stays the same: the embedded Redis stays its child (and still
dies with it), and whatever watches the pid (systemd, a test, a benchmark's `--pid`) sees no change.

Input: the arguments below (the same values `serve` was given), `REDIS_URL` (in the environment, never in
the argument list, which `ps` shows to every user) and, when `serve` started the embedded Redis, its pid
and pid file, to stop it last as `serve` would have.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from redis_persist import logs
from redis_persist.embedded import stop_started_server
from redis_persist.supervisor import Supervisor

MODULE = "redis_persist.supervise"


def command(supervisor: Supervisor, embedded: tuple[int, Path] | None) -> list[str]:
    """The argv that runs `supervisor` (and then stops the embedded Redis `embedded`) in this lean program."""
    argv = [sys.executable, "-m", MODULE, "serve", "--host", supervisor.host, "--port", str(supervisor.port),
            "--workers", str(supervisor.workers), "--service-name", supervisor.service_name,
            "--log-level", supervisor.log_level, "--api-processes", str(supervisor.api_only)]
    if supervisor.no_worker:
        argv.append("--no-worker")
    if embedded is not None:
        argv += ["--embedded-redis-pid", str(embedded[0]), "--embedded-redis-pid-file", str(embedded[1])]
    return argv


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--service-name", required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--api-processes", type=int, default=0)
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--embedded-redis-pid", type=int)
    parser.add_argument("--embedded-redis-pid-file", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the supervisor until SIGTERM/SIGINT or a crash loop, then stop the embedded Redis; its exit code."""
    args = _parser().parse_args(argv)
    logs.configure(args.log_level.upper())
    supervisor = Supervisor(args.workers, args.host, args.port, args.service_name, os.environ["REDIS_URL"],
                            args.log_level, no_worker=args.no_worker, api_only=args.api_processes)
    try:
        return supervisor.run()
    finally:
        if args.embedded_redis_pid is not None:
            stop_started_server(args.embedded_redis_pid, args.embedded_redis_pid_file)


if __name__ == "__main__":
    sys.exit(main())
