"""GET streams: server-initiated messages reach the client, and do not pin the session's transport."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import httpx2
import mcp_types as types

from tests.support.clients import mcp_client
from tests.support.procs import metric, running
from tests.support.raw import open_raw_session, session_headers


async def test_notification_reaches_the_clients_get_stream(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_TRANSPORT_IDLE_SECONDS": "0.3"}) as rt:
        received: list[str] = []

        async def on_message(message: object) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                received.append(message.params.uri)

        client = mcp_client(rt.url, "handshake")
        client.message_handler = on_message
        async with client:
            await client.call_tool("note_set", {"text": "one"})
            with anyio.fail_after(5):
                while not received:
                    await anyio.sleep(0.05)
            # The GET stream stays open while the transport is released and rebuilt.
            await anyio.sleep(1.0)
            assert metric(rt.base, "mcp_runtime_transports_live") == 0
            await client.call_tool("note_set", {"text": "two"})
            with anyio.fail_after(5):
                while len(received) < 2:
                    await anyio.sleep(0.05)
            assert received == ["demo://note", "demo://note"]
            assert metric(rt.base, "mcp_runtime_sessions_restored_total") >= 1


def raw_get(port: int, session: str, extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        f"Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-11-25\r\n{extra}\r\n".encode()
    )
    return sock


def test_one_get_stream_per_session_and_404_for_unknown(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_STREAM_KEEPALIVE_SECONDS": "0.2"}) as rt:
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        first = raw_get(rt.port, session)
        head = first.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
        keepalive = first.recv(4096)
        while b"keep-alive" not in keepalive:
            keepalive += first.recv(4096)
        second = httpx2.get(rt.url, headers=session_headers(session, {"Accept": "text/event-stream"}))
        assert second.status_code == 409 and second.json()["error"]["message"].startswith("Conflict")
        assert httpx2.get(rt.url, headers=session_headers("f" * 32, {"Accept": "text/event-stream"})).status_code == 404
        assert httpx2.get(rt.url, headers=session_headers(session, {"Accept": "application/json"})).status_code == 406
        # Deleting the session ends its GET stream.
        assert httpx2.delete(rt.url, headers=session_headers(session)).status_code == 200
        first.settimeout(5)
        rest = b""
        while chunk := first.recv(4096):
            rest += chunk
            if rest.endswith(b"0\r\n\r\n"):
                break
        assert rest.endswith(b"0\r\n\r\n")
        first.close()
