"""`redis-persist serve` (API + worker) and `redis-persist worker` (worker only)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import json
import os
import signal
import subprocess
import sys
from contextlib import asynccontextmanager, contextmanager
from collections.abc import Iterator

import redis
import typer
from pydantic import ValidationError

from redis_persist import logs
from redis_persist.core.errors import GraphLoadError
from redis_persist.embedded import EmbeddedRedis, EmbeddedRedisError, running_embedded_url
from redis_persist.heap import tune_gc_after_startup
from redis_persist.settings import Settings
from redis_persist.store.connections import RedisConnections
from redis_persist.supervisor import Supervisor, default_workers, reuse_port_socket

cli = typer.Typer(help="Run long-running LangGraph graphs as durable background tasks on Redis.",
                  no_args_is_help=True, add_completion=False)
log = logging.getLogger("redis_persist")
REQUIRED_MODULES = {"search", "ReJSON"}


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"redis-persist: {message}", err=True)
    raise typer.Exit(code)


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in error.errors()
        )
        _fail(f"invalid settings: {problems}", 2)
        raise  # unreachable, for type checkers


def _check_redis(settings: Settings) -> None:
    connections = RedisConnections.from_url(settings.redis_url, settings.redis_retries,
                                            settings.redis_health_check_seconds)
    url = connections.target.display
    try:
        client = connections.sync_client(socket_timeout=5, socket_connect_timeout=3)
        try:
            client.ping()
            modules = {m["name"] for m in client.module_list()}
            replicas = int(client.info("replication").get("connected_slaves", 0))
        finally:
            client.close()
            connections.close_sync()
    except (redis.RedisError, ValueError, TypeError, OSError) as error:
        _fail(f"cannot reach Redis at {url}: {error}")
    missing = REQUIRED_MODULES - modules
    if missing:
        _fail(f"Redis at {url} lacks the modules {sorted(missing)} that langgraph-checkpoint-redis needs "
              "(use Redis 8, or unset REDIS_URL for the embedded server)")
    if replicas < settings.min_replicas:
        # Not fatal: a replica may connect later; until then every checkpoint waits, then fails its boundary.
        log.warning("fewer replicas than REDIS_PERSIST_MIN_REPLICAS",
                    extra={"connected_replicas": replicas, "min_replicas": settings.min_replicas})


@contextmanager
def _redis_for(settings: Settings) -> Iterator[tuple[Settings, EmbeddedRedis | None]]:
    """Yield settings with a reachable Redis: REDIS_URL, or an embedded server started here (also yielded)."""
    if settings.redis_url:
        _check_redis(settings)
        yield settings, None
        return
    if settings.min_replicas:
        _fail("REDIS_PERSIST_MIN_REPLICAS needs a replicated Redis in REDIS_URL: the embedded one has no replicas", 2)
    embedded = EmbeddedRedis(settings.data_dir)
    try:
        embedded.start()
    except EmbeddedRedisError as error:
        _fail(str(error))
    log.info("using embedded redis", extra={"url": embedded.url, "data_dir": str(embedded.data_dir)})
    try:
        yield settings.model_copy(update={"redis_url": embedded.url}), embedded
    finally:
        embedded.stop()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_auth_for(host: str, settings: Settings) -> None:
    """Refuse to serve an open API beyond this machine unless the operator said so explicitly."""
    if settings.is_auth_enabled:
        if settings.admin_key is None:
            log.info("auth on; no REDIS_PERSIST_ADMIN_KEY set: only keys made with `redis-persist keys create` work")
        return
    if settings.auth is None and not _is_loopback(host):
        _fail(f"refusing to serve {host} without authentication: anyone who reaches the port could read, "
              "cancel and delete every task. Set REDIS_PERSIST_AUTH=api_key (with REDIS_PERSIST_ADMIN_KEY), "
              "or REDIS_PERSIST_AUTH=off to run open on purpose.", 2)
    log.warning("auth is off: every route is open to anyone who reaches the port",
                extra={"host": host, "auth": settings.auth or "unset"})


def _check_graphs_apart() -> None:
    """_check_graphs in a short-lived child: the supervisor of `serve --workers N` never runs a graph, and
    LangGraph plus the user's graph modules would stay in its memory for good (~37 MiB of its ~87)."""
    checked = subprocess.run([sys.executable, "-m", "redis_persist", "check-graphs"], check=False)
    if checked.returncode != 0:
        raise typer.Exit(checked.returncode)  # the child said why, on stderr


