"""Clone finished tasks in Redis: every key a real task has, under a new id, for the kept-history benchmark.

Running 100,000 tasks through the API takes ~40 min on this machine, so bench_kept.py runs a sample of
real tasks and copies them. A copy must look exactly like a task that ran, to our store and to the saver:

- Every key of the template task is read whatever its family (our `rp:task:{ID}` hash and `rp:events:{ID}`
  stream, the saver's `checkpoint:ID:...` / `checkpoint_write:...` JSON documents, `write_keys_zset:...`,
  `checkpoint_latest:...`), found by the template id in its name, so keys a later version adds (or drops,
  e.g. compaction of a finished task's non-final checkpoints) are copied as they are.
- Every text (key names, hash values, stream entries, JSON documents, zset members, strings) is rewritten
  with the clone's id for the template's, and every UUID in it for a fresh one: checkpoint ids (UUIDv6,
  time-ordered, the step in the clock sequence, as LangGraph makes them) for new UUIDv6 in the same order
  with the same clock sequence, other UUIDs (LangGraph's task ids) for random ones of the same version.
  The JSON documents are written with JSON.SET, so RediSearch indexes the copies like the originals
  (thread_id, checkpoint_id, parent_checkpoint_id tags).
- The shared sorted sets and sets that hold the template id (our indexes: all, per status, per graph, per
  tenant, expiry; anything else) get the clone too; a score equal to the template's creation sequence
  becomes the clone's own (allocated from `rp:seq`), any other score (e.g. an expiry time) is kept, and
  the hash's `seq` field follows. Streams of other keys (the work queue) are not copied: a finished
  task's queue message is acknowledged and trimmed.

DUMP/RESTORE is not used: the ids sit inside the serialized values (RDB encoding, checksummed).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from langgraph.checkpoint.base.id import uuid6

from redis_persist.store import keys

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(UUID)


class Text:
    """A text split at the template id and at UUIDs, so a copy is one join."""

    __slots__ = ("parts",)

    def __init__(self, text: str, splitter: re.Pattern[str]) -> None:
        self.parts = splitter.split(text)  # odd positions: the tokens to replace

    def render(self, mapping: dict[str, str]) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        return "".join(mapping[p] if i % 2 else p for i, p in enumerate(parts))


@dataclass
class Template:
    """One finished task's keys and index memberships, ready to be copied."""

    task_id: str
    seq: str
    tokens: list[str]  # UUIDs in its data, checkpoint ids (v6) first in time order
    keys: list[tuple[str, Text, object, int]] = field(default_factory=list)  # (type, name, value, pttl)
    memberships: list[tuple[str, str, float]] = field(default_factory=list)  # (shared key, type, score)

    def mapping(self, clone_id: str) -> dict[str, str]:
        """Template id -> clone id and each UUID -> a fresh one (checkpoint ids stay in order)."""
        mapping = {self.task_id: clone_id}
        for token in self.tokens:
            if token[14] == "6":  # UUIDv6: a checkpoint id; keep its clock sequence (LangGraph's step)
                mapping[token] = str(uuid6(clock_seq=int(token[19:23], 16) & 0x3FFF))
            else:
                fresh = uuid.uuid4().hex
                mapping[token] = (f"{fresh[:8]}-{fresh[8:12]}-{token[14]}{fresh[13:16]}-{token[19]}{fresh[17:20]}"
                                  f"-{fresh[20:]}")
        return mapping


def _splitter(task_id: str) -> re.Pattern[str]:
    return re.compile(f"({re.escape(task_id)}|{UUID})")


def _id_in(name: str, ids: set[str], pattern: re.Pattern[str]) -> str | None:
    for found in pattern.findall(name):
        if found in ids:
            return found
    return None


def read_templates(client: redis.Redis, template_ids: list[str]) -> list[Template]:
    """Every key of each template task and the shared sorted sets / sets that list it."""
    ids = set(template_ids)
    # Ids of the templates are made by bench_kept.py: letters, digits and dashes; a key holds one.
    id_pattern = re.compile("|".join(sorted((re.escape(i) for i in ids), key=len, reverse=True)))
    per_task: dict[str, list[str]] = {i: [] for i in template_ids}
    shared: list[str] = []
    for name in client.scan_iter(count=5000):
        owner = _id_in(name, ids, id_pattern)
        if owner is not None:
            per_task[owner].append(name)
        else:
            shared.append(name)
    shared_types = dict(zip(shared, _pipelined(client, (("TYPE", k) for k in shared)), strict=True))
    shared_sets = [k for k in shared if shared_types[k] in ("zset", "set")]

    templates = []
    for task_id in template_ids:
        names = per_task[task_id]
        types = _pipelined(client, (("TYPE", k) for k in names))
        ttls = _pipelined(client, (("PTTL", k) for k in names))
        pipe = client.pipeline(transaction=False)
        for name, kind in zip(names, types, strict=True):
            _read(pipe, name, kind)
        values = pipe.execute()
        member_scores = _pipelined(client, ((("ZSCORE", k, task_id) if shared_types[k] == "zset"
                                             else ("SISMEMBER", k, task_id)) for k in shared_sets))
        seq = client.hget(keys.task(task_id), "seq")
        if seq is None:
            raise RuntimeError(f"template {task_id} has no task record")
        split = _splitter(task_id)
        found_tokens: set[str] = set()
        template = Template(task_id=task_id, seq=seq, tokens=[])

        def text(value: str) -> Text:
            found_tokens.update(UUID_RE.findall(value))
            return Text(value, split)

        for name, kind, value, ttl in zip(names, types, values, ttls, strict=True):
            template.keys.append((kind, text(name), _texts(kind, value, text), ttl))
        for key, score in zip(shared_sets, member_scores, strict=True):
            kind = shared_types[key]
            if (score is not None) if kind == "zset" else bool(score):
                template.memberships.append((key, kind, float(score) if kind == "zset" else 0.0))
        template.tokens = sorted(found_tokens, key=lambda t: (t[14] != "6", t))
        templates.append(template)
    return templates


