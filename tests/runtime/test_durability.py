"""What a client was told stays true across a failover (MCP_REDIS_WAIT_REPLICAS=1, MCP_REDIS_UNREPLICATED=refuse).

Real processes: a redis-server primary with two replicas (min-replicas-to-write 1, as the operator configures
managed Redis), three Sentinels, and mcp-runtime replicas that know only the Sentinels. Every client checks
every answer against the last one it saw: a lower value is a rollback, and no answer may ever be taken back.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from mcp_runtime.redis_store.client import close, redis_client
from mcp_runtime.settings import RuntimeSettings
from tests.support.procs import RuntimeProcess, metric
from tests.support.raw import JSON_HEADERS, MODERN_HEADERS, MODERN_META, open_raw_session, session_headers, tool_call
from tests.support.redis_sentinel import MASTER, SentinelGroup, sentinel_group
from tests.support.redis_server import SHARED_KEY, RedisServer, redis_env, replicas, start_redis

TIMEOUT = 0.5
STRICT = {
    "MCP_REDIS_TIMEOUT_SECONDS": str(TIMEOUT),
    "MCP_RETRY_AFTER_SECONDS": "1",
    "MCP_REDIS_WAIT_REPLICAS": "1",
    "MCP_REDIS_WAIT_TIMEOUT_SECONDS": "0.5",
    "MCP_REDIS_UNREPLICATED": "refuse",
}


def primaries_refuse_writes_without_replicas(group: SentinelGroup) -> None:
    """What the operator sets on managed Redis: a primary cut off from its replicas stops taking writes."""
    for server in group.servers:
        server.client().config_set("min-replicas-to-write", 1)
        server.client().config_set("min-replicas-max-lag", 2)


@dataclass
class Counters:
    """Clients incrementing session counters and handle counters, each checking every answer it gets."""

    procs: list[RuntimeProcess]
    sessions: list[str]
    handles: list[str]
    last: dict[str, int] = field(default_factory=dict)
    rollbacks: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def check(self, name: str, value: int) -> None:
        before = self.last.get(name, 0)
        if value < before:
            self.rollbacks.append(f"{name}: told {before}, then {value}")
        self.last[name] = max(before, value)

    def session_increment(self, http: httpx2.Client, proc: RuntimeProcess, session: str, n: int) -> None:
        body = tool_call(f"i{n}", "session_increment", {"by": 1})
        response = http.post(proc.url, json=body, headers=session_headers(session))
        if response.status_code == 404:
            self.lost.append(f"session {session}")
        if response.status_code != 200:
            self.statuses[str(response.status_code)] += 1
            return
        result = parse_result(response)
        if result.get("isError"):
            self.statuses["tool error"] += 1  # the store refused: nothing was promised
            return
        self.statuses["ok"] += 1
        self.check(session, int(result["structuredContent"]["result"]))

    def handle_increment(self, http: httpx2.Client, proc: RuntimeProcess, handle: str) -> None:
        body = tool_call(1, "counter_increment", {"handle": handle, "by": 1})
        body["params"]["_meta"] = MODERN_META
        headers = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "counter_increment"}
        response = http.post(proc.url, json=body, headers=headers)
        if response.status_code != 200:
            self.statuses[str(response.status_code)] += 1
            return
        result = response.json()["result"]
        if result.get("isError"):
            text = str(result.get("content"))
            if "nknown" in text:
                self.lost.append(f"handle {handle}")
            self.statuses["tool error"] += 1
            return
        self.statuses["ok"] += 1
        self.check(handle, int(result["structuredContent"]["result"]))

    def worker(self, n: int) -> None:
        """One client per counter (a counter's answers are then strictly ordered): sessions first, then handles."""
        with httpx2.Client(timeout=10) as http:
            i = 0
            while not self.stop.is_set():
                proc = self.procs[(n + i) % len(self.procs)]
                try:
                    if n < len(self.sessions):
                        self.session_increment(http, proc, self.sessions[n], i)
                    else:
                        self.handle_increment(http, proc, self.handles[n - len(self.sessions)])
                except httpx2.HTTPError as error:
                    self.statuses[type(error).__name__] += 1
                i += 1

    def start(self) -> list[threading.Thread]:
        workers = len(self.sessions) + len(self.handles)
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        return threads


def parse_result(response: httpx2.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("application/json"):
        result: dict[str, Any] = response.json()["result"]
        return result
    for line in response.text.splitlines():
        if line.startswith("data: ") and '"result"' in line:
            parsed: dict[str, Any] = json.loads(line[6:])["result"]
            return parsed
    raise AssertionError(response.text)


def create_handle(proc: RuntimeProcess) -> str:
    body = tool_call(1, "counter_create", {})
    body["params"]["_meta"] = MODERN_META
    headers = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "counter_create"}
    response = httpx2.post(proc.url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["result"]["structuredContent"]["result"])


def post_retrying(http: httpx2.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx2.Response:
    """POST, retried while the answer is 503 (the store is settling after the failover), as a client would."""
    deadline = time.monotonic() + 20
    while True:
        response = http.post(url, json=body, headers=headers)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))


