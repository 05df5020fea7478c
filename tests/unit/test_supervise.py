"""The lean supervisor (redis_persist/supervise.py) gets every setting of the supervisor `serve` built."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from redis_persist import supervise
from redis_persist.supervisor import Supervisor


@pytest.mark.parametrize("supervisor, embedded", [
    (Supervisor(2, "127.0.0.1", 8000, "api-1", "redis://x:6379/0"), (4242, Path("/data/embedded-redis.pid"))),
    (Supervisor(3, "::1", 1, "split", "rediss://y", "warning", no_worker=False, api_only=1), None),
    (Supervisor(4, "0.0.0.0", 65535, "api only", "redis://z", "debug", no_worker=True), None),
])
def test_the_exec_command_carries_every_setting_but_the_redis_url(supervisor, embedded, monkeypatch) -> None:
    argv = supervise.command(supervisor, embedded)
    assert argv[:3] == [sys.executable, "-m", supervise.MODULE]
    assert supervisor.redis_url not in " ".join(argv)  # `ps` shows the argument list to every user
    built = {}
    monkeypatch.setenv("REDIS_URL", supervisor.redis_url)
    monkeypatch.setattr(supervise.logs, "configure", lambda level: None)  # keep pytest's log handlers
    monkeypatch.setattr(supervise.Supervisor, "run", lambda self: built.setdefault("supervisor", self) and 7)
    monkeypatch.setattr(supervise, "stop_started_server", lambda pid, path: built.setdefault("stopped", (pid, path)))
    assert supervise.main(argv[3:]) == 7
    fields = [f.name for f in dataclasses.fields(Supervisor) if not f.name.startswith("_")]
    assert {f: getattr(built["supervisor"], f) for f in fields} == {f: getattr(supervisor, f) for f in fields}
    assert built.get("stopped") == embedded
