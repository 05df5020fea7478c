"""Domain errors, raised deep and mapped to HTTP in one place (api/errors.py)."""

from __future__ import annotations

from redis_persist.core.auth import public_id


class RedisPersistError(Exception):
    """Base of every domain error."""


class TaskNotFound(RedisPersistError):
    def __init__(self, task_id: str) -> None:
        # Name the id the client sent: another tenant's task must look exactly like a missing one.
        super().__init__(f"Task {public_id(task_id)!r} not found")
        self.task_id = task_id


class Unauthorized(RedisPersistError):
    """No API key, or one that is unknown, revoked or wrong."""


class Forbidden(RedisPersistError):
    """The caller's role may not do this."""


class IllegalTransition(RedisPersistError):
    def __init__(self, current: str, target: str, action: str | None = None) -> None:
        what = action or f"move to {target!r}"
        super().__init__(f"Cannot {what}: task is {current!r}")
        self.current = current
        self.target = target


class TaskConflict(RedisPersistError):
    """The request conflicts with the task as it is (e.g. same task_id, different body)."""


class GraphNotFound(RedisPersistError):
    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"Graph {name!r} not found; available graphs: {', '.join(sorted(available))}")
        self.name = name
        self.available = sorted(available)


class StateTooLarge(RedisPersistError):
    """User JSON (initial_state, resume input) over the size limit."""

    def __init__(self, size: int, limit: int, field: str = "initial_state") -> None:
        super().__init__(f"{field} is {size} bytes; the limit is {limit} bytes")
        self.field = field


class InvalidRequest(RedisPersistError):
    """Well-formed but unacceptable input (e.g. a resume without the input a task waits for)."""


class InvalidPayload(InvalidRequest):
    """User JSON that could not be stored and read back (too deep, not valid Unicode, a number JSON cannot carry)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class InvalidEventId(InvalidRequest):
    """An event id that is not a Redis stream id (`<ms>-<seq>` or `<ms>`, each an unsigned 64-bit integer)."""

    def __init__(self, value: str) -> None:
        super().__init__(f"Invalid event id {value!r}: expected '<milliseconds>-<sequence>', "
                         "two unsigned 64-bit integers")


class LeaseLost(RedisPersistError):
    """This replica no longer holds the task's lease; it must stop and write nothing."""


class GraphLoadError(RedisPersistError):
    """A registered graph could not be imported or is not a LangGraph graph."""


class ResourceNotFound(RedisPersistError):
    """An unknown thread, run or assistant of the LangGraph Server API."""

    def __init__(self, kind: str, resource_id: str) -> None:
        super().__init__(f"{kind.capitalize()} {resource_id!r} not found")
        self.kind = kind
        self.resource_id = resource_id