def final_values(counters: Counters) -> dict[str, int]:
    """Every counter read once more (an increment by 0), on the first replica."""
    proc = counters.procs[0]
    seen: dict[str, int] = {}
    with httpx2.Client(timeout=10) as http:
        for session in counters.sessions:
            body = tool_call("final", "session_increment", {"by": 0})
            response = post_retrying(http, proc.url, body, session_headers(session))
            assert response.status_code == 200, response.text
            seen[session] = int(parse_result(response)["structuredContent"]["result"])
        for handle in counters.handles:
            body = tool_call(1, "counter_increment", {"handle": handle, "by": 0})
            body["params"]["_meta"] = MODERN_META
            headers = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "counter_increment"}
            response = post_retrying(http, proc.url, body, headers)
            seen[handle] = int(response.json()["result"]["structuredContent"]["result"])
    return seen


def run_counters(procs: list[RuntimeProcess], lose_primary: object, group: SentinelGroup) -> Counters:
    sessions = [open_raw_session(procs[n % len(procs)].url).headers["mcp-session-id"] for n in range(4)]
    handles = [create_handle(procs[n % len(procs)]) for n in range(2)]
    counters = Counters(procs, sessions, handles)
    threads = counters.start()
    time.sleep(1.5)
    assert counters.statuses["ok"] > 0, counters.statuses
    assert callable(lose_primary)
    lose_primary()
    deadline = time.monotonic() + 30
    served_after = counters.statuses["ok"]
    while counters.statuses["ok"] < served_after + 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    counters.stop.set()
    for thread in threads:
        thread.join(15)
    print(f"\n{dict(counters.statuses)}; last values {counters.last}")
    assert counters.statuses["ok"] >= served_after + 50, ("traffic did not flow again", counters.statuses)
    assert not counters.rollbacks, counters.rollbacks
    assert not counters.lost, counters.lost
    for name, value in final_values(counters).items():
        assert value >= counters.last[name], (name, value, counters.last[name])
    for proc in procs:
        assert proc.alive()
        assert "Traceback" not in proc.log(), proc.log()[-3000:]
    return counters


def test_an_isolated_primary_takes_back_nothing_it_acknowledged(tmp_path: Path) -> None:
    """The primary hangs (SIGSTOP) long enough for the Sentinels to promote a replica, then resumes believing
    it is still the primary: nothing written to it from then on is acknowledged, and nothing is rolled back."""
    with sentinel_group(tmp_path / "redis") as group:
        primaries_refuse_writes_without_replicas(group)
        with replicas(tmp_path, group.env(**STRICT), count=2) as procs:
            old: list[RedisServer] = []

            def isolate_primary() -> None:
                primary = group.primary()
                old.append(primary)
                assert primary.process is not None
                primary.process.send_signal(signal.SIGSTOP)
                group.wait_new_primary(primary.port)
                time.sleep(1.0)
                primary.process.send_signal(signal.SIGCONT)

            run_counters(procs, isolate_primary, group)
            deadline = time.monotonic() + 20
            while old[0].client().info("replication")["role"] != "slave":
                assert time.monotonic() < deadline, "the old primary was never turned into a replica"
                time.sleep(0.2)