def _become_lean_supervisor(supervisor: Supervisor, embedded: EmbeddedRedis | None) -> None:
    """Replace this process's image with redis_persist.supervise running `supervisor` (why: see there).

    Returns only if the exec failed (then logged): the caller runs the supervisor here instead.
    """
    from redis_persist.supervise import command

    handed_over = (embedded.pid, embedded.pid_path) if embedded is not None and embedded.pid else None
    argv = command(supervisor, handed_over)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # the new image starts with empty buffers
    try:
        os.execve(argv[0], argv, {**os.environ, "REDIS_URL": supervisor.redis_url})
    except OSError as error:
        log.warning("cannot start the lean supervisor; supervising from this process",
                    extra={"error": str(error), "replica": supervisor.service_name})


@cli.command("check-graphs", hidden=True)
def check_graphs() -> None:
    """Load every graph of the settings once and exit (2 with the reason if one cannot be loaded)."""
    _check_graphs(_load_settings())


def _check_graphs(settings: Settings) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from redis_persist.engine.graphs import GraphRegistry

    try:
        GraphRegistry.load(settings.graphs, InMemorySaver(), settings.node_timeout_seconds)
    except GraphLoadError as error:
        _fail(f"cannot load graphs: {error}", 2)


def _build_app(settings: Settings, run_worker: bool):  # type: ignore[no-untyped-def]
    from redis_persist.app import create_app

    try:
        return create_app(settings, run_worker=run_worker, tune_gc=True)
    except GraphLoadError as error:
        _fail(f"cannot load graphs: {error}", 2)


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Serve the API only; run no tasks here."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    workers: int = typer.Option(0, min=0, max=256, help="Processes for this replica (API + worker in each), "
                                "named SERVICE_NAME-1..N; 0: one per core. 1: a single process named SERVICE_NAME."),
    api_processes: int = typer.Option(0, min=0, max=255, help="With --workers N: this many of the N processes serve "
                                      "the API only, the others run tasks only (no HTTP). 0: each does both."),
    reuse_port: bool = typer.Option(False, "--reuse-port", hidden=True, help="Listen with SO_REUSEPORT (children)."),
) -> None:
    """Start the API (and, unless --no-worker, a worker) on HOST:PORT."""
    logs.configure(log_level.upper())
    processes = workers or default_workers()
    if api_processes and (no_worker or api_processes >= processes):
        _fail(f"--api-processes {api_processes} needs --workers above it (--workers {processes}"
              f"{', and --no-worker runs no tasks' if no_worker else ''}): at least one process must run tasks", 2)
    settings = _load_settings()
    _check_auth_for(host, settings)
    with _redis_for(settings) as (ready, embedded):
        if processes > 1:
            _check_graphs_apart()  # refuse bad graphs once, here, rather than N children in a restart loop
            supervisor = Supervisor(processes, host, port, ready.service_name, str(ready.redis_url), log_level,
                                    no_worker=no_worker, api_only=api_processes)
            _become_lean_supervisor(supervisor, embedded)
            raise typer.Exit(supervisor.run())  # only if the exec failed: the same supervisor, in this image
        app = _build_app(ready, run_worker=not no_worker)
        import uvicorn  # here: the supervisor of `serve --workers N` serves no HTTP itself

        from redis_persist.api.poll_protocol import polling_protocol

        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, log_level=log_level,
                                               http=polling_protocol(app.state.poll_answer), ws_ping_interval=20,
                                               timeout_keep_alive=ready.http_keep_alive_seconds))
        server.run(sockets=[reuse_port_socket(host, port, listen=True)] if reuse_port else None)
        if not server.started:
            raise typer.Exit(3)  # as uvicorn.run: could not start (e.g. the port is taken)


