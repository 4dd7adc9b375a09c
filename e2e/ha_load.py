"""Load through an McpServer's Service while its Redis fails over; run in a pod (its source is passed to python -c).

    python3 -c "$(cat e2e/ha_load.py)" load URL SECONDS        -> a JSON report on the last line
    python3 -c "$(cat e2e/ha_load.py)" check URL REPORT_JSON   -> what each session and handle holds now

Every request opens a new connection, so the Service spreads them over the replicas. `load` opens 12
handshake-era sessions and 3 handles (2026-07-28) and increments each in turn until SECONDS have passed,
honouring 503 with Retry-After. A session that answers 404 is lost; a counter that lost an acknowledged
increment shows in the final check. Only the standard library and httpx2 (in the runtime image) are used.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

import httpx2

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
MODERN = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "ha-load", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


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


class Load:
    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[str] = Counter()
        self.failures: list[float] = []  # when a request did not succeed (503 or any other failure)
        self.timeline: list[tuple[str, str]] = []  # (UTC time, what) of each failure, to read beside the Events
        self.next_id = 0

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> httpx2.Response | None:
        self.next_id += 1
        body = {**body, "id": self.next_id}
        try:
            with httpx2.Client(timeout=30) as http:  # a new connection per request
                response = http.post(self.url, json=body, headers={**HEADERS, **headers})
        except httpx2.HTTPError as error:
            self.failed(type(error).__name__, str(error))
            return None
        if response.status_code == 404 and not body_of(response):
            # Not the runtime's answer (it always says why in JSON-RPC): an address with no Service behind it,
            # which on the local cluster reaches the machine's egress proxy. A failure to reach, like a refusal.
            self.failed("404 from no server")
            return None
        if response.status_code != 200:
            self.failed(str(response.status_code))
        else:
            self.statuses["200"] += 1
        return response

    def failed(self, what: str, detail: str = "") -> None:
        self.statuses[what] += 1
        self.failures.append(time.monotonic())
        # (a transport error's own words: a refused connection, a name not resolved, a timeout)
        self.timeline.append((time.strftime("%H:%M:%S", time.gmtime()), f"{what} {detail}"[:160].strip()))

    def until_ok(self, body: dict[str, Any], headers: dict[str, str], deadline: float) -> httpx2.Response | None:
        """The request, retried after a 503's Retry-After (at most 2 s here) until it succeeds or time is up."""
        while True:
            response = self.post(body, headers)
            if response is not None and response.status_code != 503:
                return response
            if time.monotonic() > deadline:
                return response
            time.sleep(min(float(response.headers.get("retry-after", 1)) if response is not None else 1, 2))

    def open_session(self) -> str:
        init = {
            "jsonrpc": "2.0",
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "ha", "version": "0"},
            },
        }
        response = self.until_ok(init, {}, time.monotonic() + 60)
        assert response is not None and response.status_code == 200, response
        session = response.headers["mcp-session-id"]
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        self.until_ok(note, self.session_headers(session), time.monotonic() + 60)
        return str(session)

    @staticmethod
    def session_headers(session: str) -> dict[str, str]:
        return {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}

    def call(self, name: str, arguments: dict[str, Any], headers: dict[str, str], deadline: float) -> Any:
        """A tool's result, 'lost' for a 404 (the session is gone), None when it never got through."""
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        if headers.get("mcp-protocol-version") == "2026-07-28":
            body["params"]["_meta"] = MODERN_META
        response = self.until_ok(body, {**headers, "mcp-name": name} if "mcp-method" in headers else headers, deadline)
        if response is None or response.status_code == 503:
            return None
        if response.status_code == 404:
            return "lost"
        message = body_of(response)
        result = message.get("result") or {}
        if response.status_code != 200 or result.get("isError"):
            return None
        return result.get("structuredContent", {}).get("result")


def load(url: str, seconds: float) -> dict[str, Any]:
    run = Load(url)
    started = time.monotonic()
    end = started + seconds
    sessions = [run.open_session() for _ in range(12)]
    handles = [run.call("counter_create", {}, MODERN, end) for _ in range(3)]
    counts = {s: 0 for s in sessions}
    handle_counts = {str(h): 0 for h in handles}
    lost: set[str] = set()
    unknown = 0  # increments sent whose answer never came (they may or may not have counted)
    while time.monotonic() < end:
        for session in sessions:
            got = run.call("session_increment", {}, run.session_headers(session), end + 30)
            if got == "lost":
                lost.add(session)
            elif isinstance(got, int):
                counts[session] = got
            else:
                unknown += 1
        for handle in handles:
            got = run.call("counter_increment", {"handle": handle, "by": 1}, MODERN, end + 30)
            if isinstance(got, int):
                handle_counts[str(handle)] = got
            elif got == "lost":
                lost.add(str(handle))
            else:
                unknown += 1
    span = max(run.failures) - min(run.failures) if run.failures else 0.0
    return {
        "sessions": counts,
        "handles": handle_counts,
        "lost": sorted(lost),
        "unknown": unknown,
        "statuses": dict(run.statuses),
        "failed_requests": len(run.failures),
        "first_to_last_failure_seconds": round(span, 2),
        "failures": [f"{when} {what}" for when, what in run.timeline[:60]],
        "seconds": round(time.monotonic() - started, 1),
    }


def check(url: str, report: dict[str, Any]) -> dict[str, Any]:
    run = Load(url)
    deadline = time.monotonic() + 120
    sessions = {s: run.call("session_increment", {}, run.session_headers(s), deadline) for s in report["sessions"]}
    handles = {h: run.call("counter_increment", {"handle": h, "by": 0}, MODERN, deadline) for h in report["handles"]}
    return {"sessions": sessions, "handles": handles, "statuses": dict(run.statuses)}


if __name__ == "__main__":
    mode, url, argument = sys.argv[1:4]
    out = load(url, float(argument)) if mode == "load" else check(url, json.loads(argument))
    print(json.dumps(out))
