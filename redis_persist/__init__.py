"""redis_persist: long-running LangGraph graphs as durable background tasks on Redis."""
