"""Server-sent events: a GET stream's response, its events and keep-alives."""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from starlette.types import Receive, Send

Delivery = tuple[str | None, str]  # (event id for Last-Event-ID, or None; the JSON-RPC message)


def sse_event(event_id: str | None, message: str) -> bytes:
    head = b"id: " + event_id.encode() + b"\r\n" if event_id else b""
    return head + b"event: message\r\ndata: " + message.encode() + b"\r\n\r\n"


def _event_order(event_id: str) -> tuple[int, int]:
    millis, _, seq = event_id.partition("-")
    return (int(millis), int(seq or 0)) if millis.isdigit() and (seq or "0").isdigit() else (0, 0)


async def serve_sse(
    messages: MemoryObjectReceiveStream[Delivery],
    session_id: str,
    keepalive_seconds: float,
    receive: Receive,
    send: Send,
    replayed: list[tuple[str, str]] | None = None,
) -> None:
    """Answer a GET with an SSE stream: `replayed` first, then `messages`, until the client leaves or the
    stream is closed (the session ended)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache, no-transform"),
                (b"x-accel-buffering", b"no"),
                (b"mcp-session-id", session_id.encode()),
            ],
        }
    )
    last_replayed = (0, 0)
    for kept_id, kept in replayed or []:
        await send({"type": "http.response.body", "body": sse_event(kept_id, kept), "more_body": True})
        last_replayed = _event_order(kept_id)
    async with anyio.create_task_group() as tg:

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(until_disconnect)
        try:
            while True:
                with anyio.move_on_after(keepalive_seconds):
                    event_id, message = await messages.receive()
                    if event_id is not None and _event_order(event_id) <= last_replayed:
                        continue  # already sent from the log
                    await send({"type": "http.response.body", "body": sse_event(event_id, message), "more_body": True})
                    continue
                await send({"type": "http.response.body", "body": b": keep-alive\r\n\r\n", "more_body": True})
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        tg.cancel_scope.cancel()
