"""stream_mode="messages" as LangGraph's server sends it: each LLM message grows chunk by chunk.

LangGraph's own `messages` stream gives (chunk, metadata) tuples; the server forwards those as-is for
`messages-tuple`, but for `messages` it sends `messages/metadata` once per message, then after every chunk
the message so far (`messages/partial`; `messages/complete` for a message that arrived whole).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, convert_to_messages, message_chunk_to_message

MAX_RUNS = 1_000  # runs whose messages are being accumulated on this replica (ended runs are dropped)


class MessageEvents:
    """Per run, the messages streamed so far; turns each (chunk, metadata) into the server's events."""

    def __init__(self) -> None:
        self._runs: OrderedDict[str, dict[str, BaseMessage]] = OrderedDict()

    def start(self, run_id: str) -> None:
        """The run starts (or continues on this replica) with no message in flight."""
        self._runs[run_id] = {}
        self._runs.move_to_end(run_id)
        while len(self._runs) > MAX_RUNS:  # a run whose end was never seen here (its lease was lost)
            self._runs.popitem(last=False)

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    def events(self, run_id: str, chunk: Any) -> list[tuple[str, Any]]:
        """The (event, data) pairs one `messages` chunk becomes."""
        message, metadata = chunk
        if isinstance(message, dict):
            message = convert_to_messages([message])[0]
        seen = self._runs.setdefault(run_id, {})
        out: list[tuple[str, Any]] = []
        if message.id in seen and isinstance(message, BaseMessageChunk):
            seen[message.id] = seen[message.id] + message
        else:
            if message.id not in seen:
                out.append(("messages/metadata", {message.id: {"metadata": metadata}}))
            seen[message.id] = message
        event = "messages/partial" if isinstance(message, BaseMessageChunk) else "messages/complete"
        out.append((event, [message_chunk_to_message(seen[message.id])]))
        return out
