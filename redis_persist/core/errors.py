"""Domain errors, raised deep and mapped to HTTP in one place (api/errors.py)."""

from __future__ import annotations


class RedisPersistError(Exception):
    """Base of every domain error."""


class TaskNotFound(RedisPersistError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task {task_id!r} not found")
        self.task_id = task_id


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
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"initial_state is {size} bytes; the limit is {limit} bytes")


class InvalidRequest(RedisPersistError):
    """Well-formed but unacceptable input (e.g. a resume without the input a task waits for)."""


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
