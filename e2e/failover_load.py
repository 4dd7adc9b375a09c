"""Clients that check every answer they get, through an McpServer's Service, while its Redis primary is lost;
run in a pod (its source is passed to python -c, as e2e/ha_load.py is):

    python3 -c "$(cat e2e/failover_load.py)" URL [SESSIONS HANDLES PAUSE MAX_SECONDS]

SESSIONS handshake-era sessions (`session_increment` of the demo app) and HANDLES 2026-07-28 handle counters
(`counter_create`, then `counter_increment`), each driven by a thread of its own, every request on a new
connection (so the Service spreads them over the replicas), PAUSE seconds between two calls of one client.
Nobody else touches a client's counter, so each answer must be exactly one more than the last one the client
was told, give or take the calls whose outcome it does not know (a 503, a timeout: such an increment may or
may not have been applied):

- an answer not above the last one seen is a ROLLBACK: acknowledged increments were lost (its size is how
  many: told 1338, then 1269 means 70); one client rolled back again and again (told 209, then 209; told
  210, then 210) is two histories taking turns at the same height, a split brain the forward jumps miss;
- an answer above what the client's own calls explain is a FORWARD JUMP: the counter went back to another
  history (two primaries took writes at once: a split brain), or an increment was applied twice;
- a session that answers 404 or "Session not found", a handle that answers "Unknown or expired handle", is
  LOST (its client stops);
- 503 with Retry-After is allowed: the client retries after it (at most 2 s).

Phases: the test writes a phase's name into PHASE_FILE (`kubectl exec`) right before it does something to the
cluster, and `stop` to end the run; every figure is kept per phase. A progress line (JSON) every 5 s, and the
report (JSON) as the last line. Only the standard library and httpx2 (in the runtime image) are used.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx2

PHASE_FILE = "/tmp/failover-phase"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
HANDSHAKE_VERSION = "2025-11-25"
MODERN = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "failover-load", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
EVENTS_KEPT = 40  # per phase: the first anomalies, with their details (the counts are complete)


def body_of(response: httpx2.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and '"id"' in line:
                return dict(json.loads(line[5:]))
        return {}
    try:
        return dict(response.json()) if response.text.strip() else {}
    except ValueError:  # not JSON (a plain-text error page): the status tells what happened
        return {}


class Phase:
    """What happened between two phase marks."""

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.started = now
        self.wall_started = time.time()
        self.ended: float | None = None
        self.acked = 0  # increments answered with a value
        self.unavailable = 0  # 503 with Retry-After
        self.unavailable_without_retry_after = 0
        self.store_unavailable = 0  # a tool error saying the session store is unavailable (200, isError)
        self.other_failures: Counter[str] = Counter()  # any other answer or transport error
        self.rollbacks = 0
        self.largest_rollback = 0
        self.forward_jumps = 0
        self.largest_forward_jump = 0
        self.lost: list[str] = []
        self.rolled_back: Counter[str] = Counter()  # rollbacks per client: more than one, two histories in turns
        self.longest_gap_any = 0.0  # the longest time in which no client got an answer
        self.longest_gap_client = 0.0  # the longest time one client waited between two answers
        self.first_answer_after: float | None = None  # seconds from the phase mark to the first answer
        self.events: list[dict[str, Any]] = []

    def event(self, **what: Any) -> None:
        if len(self.events) < EVENTS_KEPT:
            self.events.append({"t": round(time.time(), 3), **what})

    def report(self, now: float, last_answer: float) -> dict[str, Any]:
        end = self.ended if self.ended is not None else now
        # A gap still open when the phase ended counts too (traffic that never came back).
        open_gap = max(0.0, end - max(last_answer, self.started))
        return {
            "seconds": round(end - self.started, 1),
            "wall_started": round(self.wall_started, 3),
            "acked": self.acked,
            "unavailable_503": self.unavailable,
            "unavailable_503_without_retry_after": self.unavailable_without_retry_after,
            "store_unavailable_tool_errors": self.store_unavailable,
            "other_failures": dict(self.other_failures),
            "rollbacks": self.rollbacks,
            "largest_rollback": self.largest_rollback,
            "split_brain_flips": self.forward_jumps,
            "clients_rolled_back_repeatedly": sum(1 for n in self.rolled_back.values() if n > 1),
            "largest_forward_jump": self.largest_forward_jump,
            "sessions_lost": sum(1 for x in self.lost if x.startswith("session")),
            "handles_lost": sum(1 for x in self.lost if x.startswith("handle")),
            "longest_without_any_answer_s": round(max(self.longest_gap_any, open_gap), 2),
            "longest_one_client_waited_s": round(max(self.longest_gap_client, open_gap), 2),
            "first_answer_after_s": None if self.first_answer_after is None else round(self.first_answer_after, 2),
            "events": self.events,
        }


class Run:
    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.stop = threading.Event()
        now = time.monotonic()
        self.phases: list[Phase] = [Phase("setup", now)]
        self.last_answer = now
        self.next_id = 0

    @property
    def phase(self) -> Phase:
        return self.phases[-1]

    def mark(self, name: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.phase.ended = now
            self.phases.append(Phase(name, now))

    def request_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> httpx2.Response | str:
        """The response, or the name of the transport error."""
        try:
            with httpx2.Client(timeout=20) as http:  # a new connection per request
                return http.post(self.url, json={**body, "id": self.request_id()}, headers={**HEADERS, **headers})
        except httpx2.HTTPError as error:
            return type(error).__name__

    def answered(self, client: Client) -> None:
        """A client got an answer: the gaps (per client and for everyone) end here."""
        now = time.monotonic()
        with self.lock:
            phase = self.phase
            phase.longest_gap_any = max(phase.longest_gap_any, now - max(self.last_answer, phase.started))
            phase.longest_gap_client = max(phase.longest_gap_client, now - max(client.last_answer, phase.started))
            if phase.first_answer_after is None:
                phase.first_answer_after = now - phase.started
            self.last_answer = now
            client.last_answer = now


class Client(threading.Thread):
    """One session or one handle, incremented by 1 at a time, every answer checked against the last."""

    def __init__(self, run: Run, kind: str, pause: float) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.kind = kind
        self.pause = pause
        self.ident_ = ""
        self.last = 0  # the last value this client was told (a new session or handle holds 0)
        self.highest = 0
        self.pending = 0  # calls since `last` whose outcome is unknown (they may have been applied)
        self.last_answer = time.monotonic()
        self.lost = False
        self.acked = 0
        self.error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.ident_[:16]}"

    def headers(self) -> dict[str, str]:
        if self.kind == "session":
            return {"mcp-session-id": self.ident_, "mcp-protocol-version": HANDSHAKE_VERSION}
        return {**MODERN, "mcp-name": "counter_increment"}

    def open(self) -> None:
        """A new session (initialize, then notifications/initialized), or a new handle."""
        deadline = time.monotonic() + 90
        if self.kind == "session":
            init = {
                "jsonrpc": "2.0",
                "method": "initialize",
                "params": {
                    "protocolVersion": HANDSHAKE_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "failover-load", "version": "0"},
                },
            }
            response = self.until_answered(init, {}, deadline)
            self.ident_ = response.headers["mcp-session-id"]
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            self.until_answered(note, self.headers(), deadline)
        else:
            body = {
                "jsonrpc": "2.0",
                "method": "tools/call",
                "params": {"name": "counter_create", "arguments": {}, "_meta": MODERN_META},
            }
            response = self.until_answered(body, {**MODERN, "mcp-name": "counter_create"}, deadline)
            self.ident_ = str(body_of(response)["result"]["structuredContent"]["result"])

    def until_answered(self, body: dict[str, Any], headers: dict[str, str], deadline: float) -> httpx2.Response:
        while True:
            response = self.run_.post(body, headers)
            if isinstance(response, httpx2.Response) and response.status_code in (200, 202):
                result = body_of(response).get("result") or {}
                if not result.get("isError"):
                    return response
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not open a {self.kind}: {response}")
            time.sleep(1)

    def run(self) -> None:
        try:
            while not self.run_.stop.is_set() and not self.lost:
                self.step()
                time.sleep(self.pause)
        except Exception as error:  # a bug here: reported, not hidden
            self.error = repr(error)

    def step(self) -> None:
        if self.kind == "session":
            call = {"name": "session_increment", "arguments": {"by": 1}}
        else:
            call = {"name": "counter_increment", "arguments": {"handle": self.ident_, "by": 1}, "_meta": MODERN_META}
        body = {"jsonrpc": "2.0", "method": "tools/call", "params": call}
        response = self.run_.post(body, self.headers())
        run = self.run_
        if isinstance(response, str):
            self.unknown(response)
            return
        status = response.status_code
        if status == 503:
            with run.lock:
                if "retry-after" in response.headers:
                    run.phase.unavailable += 1
                else:
                    run.phase.unavailable_without_retry_after += 1
            self.pending += 1
            time.sleep(min(float(response.headers.get("retry-after", 1)), 2.0))
            return
        message = body_of(response)
        result = message.get("result") or {}
        text = " ".join(str(c.get("text", "")) for c in result.get("content") or [] if isinstance(c, dict))
        if status == 404 or "Session not found" in text or "Unknown or expired handle" in text:
            self.lose(f"{status} {text[:200]}")
            return
        if status != 200 or not result or result.get("isError"):
            if "Session store unavailable" in text:
                with run.lock:
                    run.phase.store_unavailable += 1
                self.pending += 1
                time.sleep(1)
                return
            error = message.get("error") or {}
            self.unknown(f"{status} {error.get('message', '') or text}"[:120])
            return
        value = result.get("structuredContent", {}).get("result")
        if not isinstance(value, int):
            self.unknown(f"{status} no value: {json.dumps(result)[:100]}")
            return
        self.check(value)

    def unknown(self, what: str) -> None:
        """An answer that is neither a value nor a 503: the increment may or may not have been applied."""
        with self.run_.lock:
            self.run_.phase.other_failures[what] += 1
        self.pending += 1
        time.sleep(1)

    def lose(self, why: str) -> None:
        self.lost = True
        with self.run_.lock:
            self.run_.phase.lost.append(self.label)
            self.run_.phase.event(kind="lost", client=self.label, last=self.last, why=why)

    def check(self, value: int) -> None:
        run = self.run_
        run.answered(self)
        with run.lock:
            phase = run.phase
            phase.acked += 1
            self.acked += 1
            if value <= self.last:  # acknowledged increments are gone
                size = self.last + 1 - value
                phase.rollbacks += 1
                phase.rolled_back[self.label] += 1
                phase.largest_rollback = max(phase.largest_rollback, size)
                phase.event(kind="rollback", client=self.label, told=self.last, then=value, size=size)
            elif value > self.last + 1 + self.pending:  # more than this client's own calls can explain
                jump = value - (self.last + 1 + self.pending)
                phase.forward_jumps += 1
                phase.largest_forward_jump = max(phase.largest_forward_jump, jump)
                kind = "split-brain flip" if self.highest > self.last else "forward jump"
                phase.event(kind=kind, client=self.label, told=self.last, unknown=self.pending, then=value)
        self.last = value
        self.highest = max(self.highest, value)
        self.pending = 0


def read_phase() -> str:
    try:
        with open(PHASE_FILE) as f:
            return f.read().strip()
    except OSError:
        return ""


def main(url: str, sessions: int, handles: int, pause: float, max_seconds: float) -> dict[str, Any]:
    run = Run(url)
    clients = [Client(run, "session", pause) for _ in range(sessions)]
    clients += [Client(run, "handle", pause) for _ in range(handles)]
    for client in clients:
        client.open()
    for client in clients:
        client.start()
    started = time.monotonic()
    current = ""
    last_progress = 0.0
    while True:
        name = read_phase()
        if name == "stop" or time.monotonic() - started > max_seconds:
            break
        if name and name != current:
            current = name
            run.mark(name)
        now = time.monotonic()
        if now - last_progress >= 5:
            last_progress = now
            with run.lock:
                progress = {
                    "phase": run.phase.name,
                    "acked": run.phase.acked,
                    "rollbacks": run.phase.rollbacks,
                    "split_brain_flips": run.phase.forward_jumps,
                    "lost": len(run.phase.lost),
                    "clients_answered": sum(1 for c in clients if c.acked > 0),
                    "seconds": round(now - started, 1),
                }
            print(json.dumps({"progress": progress}), flush=True)
        time.sleep(0.1)
    run.stop.set()
    for client in clients:
        client.join(timeout=30)
    run.mark("end")
    now = time.monotonic()
    return {
        "phases": {p.name: p.report(now, run.last_answer) for p in run.phases[:-1]},
        "order": [p.name for p in run.phases[:-1]],
        "clients": {c.label: {"last": c.last, "acked": c.acked, "lost": c.lost} for c in clients},
        "client_errors": [c.error for c in clients if c.error],
        "seconds": round(now - started, 1),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    if os.path.exists(PHASE_FILE):
        os.remove(PHASE_FILE)
    report = main(
        args[0],
        int(args[1]) if len(args) > 1 else 12,
        int(args[2]) if len(args) > 2 else 3,
        float(args[3]) if len(args) > 3 else 0.02,
        float(args[4]) if len(args) > 4 else 3600,
    )
    print(json.dumps(report), flush=True)
