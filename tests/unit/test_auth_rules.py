"""The pure auth rules: key format and hashing, the role and route tables, callers and tenant-scoped ids."""

from __future__ import annotations

import pytest

from redis_persist.core.auth import (
    DEFAULT_TENANT,
    OPEN_CALLER,
    Caller,
    Role,
    hash_secret,
    is_open_route,
    make_key,
    parse_key,
    public_id,
    required_role,
    scoped_id,
    secret_matches,
    split_scoped_id,
)
from redis_persist.core.errors import TaskNotFound


def test_a_new_key_parses_back_to_its_id_and_only_its_secret_matches_the_stored_hash() -> None:
    new = make_key()
    key_id, secret = parse_key(new.key)
    assert key_id == new.key_id and new.key == f"rp_{key_id}_{secret}"
    assert secret_matches(new.salt, secret, new.secret_hash)
    assert not secret_matches(new.salt, secret[:-1] + ("A" if secret[-1] != "A" else "B"), new.secret_hash)
    assert secret not in (new.salt, new.secret_hash) and secret not in new.secret_hash


def test_hashes_are_salted_per_key() -> None:
    assert hash_secret("salt-1", "same-secret") != hash_secret("salt-2", "same-secret")
    first, second = make_key(), make_key()
    assert first.salt != second.salt and first.key_id != second.key_id


@pytest.mark.parametrize("key", ["", "rp_", "rp_XYZ_secretsecretsecretsecret", "rp_0123456789abcdef_short",
                                 "xx_0123456789abcdef_" + "a" * 43, "rp_0123456789abcdef_" + "a" * 43 + " "])
def test_malformed_keys_do_not_parse(key: str) -> None:
    assert parse_key(key) is None


def test_roles_are_ordered_and_parse_by_name() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.parse("operator") is Role.OPERATOR and Role.ADMIN.label == "admin"
    with pytest.raises(ValueError, match="viewer, operator, admin"):
        Role.parse("root")


@pytest.mark.parametrize(("method", "path", "role"), [
    ("GET", "/api/tasks", Role.VIEWER),
    ("GET", "/api/tasks/t1/events", Role.VIEWER),
    ("GET", "/ws/tasks/t1", Role.VIEWER),
    ("POST", "/api/tasks/execute", Role.OPERATOR),
    ("POST", "/api/tasks/t1/cancel", Role.OPERATOR),
    ("DELETE", "/api/tasks/t1", Role.OPERATOR),
    ("GET", "/api/keys", Role.ADMIN),
    ("POST", "/api/keys", Role.ADMIN),
    ("DELETE", "/api/keys/abc", Role.ADMIN),
    # Routes this table has never heard of: reads need a viewer, anything else an operator.
    ("GET", "/threads/abc/state", Role.VIEWER),
    ("POST", "/runs/stream", Role.OPERATOR),
    ("PATCH", "/assistants/a1", Role.OPERATOR),
    ("PUT", "/store/items", Role.OPERATOR),
    # LangGraph Server reads the SDK sends as POST are a viewer's; its writes stay an operator's.
    ("POST", "/threads/search", Role.VIEWER),
    ("POST", "/assistants/search", Role.VIEWER),
    ("POST", "/assistants/count", Role.VIEWER),
    ("POST", "/threads/t1/history", Role.VIEWER),
    ("POST", "/threads/t1/state/checkpoint", Role.VIEWER),
    ("GET", "/threads/t1/runs/r1/stream", Role.VIEWER),
    ("POST", "/threads", Role.OPERATOR),
    ("POST", "/threads/t1/state", Role.OPERATOR),
    ("POST", "/threads/t1/runs", Role.OPERATOR),
    ("POST", "/threads/t1/runs/r1/cancel", Role.OPERATOR),
    ("POST", "/threads/search/runs", Role.OPERATOR),
    ("DELETE", "/threads/t1", Role.OPERATOR),
])
def test_route_role_table(method: str, path: str, role: Role) -> None:
    assert required_role(method, path) is role


@pytest.mark.parametrize(("method", "path", "is_open"), [
    ("GET", "/health", True), ("GET", "/metrics", True), ("GET", "/", True), ("GET", "/static/app.js", True),
    ("POST", "/health", False), ("GET", "/healthz", False), ("GET", "/api/tasks", False),
    ("GET", "/api/graphs", False), ("GET", "/threads", False), ("GET", "/static", False),
    ("DELETE", "/", False),
])
def test_only_the_listed_routes_are_open(method: str, path: str, is_open: bool) -> None:
    assert is_open_route(method, path) is is_open


def test_callers_may_what_their_role_allows() -> None:
    viewer = Caller("k1", "acme", Role.VIEWER)
    operator = Caller("k2", "acme", Role.OPERATOR)
    assert viewer.may("read") and not viewer.may("cancel") and not viewer.may("execute")
    assert operator.may("cancel") and operator.may("answer") and not operator.may("manage_keys")
    assert not operator.may("something-new") and OPEN_CALLER.may("manage_keys")


def test_only_admins_see_every_tenant_or_act_in_another() -> None:
    with pytest.raises(ValueError):
        Caller("k1", "acme", Role.OPERATOR, all_tenants=True)
    with pytest.raises(ValueError):
        Caller("k1", "acme", Role.OPERATOR).acting_in("other")
    admin = Caller("k3", "acme", Role.ADMIN, all_tenants=True).acting_in("other")
    assert (admin.tenant, admin.all_tenants) == ("other", False)
    with pytest.raises(ValueError):
        Caller("k1", "bad.tenant", Role.VIEWER)


def test_the_same_task_id_in_two_tenants_is_two_store_ids_and_default_keeps_todays_ids() -> None:
    assert scoped_id(DEFAULT_TENANT, "t1") == "t1"
    assert scoped_id("a", "t1") != scoped_id("b", "t1")
    for tenant in (DEFAULT_TENANT, "a", "tenant_b-2"):
        assert split_scoped_id(scoped_id(tenant, "t-1_x")) == (tenant, "t-1_x")
    assert public_id("a.t1") == "t1"


def test_task_not_found_names_the_id_the_client_sent() -> None:
    assert str(TaskNotFound("acme.t1")) == str(TaskNotFound("t1")) == "Task 't1' not found"
