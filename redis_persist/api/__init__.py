"""HTTP and WebSocket only: parse, call the engine, map errors."""
