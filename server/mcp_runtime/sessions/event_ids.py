"""SSE event ids and stream tokens: what a handshake-era client holds to resume a stream, and what it means.

Every message the runtime sends on a session's SSE streams is kept in the session's event log (`events.py`)
with the token of the stream it belongs to:

- the GET stream's token is `g`;
- a POST stream's token names one request's run: `{nonce}~{runner}~{request id}` (the replica running the
  call and the request's JSON-RPC id, each base64url, so a resumed stream on another replica can tell when
  the runner is gone and answer the request itself with an error).

Event ids (`Last-Event-ID`) come in two forms, each ending in a tag of the session id, so an id of another
session is refused (404) rather than read against the wrong log:

- `{entry}.{tag}`: a kept message; `entry` is its place in the log (`{millis}-{seq}`, Redis stream ids);
- `p{millis}.{token}.{tag}`: a POST stream's priming event (SEP-1699), which is not kept at all: it names the
  stream and when it was primed, and resuming from it replays everything the log holds of that stream.

A bare `{millis}-{seq}` (what replicas before event tags handed out for GET streams) is read as an entry.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Literal

GET_STREAM = "g"

_ENTRY = r"[0-9]{1,20}-[0-9]{1,20}"
_TAG = r"[0-9a-f]{8}"
_B64 = r"[A-Za-z0-9_-]{0,512}"
_TOKEN = rf"[0-9a-f]{{1,32}}~{_B64}~{_B64}"
_ENTRY_ID = re.compile(rf"({_ENTRY})(?:\.({_TAG}))?")
_PRIMING_ID = re.compile(rf"p([0-9]{{1,20}})\.({_TOKEN})\.({_TAG})")
_STREAM_TOKEN = re.compile(_TOKEN)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


@functools.lru_cache(maxsize=4096)
def session_tag(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class PostStream:
    """One request's run, as named in its stream token."""

    runner: str  # the replica running the call
    request_id: int | str  # the request's JSON-RPC id, as the client sent it
    nonce: str

    @classmethod
    def new(cls, runner: str, request_id: int | str) -> PostStream:
        return cls(runner, request_id, secrets.token_hex(6))

    @property
    def token(self) -> str:
        return f"{self.nonce}~{_b64(self.runner)}~{_b64(json.dumps(self.request_id))}"


def parse_stream(token: str) -> PostStream | None:
    """The POST stream a token names; None for the GET stream or a token this runtime did not make."""
    if not _STREAM_TOKEN.fullmatch(token):
        return None
    nonce, runner, request_id = token.split("~")
    try:
        parsed = json.loads(_unb64(request_id))
        name = _unb64(runner)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(parsed, int | str) or isinstance(parsed, bool):
        return None
    return PostStream(name, parsed, nonce)


def entry_event_id(entry: str, session_id: str) -> str:
    return f"{entry}.{session_tag(session_id)}"


def priming_event_id(token: str, millis: int, session_id: str) -> str:
    return f"p{millis}.{token}.{session_tag(session_id)}"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a Last-Event-ID says the client stopped."""

    kind: Literal["entry", "priming"]
    entry: str  # the log entry (kind entry); "" for a priming cursor
    token: str  # the stream (kind priming); "" for an entry, whose stream the log knows
    millis: int  # when the stream was primed (kind priming)
    tag: str | None  # None: an untagged id from an older replica

    def of_session(self, session_id: str) -> bool:
        return self.tag is None or self.tag == session_tag(session_id)


def parse_event_id(value: str) -> Cursor | None:
    """A Last-Event-ID this runtime could have handed out, or None (malformed: the caller answers 400)."""
    value = value.strip()
    entry = _ENTRY_ID.fullmatch(value)
    if entry:
        return Cursor("entry", entry.group(1), "", 0, entry.group(2))
    priming = _PRIMING_ID.fullmatch(value)
    if priming:
        return Cursor("priming", "", priming.group(2), int(priming.group(1)), priming.group(3))
    return None
