"""Key management (admins only — the route table in core/auth.py says so) and `GET /api/auth/me`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from redis_persist.api.auth import caller_of, describe
from redis_persist.api.json_io import JSONBodyRoute
from redis_persist.api.schemas import errors
from redis_persist.core.auth import TENANT_PATTERN
from redis_persist.core.errors import InvalidRequest
from redis_persist.engine.access import AccessControl

router = APIRouter(route_class=JSONBodyRoute)


class KeyView(BaseModel):
    id: str
    tenant: str
    role: str
    created_at: str


class CreatedKey(KeyView):
    key: str = Field(description="The secret: shown in this answer only")


class KeyList(BaseModel):
    keys: list[KeyView]


class RevokedKey(BaseModel):
    message: str
    id: str


class Identity(BaseModel):
    auth: bool
    key_id: str | None
    tenant: str
    role: str


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(pattern=TENANT_PATTERN)
    role: str = Field(min_length=1, max_length=20)


def _access(request: Request) -> AccessControl:
    access = request.app.state.services.access
    if access is None:
        raise InvalidRequest("Auth is off (REDIS_PERSIST_AUTH is not 'api_key'): there are no keys to manage")
    return access


# Every key route answers 422 while auth is off: there are no keys to manage. (With auth on, api/auth.py
# declares the 401 / 403 / 429 of every guarded route.)
@router.post("/api/keys", status_code=201, response_model=CreatedKey, operation_id="create_key",
             responses=errors(422, 503))
async def create_key(body: CreateKeyRequest, request: Request) -> dict[str, Any]:
    """A new key; the secret `key` is in this response only."""
    record, key = await _access(request).create_key(body.tenant, body.role)
    return {**record.public(), "key": key}


@router.get("/api/keys", response_model=KeyList, operation_id="list_keys", responses=errors(422, 503))
async def list_keys(request: Request) -> dict[str, Any]:
    return {"keys": [record.public() for record in await _access(request).list_keys()]}


@router.delete("/api/keys/{key_id}", response_model=RevokedKey, operation_id="revoke_key",
               responses=errors(404, 422, 503))
async def revoke_key(key_id: str, request: Request) -> JSONResponse:
    if not await _access(request).revoke_key(key_id):
        return JSONResponse({"detail": f"Key {key_id!r} not found", "error": "key_not_found"}, status_code=404)
    return JSONResponse({"message": "Key revoked", "id": key_id})


@router.get("/api/auth/me", response_model=Identity, operation_id="who_am_i", responses=errors(503))
async def me(request: Request) -> dict[str, Any]:
    """The caller's tenant and role (the dashboard shows them and hides what the role may not do)."""
    return describe(caller_of(request), request.app.state.services.settings.is_auth_enabled)
