"""An embedded Redis left running by an earlier run of the same data directory is stopped, not shared."""

from __future__ import annotations

import os

from redis_persist.embedded import EmbeddedRedis
from tests.support import wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_leftover_on_the_same_directory_is_stopped_before_the_next_start(tmp_path) -> None:
    leftover = EmbeddedRedis(tmp_path / "redis")
    leftover.start()
    other = EmbeddedRedis(tmp_path / "other")  # another directory's Redis is none of its business
    other.start()
    again = EmbeddedRedis(tmp_path / "redis")  # a new run that does not know the old process
    try:
        again.start()
        wait_until(lambda: not _alive(leftover.pid), 30, "the leftover Redis stopped")
        assert _alive(other.pid) and _alive(again.pid)
    finally:
        for server in (again, other, leftover):
            server.stop()
