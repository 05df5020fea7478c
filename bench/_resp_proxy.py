"""A TCP proxy in front of Redis that counts the commands and the round trips each client sends.

A round trip starts when a connection sends after it last received (or for the first time): a
pipeline of ten commands written at once is one round trip, ten awaited commands are ten. Each round
trip is filed under the sorted set of the categories of its commands (see `categorise`).
Runs in its own thread with its own event loop, so the benchmark's client does not slow it down.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable


class RespCommands:
    """Incremental parser of the client side of RESP: yields each command as a list of bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[bytes]]:
        self._buffer += data
        commands = []
        while True:
            parsed = self._one()
            if parsed is None:
                return commands
            commands.append(parsed)

    def _one(self) -> list[bytes] | None:
        buffer = self._buffer
        if not buffer:
            return None
        if buffer[:1] != b"*":  # inline command (redis-py never sends these)
            end = buffer.find(b"\r\n")
            if end < 0:
                return None
            line = bytes(buffer[:end]).split()
            del buffer[:end + 2]
            return line
        end = buffer.find(b"\r\n")
        if end < 0:
            return None
        count = int(buffer[1:end])
        position = end + 2
        args = []
        for _ in range(count):
            end = buffer.find(b"\r\n", position)
            if end < 0:
                return None
            length = int(buffer[position + 1:end])
            start = end + 2
            if len(buffer) < start + length + 2:
                return None
            args.append(bytes(buffer[start:start + length]))
            position = start + length + 2
        del buffer[:position]
        return args


class CountingProxy:
    """Listens on 127.0.0.1:`port`, forwards to `upstream`, counts what goes through."""

    def __init__(self, port: int, upstream: tuple[str, int], categorise: Callable[[list[bytes]], str]) -> None:
        self.port = port
        self._upstream = upstream
        self._categorise = categorise
        self._lock = threading.Lock()
        self.commands: Counter[str] = Counter()  # category -> commands
        self.round_trips: Counter[str] = Counter()  # "cat1+cat2" -> round trips
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="resp-proxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        """(commands by category, round trips by category set) so far."""
        with self._lock:
            return Counter(self.commands), Counter(self.round_trips)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.close()
            return
        # One flag per connection: has the server answered since the client last sent?
        state = {"answered": True, "open_trip": ""}
        parser = RespCommands()

        async def client_to_server() -> None:
            while data := await client_reader.read(65536):
                commands = parser.feed(data)
                categories = {self._categorise(command) for command in commands}
                with self._lock:
                    for command in commands:
                        self.commands[self._categorise(command)] += 1
                    if state["answered"]:
                        state["answered"] = False
                        state["open_trip"] = "+".join(sorted(categories))
                        if categories:
                            self.round_trips[state["open_trip"]] += 1
                    elif categories and not state["open_trip"]:
                        # the first chunk held only part of a command: file the trip now
                        state["open_trip"] = "+".join(sorted(categories))
                        self.round_trips[state["open_trip"]] += 1
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def server_to_client() -> None:
            while data := await upstream_reader.read(65536):
                state["answered"] = True
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