def test_a_primary_killed_under_load_takes_back_nothing_it_acknowledged(tmp_path: Path) -> None:
    with sentinel_group(tmp_path / "redis") as group:
        primaries_refuse_writes_without_replicas(group)
        with replicas(tmp_path, group.env(**STRICT), count=2) as procs:

            def kill_primary() -> None:
                primary = group.primary()
                assert primary.process is not None
                primary.process.send_signal(signal.SIGKILL)
                primary.process.wait(5)
                group.wait_new_primary(primary.port)

            run_counters(procs, kill_primary, group)


@pytest.mark.parametrize("policy", ["accept", "refuse"])
def test_a_write_no_replica_holds_in_time(tmp_path: Path, policy: str) -> None:
    """Every write waits for a replica; what happens when none answers is MCP_REDIS_UNREPLICATED's choice."""
    server = start_redis(tmp_path / "redis")  # no replica at all
    env = redis_env(server, MCP_REDIS_WAIT_REPLICAS="1", MCP_REDIS_WAIT_TIMEOUT_SECONDS="0.05")
    env["MCP_REDIS_UNREPLICATED"] = policy
    try:
        with replicas(tmp_path, env, count=1) as (proc,):
            opened = open_raw_session(proc.url)
            if policy == "refuse":
                assert opened.status_code == 503, opened.text
                assert opened.headers["retry-after"]
                assert opened.json()["error"]["message"].startswith("Session store unavailable")
                assert metric(proc.base, "mcp_runtime_redis_writes_unreplicated_total") >= 1
                handle = tool_call(1, "counter_create", {})
                handle["params"]["_meta"] = MODERN_META
                headers = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "counter_create"}
                answer = httpx2.post(proc.url, json=handle, headers=headers, timeout=10).json()
                assert answer["result"]["isError"], answer  # a tool is told the store refused, not a handle
            else:
                assert opened.status_code == 200, opened.text
                session = opened.headers["mcp-session-id"]
                body = tool_call("a", "session_increment", {"by": 2})
                response = httpx2.post(proc.url, json=body, headers=session_headers(session), timeout=10)
                assert parse_result(response)["structuredContent"] == {"result": 2}
                # the session's opening and the increment: each counted once
                assert metric(proc.base, "mcp_runtime_redis_writes_unreplicated_total") == 2
    finally:
        server.stop()


async def test_a_node_the_sentinels_name_is_used_only_if_it_is_a_primary(tmp_path: Path) -> None:
    """The role check on every new connection: the Sentinels' view lags during a failover."""
    with sentinel_group(tmp_path / "redis") as group:
        settings = RuntimeSettings(
            session_backend="redis",
            redis_sentinels=group.addresses.split(","),
            redis_sentinel_master=MASTER,
            request_state_keys=[SHARED_KEY],
        )
        client = redis_client(settings)
        try:
            pool = client.connection_pool
            replica = next(s for s in group.servers if s.port != group.primary_port())
            connection = pool.make_connection()  # type: ignore[no-untyped-call]
            with pytest.raises(RedisConnectionError, match="not the primary"):
                await connection.connect_to(("127.0.0.1", replica.port))  # type: ignore[attr-defined]
            assert not connection.is_connected
            await connection.connect_to(("127.0.0.1", group.primary_port()))  # type: ignore[attr-defined]
            assert connection.is_connected
            await connection.disconnect()
            assert await client.ping()
        finally:
            await close(client)


def test_the_runtime_leaves_the_old_primary_when_the_sentinels_switch(tmp_path: Path) -> None:
    with sentinel_group(tmp_path / "redis") as group, replicas(tmp_path, group.env(**STRICT), count=1) as (proc,):
        session = open_raw_session(proc.url).headers["mcp-session-id"]
        old = group.primary_port()
        group.sentinels[0].client().sentinel_failover(MASTER)
        group.wait_new_primary(old)
        deadline = time.monotonic() + 10
        while "the Sentinels switched the primary" not in proc.log():
            assert time.monotonic() < deadline, proc.log()[-2000:]
            time.sleep(0.1)
        # Served by the new primary (a write refused while the replicas were being reconfigured is retried).
        deadline = time.monotonic() + 10
        while True:
            body = tool_call("after", "session_increment", {"by": 1})
            result = parse_result(httpx2.post(proc.url, json=body, headers=session_headers(session), timeout=10))
            if not result.get("isError"):
                break
            assert time.monotonic() < deadline, result
            time.sleep(0.5)
        assert result["structuredContent"]["result"] >= 1
        assert "Traceback" not in proc.log()
