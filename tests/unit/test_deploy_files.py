"""The deployment files agree with each other: compose services, nginx upstreams, Dockerfile, package script."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml

from redis_persist.testing import (
    NGINX_TEMPLATE,
    REPLICA_NAMES,
    render_local_nginx_conf,
    upstream_servers,
)
from tests.support import REPO as REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose-redis-persist.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def nginx_conf() -> str:
    return NGINX_TEMPLATE.read_text()


@pytest.fixture(scope="module")
def dockerfile_cmd() -> list[str]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, "the Dockerfile has exactly one CMD"
    return json.loads(lines[0].removeprefix("CMD "))


def _dockerfile_port(cmd: list[str]) -> int:
    return int(cmd[cmd.index("--port") + 1])


def test_compose_has_redis_nginx_and_three_replicas(compose):
    assert set(compose["services"]) == {"redis", "nginx", *REPLICA_NAMES}
    for name, service in compose["services"].items():
        assert "healthcheck" in service, f"{name} has a healthcheck"


def test_compose_redis_is_redis8_with_aof_on_a_volume(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:8")
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert "--appendonly yes" in command
    volume_name, mount = redis["volumes"][0].split(":")[:2]
    assert mount == "/data"
    assert volume_name in compose["volumes"]


def test_compose_replicas_build_the_image_and_name_themselves(compose, dockerfile_cmd):
    port = _dockerfile_port(dockerfile_cmd)
    for name in REPLICA_NAMES:
        service = compose["services"][name]
        assert service["build"]["context"] == "."
        assert (REPO_ROOT / service["build"]["dockerfile"]) == DOCKERFILE
        env = service["environment"]
        assert env["SERVICE_NAME"] == name
        assert env["REDIS_URL"] == "redis://redis:6379"
        assert str(port) in [str(p) for p in service["expose"]]
        assert f"127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"])
        assert "redis" in service["depends_on"]
        assert "ports" not in service, "replicas are reached through nginx only"
        assert env["REDIS_PERSIST_AUTH"] == "${REDIS_PERSIST_AUTH:-api_key}", "reachable replicas need keys"
        assert env["REDIS_PERSIST_ADMIN_KEY"].startswith("${REDIS_PERSIST_ADMIN_KEY:?")


def test_compose_nginx_mounts_the_config_and_waits_for_replicas(compose, nginx_conf):
    nginx = compose["services"]["nginx"]
    mounts = [volume.split(":") for volume in nginx["volumes"]]
    assert ["./nginx/redis-persist.conf", "/etc/nginx/nginx.conf", "ro"] in mounts
    assert (REPO_ROOT / "nginx" / "redis-persist.conf").is_file()
    # nginx runs under the script that reloads it when a restarted replica comes back on a new address.
    script = nginx["command"][-1]
    assert [f"./nginx/{script.rsplit('/', 1)[-1]}", script, "ro"] in mounts
    assert (REPO_ROOT / "nginx" / script.rsplit("/", 1)[-1]).is_file()
    container_ports = {int(mapping.split(":")[-1]) for mapping in nginx["ports"]}
    for mapping in nginx["ports"]:
        bind = re.match(r"\$\{HTTP_BIND:-([^}]*)\}:", mapping)
        assert bind and bind[1] == "127.0.0.1", f"published on loopback unless HTTP_BIND says otherwise: {mapping}"
    listen_ports = {int(port) for port in re.findall(r"^\s*listen\s+(\d+);", nginx_conf, re.MULTILINE)}
    assert container_ports == listen_ports == {80}
    assert set(nginx["depends_on"]) == set(REPLICA_NAMES)


def test_nginx_upstreams_are_the_compose_replicas_on_the_dockerfile_port(compose, nginx_conf, dockerfile_cmd):
    port = _dockerfile_port(dockerfile_cmd)
    api_services = {name for name in compose["services"] if name.startswith("api-")}
    assert upstream_servers(nginx_conf) == {name: port for name in sorted(api_services)}


def test_nginx_conf_routes_by_task_and_survives_dead_replicas(nginx_conf):
    assert re.search(r"hash\s+\$task_key\s+consistent;", nginx_conf)
    assert "~^/api/tasks/" in nginx_conf and "~^/ws/tasks/" in nginx_conf and "$arg_task_id" in nginx_conf
    next_upstream = re.search(r"proxy_next_upstream\s+([^;]+);", nginx_conf)[1].split()
    assert {"error", "timeout", "http_502", "http_503"} <= set(next_upstream)
    assert re.search(r"proxy_connect_timeout\s+[0-5]s;", nginx_conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx_conf
    assert "proxy_buffering off;" in nginx_conf
    assert re.search(r"proxy_read_timeout\s+\d+h;", nginx_conf)
    assert "add_header X-Upstream $upstream_addr always;" in nginx_conf


def test_dockerfile_runs_the_service_on_all_interfaces(dockerfile_cmd):
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert dockerfile_cmd[:2] == ["redis-persist", "serve"]
    assert dockerfile_cmd[dockerfile_cmd.index("--host") + 1] == "0.0.0.0"
    assert re.search(rf"^EXPOSE {_dockerfile_port(dockerfile_cmd)}$", text, re.MULTILINE)


def test_pyproject_provides_the_redis_persist_command():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "redis-persist" in pyproject["project"]["scripts"]
    for source in _copied_from_context():
        assert (REPO_ROOT / source).exists(), f"the Dockerfile copies {source}, which must exist"


def _copied_from_context() -> set[str]:
    """What the Dockerfile's COPY lines take from the build context (not from another stage)."""
    sources = set()
    for line in re.findall(r"^COPY\s+(.+?)\s+\S+$", DOCKERFILE.read_text(), re.MULTILINE):
        if "--from=" not in line:
            sources.update(source.rstrip("/") for source in line.split())
    return sources


def test_dockerignore_sends_only_what_the_dockerfile_copies():
    lines = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is excluded first"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert included == _copied_from_context()


def test_image_is_slim_non_root_and_checks_its_health(compose):
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert stages == ["python:3.11-slim", "python:3.11-slim"], "a build stage, then the slim base again"
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=build" in final_stage and "pip install" not in final_stage
    users = re.findall(r"^USER\s+(\S+)", final_stage, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*CMD .*127\.0\.0\.1:8000/health", text, re.MULTILINE | re.DOTALL)
    for name in REPLICA_NAMES:
        grace = compose["services"][name]["stop_grace_period"]
        assert int(grace.removesuffix("s")) >= 10, "time for the SIGTERM hand-over"


def test_rendered_local_conf_points_at_loopback_ports(nginx_conf, tmp_path):
    ports = {name: 9000 + i for i, name in enumerate(REPLICA_NAMES)}
    rendered = render_local_nginx_conf(nginx_conf, listen_port=8999, upstream_ports=ports, run_dir=tmp_path)
    assert "listen 127.0.0.1:8999;" in rendered
    for port in ports.values():
        assert f"server 127.0.0.1:{port} " in rendered
    assert "api-1" not in rendered.split("upstream", 1)[1].split("}", 1)[0]
    assert "daemon off;" in rendered
    assert f"pid {tmp_path}/nginx.pid;" in rendered
    assert f"proxy_temp_path {tmp_path}/temp/proxy;" in rendered


def test_rendering_refuses_a_replica_list_that_does_not_match(nginx_conf, tmp_path):
    with pytest.raises(ValueError, match="upstreams"):
        render_local_nginx_conf(nginx_conf, listen_port=8999, upstream_ports={"api-1": 9000}, run_dir=tmp_path)
