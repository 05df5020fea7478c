"""Who may do what: roles, the caller, the route → role table, API key format and hashing, tenant-scoped ids.

Pure: no I/O. The HTTP layer (api/auth.py) and the engine both read the rules from here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum

DEFAULT_TENANT = "default"
TENANT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# A scoped id is "<tenant>.<task_id>"; '.' cannot occur in a task id or tenant, so it is unambiguous.
# The default tenant's ids are the task ids themselves: exactly the keys the service used before tenants.
SCOPE_SEPARATOR = "."
KEY_PREFIX = "rp_"
_KEY_SHAPE = re.compile(r"^rp_([0-9a-f]{16})_([A-Za-z0-9_-]{20,200})$")


class Role(IntEnum):
    """Each role may do everything the ones below it may."""

    VIEWER = 1  # read tasks, events, graphs
    OPERATOR = 2  # + execute, pause, resume, answer, cancel, delete
    ADMIN = 3  # + every tenant, key management

    @classmethod
    def parse(cls, name: str) -> Role:
        """Role from its lower-case name; ValueError names the valid ones."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}; roles: {', '.join(r.label for r in cls)}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


# Actions that are not HTTP routes (WebSocket control messages) and the least role each needs.
ACTION_ROLES: dict[str, Role] = {
    "read": Role.VIEWER,
    "execute": Role.OPERATOR,
    "pause": Role.OPERATOR,
    "resume": Role.OPERATOR,
    "answer": Role.OPERATOR,
    "input": Role.OPERATOR,
    "cancel": Role.OPERATOR,
    "delete": Role.OPERATOR,
    "manage_keys": Role.ADMIN,
}

# Routes anyone may call: the health check, Prometheus counts (no ids, no secrets), the dashboard page
# and its static files (the page must load to ask for a key), and the API schema.
OPEN_ROUTES: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = (
    (frozenset({"GET", "HEAD"}), re.compile(r"^/(health|metrics)$")),
    (frozenset({"GET", "HEAD"}), re.compile(r"^/$")),
    (frozenset({"GET", "HEAD"}), re.compile(r"^/static/[^?]*$")),
    (frozenset({"GET", "HEAD"}), re.compile(r"^/(openapi\.json|docs|docs/oauth2-redirect|redoc)$")),
)

# Routes whose role is not the default one for their method. Everything else: GET/HEAD/OPTIONS need
# a viewer, any other method an operator, so a route added later is covered without being listed.
ROUTE_ROLES: tuple[tuple[frozenset[str] | None, re.Pattern[str], Role], ...] = (
    (None, re.compile(r"^/api/keys(/.*)?$"), Role.ADMIN),
    # LangGraph Server reads sent as POST (the SDK puts their filters in a body): a viewer may call them.
    (frozenset({"POST"}), re.compile(r"^/(threads|assistants)/(search|count)$"), Role.VIEWER),
    (frozenset({"POST"}), re.compile(r"^/threads/[^/]+/(history|state/checkpoint)$"), Role.VIEWER),
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_open_route(method: str, path: str) -> bool:
    """Whether this request needs no key at all."""
    return any(method in methods and pattern.match(path) for methods, pattern in OPEN_ROUTES)


def required_role(method: str, path: str) -> Role:
    """The least role that may call `method path` (WebSocket handshakes count as GET)."""
    for methods, pattern, role in ROUTE_ROLES:
        if (methods is None or method in methods) and pattern.match(path):
            return role
    return Role.VIEWER if method in READ_METHODS else Role.OPERATOR


@dataclass(frozen=True, slots=True)
class Caller:
    """The resolved caller of one request: key id, tenant and role.

    `all_tenants` (admins only) makes listings span every tenant; ids are always looked up in `tenant`.
    """

    key_id: str | None
    tenant: str
    role: Role
    all_tenants: bool = False

    def __post_init__(self) -> None:
        if self.all_tenants and self.role < Role.ADMIN:
            raise ValueError("only an admin may see every tenant")
        if not re.match(TENANT_PATTERN, self.tenant):
            raise ValueError(f"invalid tenant {self.tenant!r}")

    @property
    def is_admin(self) -> bool:
        return self.role >= Role.ADMIN

    def may(self, action: str) -> bool:
        """Whether this caller's role allows `action` (see ACTION_ROLES); unknown actions need an admin."""
        return self.role >= ACTION_ROLES.get(action, Role.ADMIN)

    def acting_in(self, tenant: str) -> Caller:
        """An admin acting on one tenant's tasks (ids resolve there, listings show only it)."""
        if not self.is_admin:
            raise ValueError("only an admin may act in another tenant")
        return dataclasses.replace(self, tenant=tenant, all_tenants=False)


# The caller when auth is off (today's single-tenant service, every right), and the service itself.
OPEN_CALLER = Caller(key_id=None, tenant=DEFAULT_TENANT, role=Role.ADMIN, all_tenants=True)


def scoped_id(tenant: str, task_id: str) -> str:
    """The store's id for a tenant's task, thread or run: the same client id in two tenants is two things."""
    return task_id if tenant == DEFAULT_TENANT else f"{tenant}{SCOPE_SEPARATOR}{task_id}"


def split_scoped_id(stored_id: str) -> tuple[str, str]:
    """(tenant, public task_id) of a store id."""
    tenant, separator, task_id = stored_id.partition(SCOPE_SEPARATOR)
    return (tenant, task_id) if separator else (DEFAULT_TENANT, stored_id)


def public_id(stored_id: str) -> str:
    """The task_id the client sees."""
    return split_scoped_id(stored_id)[1]


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: the secret the user gets once, and what is stored (never the secret)."""

    key_id: str
    key: str
    salt: str
    secret_hash: str


def make_key() -> NewKey:
    """A new random key `rp_<id>_<secret>`; the id finds the stored record, the secret proves possession."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return NewKey(key_id, f"{KEY_PREFIX}{key_id}_{secret}", salt, hash_secret(salt, secret))


def hash_secret(salt: str, secret: str) -> str:
    """sha256(salt + secret); the secret is 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(f"{salt}{secret}".encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY_SHAPE.match(key)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(salt: str, secret: str, stored_hash: str) -> bool:
    """Constant-time check of a presented secret against the stored salted hash."""
    return hmac.compare_digest(hash_secret(salt, secret), stored_hash)