def _read(pipe: redis.client.Pipeline, name: str, kind: str) -> None:
    if kind == "string":
        pipe.get(name)
    elif kind == "hash":
        pipe.hgetall(name)
    elif kind == "list":
        pipe.lrange(name, 0, -1)
    elif kind == "set":
        pipe.smembers(name)
    elif kind == "zset":
        pipe.zrange(name, 0, -1, withscores=True)
    elif kind == "stream":
        pipe.xrange(name)
    elif kind == "ReJSON-RL":
        pipe.execute_command("JSON.GET", name)
    else:
        raise RuntimeError(f"key {name!r} of type {kind!r}: the cloner does not know how to copy it")


def _texts(kind: str, value, text):  # type: ignore[no-untyped-def]
    if kind in ("string", "ReJSON-RL"):
        return text(value)
    if kind == "hash":
        return [(text(k), text(v)) for k, v in value.items()]
    if kind in ("list", "set"):
        return [text(v) for v in value]
    if kind == "zset":
        return [(text(m), s) for m, s in value]
    if kind == "stream":
        return [(entry_id, [(text(k), text(v)) for k, v in fields.items()]) for entry_id, fields in value]
    raise AssertionError(kind)


def _pipelined(client: redis.Redis, commands, batch: int = 2000) -> list:  # type: ignore[no-untyped-def]
    out: list = []
    pipe = client.pipeline(transaction=False)
    for n, command in enumerate(commands, 1):
        pipe.execute_command(*command)
        if n % batch == 0:
            out += pipe.execute()
    out += pipe.execute()
    return out


def _write_clone(pipe: redis.client.Pipeline, template: Template, clone_id: str, seq: int) -> None:
    mapping = template.mapping(clone_id)
    for kind, name_text, value, ttl in template.keys:
        name = name_text.render(mapping)
        if kind == "ReJSON-RL":
            pipe.execute_command("JSON.SET", name, "$", value.render(mapping))
        elif kind == "string":
            pipe.execute_command("SET", name, value.render(mapping))
        elif kind == "hash":
            flat = []
            for k, v in value:
                key_name = k.render(mapping)
                flat += [key_name, str(seq) if key_name == "seq" else v.render(mapping)]
            pipe.execute_command("HSET", name, *flat)
        elif kind == "list":
            pipe.execute_command("RPUSH", name, *(v.render(mapping) for v in value))
        elif kind == "set":
            pipe.execute_command("SADD", name, *(v.render(mapping) for v in value))
        elif kind == "zset":
            flat = []
            for member, score in value:
                flat += [repr(score), member.render(mapping)]
            pipe.execute_command("ZADD", name, *flat)
        elif kind == "stream":
            for entry_id, fields in value:
                flat = [x for k, v in fields for x in (k.render(mapping), v.render(mapping))]
                pipe.execute_command("XADD", name, entry_id, *flat)
        if ttl > 0:
            pipe.execute_command("PEXPIRE", name, ttl)


def clone_ids(prefix: str, count: int) -> Iterator[str]:
    return (f"{prefix}-{n:06d}" for n in range(count))


def clone_tasks(client: redis.Redis, templates: list[Template], count: int, prefix: str,
                batch: int = 100, progress_every: float = 10.0) -> list[str]:
    """Write `count` clones (templates in turn), `batch` clones per round trip; returns their ids.

    Clones get creation sequences below nothing: a block of `rp:seq` taken now, so they list as older
    than tasks created afterwards, like history.
    """
    first_seq = client.incrby(keys.SEQUENCE, count) - count + 1
    ids = list(clone_ids(prefix, count))
    pipe = client.pipeline(transaction=False)
    shared: dict[tuple[str, str], list] = {}
    started = last_report = time.monotonic()
    # Redis (JSON.SET + RediSearch indexing, ~0.1 ms per document) and building the commands here take
    # about as long as each other: one batch is sent by a second thread while the next is built.
    sending: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as sender:
        for n, clone_id in enumerate(ids):
            template = templates[n % len(templates)]
            seq = first_seq + n
            _write_clone(pipe, template, clone_id, seq)
            for key, kind, score in template.memberships:
                entry = (str(seq) if kind == "zset" and score == float(template.seq) else repr(score), clone_id)
                shared.setdefault((key, kind), []).append(entry)
            if (n + 1) % batch == 0 or n + 1 == count:
                for (key, kind), entries in shared.items():
                    if kind == "zset":
                        pipe.execute_command("ZADD", key, *(x for entry in entries for x in entry))
                    else:
                        pipe.execute_command("SADD", key, *(member for _, member in entries))
                shared.clear()
                if sending is not None:
                    sending.result()
                sending = sender.submit(pipe.execute)
                pipe = client.pipeline(transaction=False)
                if time.monotonic() - last_report > progress_every:
                    last_report = time.monotonic()
                    rate = (n + 1) / (last_report - started)
                    print(f"  cloned {n + 1:,} of {count:,} ({rate:,.0f}/s)", flush=True)
        if sending is not None:
            sending.result()
    return ids
