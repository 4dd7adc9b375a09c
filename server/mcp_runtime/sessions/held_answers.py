"""Answers delivered on their open POST stream, held in this replica's memory rather than written to the log.

On Redis, writing every answer to the session's event log costs a round trip per call, for the rare client
whose connection is cut after the answer went out and before it arrived. Instead, an answer that goes out on
a POST stream still carried by its connection is held here, by session and stream token, and written to the
log only when it may be needed:

- a client resumes the stream (GET with Last-Event-ID, on any replica): the replica serving it asks the
  runner (the replica named in the token) to keep the answer, and the runner writes it to the log, whose
  `RECORD` publishes it to the resumed stream;
- the replica drains: every held answer is written before it exits.

An answer whose stream was cut before it was ready (the client left, a proxy's idle timeout, a drain), or
whose client already asked for it, is written at once, as before. A runner killed outright loses what it
held: a client that resumes then gets the error a lost runner gives (`Expiry.check_runners`).

Bounded: by the event log's retention (an answer older than that could not be resumed anyway) and by
`LIMIT` answers, oldest first.
"""

from __future__ import annotations

import time
from collections import deque

LIMIT = 10_000


class HeldAnswers:
    def __init__(self, retention_seconds: float, limit: int = LIMIT) -> None:
        self.retention_seconds = retention_seconds
        self.limit = limit
        self.holding = True
        self._held: dict[str, dict[str, tuple[int, str]]] = {}  # session -> stream token -> (seq, answer)
        self._order: deque[tuple[float, int, str, str]] = deque()  # (held at, seq, session, token), oldest first
        self._seq = 0
        self._count = 0
        self.writing: set[tuple[str, str]] = set()  # (session, token) of answers a retry is writing to the log

    def __len__(self) -> int:
        return self._count

    def hold(self, session_id: str, token: str, answer: str) -> bool:
        """Hold an answer; False when this replica no longer holds answers (it drains): write it instead."""
        if not self.holding:
            return False
        now = time.monotonic()
        self._prune(now)
        self._seq += 1
        streams = self._held.setdefault(session_id, {})
        if token not in streams:
            self._count += 1
        streams[token] = (self._seq, answer)
        self._order.append((now, self._seq, session_id, token))
        while self._count > self.limit:
            self._drop_oldest()
        if len(self._order) > 2 * self.limit:  # taken and held-again answers leave their place: drop those
            self._order = deque(entry for entry in self._order if self._current(entry))
        return True

    def take(self, session_id: str, token: str) -> str | None:
        """The held answer of a stream, no longer held (None when there is none)."""
        streams = self._held.get(session_id)
        if streams is None or token not in streams:
            return None
        _, answer = streams.pop(token)
        self._count -= 1
        if not streams:
            del self._held[session_id]
        return answer

    def take_all(self) -> list[tuple[str, str, str]]:
        """Every held answer as (session, token, answer), none held any more."""
        taken = [
            (session, token, answer) for session, held in self._held.items() for token, (_, answer) in held.items()
        ]
        self._held.clear()
        self._order.clear()
        self._count = 0
        return taken

    def forget(self, session_id: str) -> None:
        """The session ended: its answers are of no use."""
        streams = self._held.pop(session_id, None)
        if streams:
            self._count -= len(streams)

    def _prune(self, now: float) -> None:
        oldest = now - self.retention_seconds
        while self._order and self._order[0][0] < oldest:
            self._drop_oldest()

    def _current(self, entry: tuple[float, int, str, str]) -> bool:
        """Whether an entry of the order is an answer still held (not taken, nor held again since)."""
        _, seq, session_id, token = entry
        streams = self._held.get(session_id)
        return streams is not None and token in streams and streams[token][0] == seq

    def _drop_oldest(self) -> None:
        entry = self._order.popleft()
        if self._current(entry):
            _, _, session_id, token = entry
            streams = self._held[session_id]
            del streams[token]
            self._count -= 1
            if not streams:
                del self._held[session_id]
