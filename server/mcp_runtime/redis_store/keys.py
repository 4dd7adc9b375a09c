"""Every Redis key and channel name the runtime uses, spelled once.

All live under MCP_REDIS_KEY_PREFIX (default `mcp:`), so several servers can share one Redis:
- `s:{id}`  hash: a session record (client key `ck`, owner `o`, created `c`, protocol version `pv`, params `cp`);
- `st:{id}` hash: the session's state for tools (field -> JSON);
- `ev:{id}` stream: the messages of the session's SSE streams (field `s` the stream, `m` the message, `f` set
  on a POST stream's answer), for Last-Event-ID;
- `sessions` sorted set: session ids scored by expiry (ms), for the global cap and for counting expiries;
- `c:{client}` sorted set: the client's session ids scored by expiry, for the per-client cap;
- `h:{handle}` hash: a handle's owner `o`, TTL `t` and data fields `d:{name}` (JSON);
- `app:{key}`: state of the app shared by every session (JSON), no TTL;
- `kv:{key}`: key-value state not tied to a session (FastMCP's, outside handshake sessions), its own TTL;
- `ready:{replica}`: written by the readiness probe (proves Redis takes writes), short TTL;
- `alive:{replica}`: the replica's heartbeat (a resumed stream's call is still running there), short TTL;
- channels `ch:{id}` (one session's answers and end), `sse:{id}` (its SSE messages, for the replicas that hold
  one of its streams) and `bus` (modern-era change notifications).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    def record(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    def state(self, session_id: str) -> str:
        return f"{self.prefix}st:{session_id}"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}ev:{session_id}"

    def session_keys(self, session_id: str) -> list[str]:
        """Everything stored for one session (what a DELETE removes)."""
        return [self.record(session_id), self.state(session_id), self.events(session_id)]

    @property
    def sessions(self) -> str:
        return f"{self.prefix}sessions"

    @property
    def client_prefix(self) -> str:
        return f"{self.prefix}c:"

    def client(self, client_key: str) -> str:
        return self.client_prefix + client_key

    def handle(self, handle: str) -> str:
        return f"{self.prefix}h:{handle}"

    def app(self, key: str) -> str:
        return f"{self.prefix}app:{key}"

    def kv(self, key: str) -> str:
        return f"{self.prefix}kv:{key}"

    def ready(self, replica: str) -> str:
        return f"{self.prefix}ready:{replica}"

    def alive(self, replica: str) -> str:
        return f"{self.prefix}alive:{replica}"

    def channel(self, session_id: str) -> str:
        return f"{self.prefix}ch:{session_id}"

    @property
    def channel_prefix(self) -> str:
        return f"{self.prefix}ch:"

    def runner_channel(self, replica: str) -> str:
        """A replica's own channel: questions about the calls it runs (`keep` a held answer)."""
        return f"{self.prefix}runner:{replica}"

    def messages_channel(self, session_id: str) -> str:
        return f"{self.prefix}sse:{session_id}"

    @property
    def messages_channel_prefix(self) -> str:
        return f"{self.prefix}sse:"

    @property
    def bus(self) -> str:
        return f"{self.prefix}bus"