@cli.command()
def worker(log_level: str = typer.Option("info", help="debug, info, warning or error.")) -> None:
    """Run a worker only: claims and runs tasks, serves no HTTP."""
    logs.configure(log_level.upper())
    settings = _load_settings()
    with _redis_for(settings) as (ready, _embedded):
        from redis_persist.services import Services

        try:
            services = Services.build(ready, run_worker=True)
        except GraphLoadError as error:
            _fail(f"cannot load graphs: {error}", 2)
        asyncio.run(_run_until_signalled(services))


async def _run_until_signalled(services) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await services.start()
    collector = tune_gc_after_startup()
    log.info("worker started", extra={"replica": services.settings.service_name})
    try:
        await stop.wait()
    finally:
        await services.stop()
        collector.stop()


keys_cli = typer.Typer(help="Manage API keys (stored in Redis as salted hashes; the key is shown once).",
                       no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@asynccontextmanager
async def _decoding_client(settings: Settings):  # type: ignore[no-untyped-def]
    """A small decoding client for REDIS_URL, built as `serve` builds its own (TLS, ACL users, Sentinel)."""
    connections = RedisConnections.from_url(settings.redis_url or "", settings.redis_retries)
    client = connections.async_client(max_connections=10, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
        await client.connection_pool.disconnect()
        await connections.aclose()


async def _with_access(settings: Settings, action):  # type: ignore[no-untyped-def]
    from redis_persist.engine.access import AccessControl
    from redis_persist.store.apikeys import ApiKeyStore

    async with _decoding_client(settings) as client:
        return await action(AccessControl(ApiKeyStore(client), admin_key=None))


@contextmanager
def _key_store_redis(settings: Settings) -> Iterator[Settings]:
    """REDIS_URL; else the embedded Redis of the data dir: the running one if `serve` has it up, else started here."""
    url = None if settings.redis_url else running_embedded_url(settings.data_dir)
    if url:
        yield settings.model_copy(update={"redis_url": url})
        return
    with _redis_for(settings) as (ready, _embedded):
        yield ready


@cli.command("compact-finished")
def compact_finished() -> None:
    """Queue every finished task that still has its checkpoints for compaction (tasks that finished while
    REDIS_PERSIST_FINISHED_COMPACTION was off); the replicas' sweeps compact them. Prints {"queued": N}."""
    from redis_persist.store.tasks import TaskStore

    logs.configure("WARNING")
    settings = _load_settings()
    if not settings.finished_compaction:
        _fail("REDIS_PERSIST_FINISHED_COMPACTION is off: no replica would compact the queued tasks", 2)

    async def queue(ready: Settings) -> int:
        async with _decoding_client(ready) as client:
            return await TaskStore(client, ready.events_max_per_task).queue_uncompacted()

    with _key_store_redis(settings) as ready:
        queued = asyncio.run(queue(ready))
    typer.echo(json.dumps({"queued": queued}))


@keys_cli.command("create")
def keys_create(
    tenant: str = typer.Option(..., help="Tenant the key's tasks belong to."),
    role: str = typer.Option(..., help="viewer, operator or admin."),
) -> None:
    """Create a key and print it (JSON); the key is not stored and cannot be shown again."""
    from redis_persist.core.errors import InvalidRequest

    logs.configure("WARNING")
    with _key_store_redis(_load_settings()) as ready:
        try:
            record, key = asyncio.run(_with_access(ready, lambda access: access.create_key(tenant, role)))
        except InvalidRequest as error:
            _fail(str(error), 2)
    typer.echo(json.dumps({**record.public(), "key": key}))


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (id, tenant, role, created_at), one JSON object per line; never the secrets."""
    logs.configure("WARNING")
    with _key_store_redis(_load_settings()) as ready:
        records = asyncio.run(_with_access(ready, lambda access: access.list_keys()))
    for record in records:
        typer.echo(json.dumps(record.public()))


@keys_cli.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (from `keys list`).")) -> None:
    """Revoke a key; every replica refuses it within seconds."""
    logs.configure("WARNING")
    with _key_store_redis(_load_settings()) as ready:
        existed = asyncio.run(_with_access(ready, lambda access: access.revoke_key(key_id)))
    if not existed:
        _fail(f"no key {key_id!r}")
    typer.echo(f"revoked {key_id}")


def main() -> None:
    cli()
