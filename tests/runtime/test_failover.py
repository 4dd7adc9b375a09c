"""The session store behind Sentinels: a primary killed or failed over under traffic loses no session.

Real processes throughout: a redis-server primary with two replicas, three Sentinels, and three `mcp-runtime`
replicas that know only the Sentinels. Clients honour 503 with Retry-After, as the protocol asks; a failure
is anything else (a 500, a 404 for a session that existed, a cut connection, a request that hangs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.support.clients import balanced_client, mcp_client
from tests.support.procs import RuntimeProcess, free_port, metric, serve_command, spawn, wait_healthy
from tests.support.raw import (
    JSON_HEADERS,
    MODERN_HEADERS,
    MODERN_META,
    Answer,
    open_get,
    open_raw_session,
    post,
    read_events,
    session_headers,
    set_note,
    tool_call,
    tool_value,
)
from tests.support.redis_sentinel import MASTER, SentinelGroup, sentinel_group
from tests.support.redis_server import RedisServer, replicas

LIST = {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}


def listing(request_id: str) -> dict[str, object]:
    """tools/list with its own id: two requests in flight on one session may not share one (409)."""
    return {**LIST, "id": request_id}


TIMEOUT = 0.5  # MCP_REDIS_TIMEOUT_SECONDS of the replicas
RETRY_AFTER = 4  # MCP_RETRY_AFTER_SECONDS: longer than a failover here takes
# The longest a request may take while the store fails over: a few store calls, each bounded by TIMEOUT.
HANG_LIMIT = 4 * TIMEOUT + 1.0


def failover_env(group: SentinelGroup, **extra: str) -> dict[str, str]:
    return group.env(
        MCP_REDIS_TIMEOUT_SECONDS=str(TIMEOUT),
        MCP_RETRY_AFTER_SECONDS=str(RETRY_AFTER),
        MCP_REDIS_WAIT_REPLICAS="1",
        MCP_STREAM_CHECK_SECONDS="1",
        **extra,
    )


@dataclass
class Traffic:
    """Client threads, each on its own session, sending tools/list round-robin over the replicas."""

    procs: list[RuntimeProcess]
    sessions: list[str]
    statuses: Counter[int | str] = field(default_factory=Counter)
    slowest: float = 0.0
    completed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, n: int) -> None:
        session = self.sessions[n % len(self.sessions)]
        with httpx2.Client(timeout=10) as http:
            i = n
            while not self.stop.is_set():
                proc = self.procs[i % len(self.procs)]
                i += 1
                started = time.monotonic()
                try:
                    body = listing(f"w{n}-{i}")
                    response = http.post(proc.url, json=body, headers=session_headers(session))
                    status: int | str = response.status_code
                except httpx2.HTTPError as error:
                    status = type(error).__name__
                took = time.monotonic() - started
                with self.lock:
                    self.statuses[status] += 1
                    self.slowest = max(self.slowest, took)
                    self.completed += 1
                if status == 503:
                    retry_after = float(response.headers["retry-after"])
                    self.stop.wait(retry_after)  # the client honours Retry-After

    def start(self, workers: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        return threads


class Probe(threading.Thread):
    """Polls every replica every 50 ms, ignoring Retry-After, to time the outage a failover causes."""

    def __init__(self, procs: list[RuntimeProcess], session: str) -> None:
        super().__init__(daemon=True)
        self.procs, self.session = procs, session
        self.failures: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                for proc in self.procs:
                    n += 1
                    try:
                        response = http.post(
                            proc.url, json=listing(f"probe-{n}"), headers=session_headers(self.session)
                        )
                        ok = response.status_code == 200
                    except httpx2.HTTPError:
                        ok = False
                    if not ok:
                        self.failures.append(time.monotonic())
                self.stop.wait(0.05)

    def outage(self, since: float) -> float:
        """Seconds from `since` to the last failure seen (0 when requests never failed)."""
        return max(self.failures) - since if self.failures else 0.0


def time_until_served(procs: list[RuntimeProcess], session: str, since: float, timeout: float = 30) -> float:
    """Seconds from `since` until every replica serves `session` again (polled every 50 ms)."""
    pending = set(range(len(procs)))
    while pending:
        assert time.monotonic() - since < timeout, "traffic did not flow again"
        for i in list(pending):
            try:
                body = listing(f"probe-{time.monotonic()}")
                if httpx2.post(procs[i].url, json=body, headers=session_headers(session), timeout=5).status_code == 200:
                    pending.discard(i)
            except httpx2.HTTPError:
                pass
        time.sleep(0.05)
    return time.monotonic() - since


def counter_call(proc: RuntimeProcess, tool: str, arguments: dict[str, object]) -> object:
    """A modern-era tool call over plain HTTP (no session), its structured result."""
    headers = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": tool}
    body = tool_call(1, tool, arguments)
    body["params"]["_meta"] = MODERN_META
    response = httpx2.post(proc.url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["result"]["structuredContent"]["result"]


def kill_primary(group: SentinelGroup) -> int:
    primary = group.primary()
    assert primary.process is not None
    primary.process.send_signal(signal.SIGKILL)
    primary.process.wait(5)
    return primary.port


def manual_failover(group: SentinelGroup) -> int:
    old = group.primary_port()
    group.sentinels[0].client().sentinel_failover(MASTER)
    return old


@pytest.mark.parametrize("how", ["kill -9 of the primary", "Sentinel failover"])
def test_a_failover_under_traffic_loses_no_session_and_no_handle(tmp_path: Path, how: str) -> None:
    with sentinel_group(tmp_path / "redis") as group, replicas(tmp_path, failover_env(group)) as procs:
        sessions = [open_raw_session(procs[n % 3].url).headers["mcp-session-id"] for n in range(12)]
        handles = [counter_call(procs[n], "counter_create", {}) for n in range(3)]
        for n, handle in enumerate(handles):
            for _ in range(n + 1):
                counter_call(procs[(n + 1) % 3], "counter_increment", {"handle": handle, "by": 1})
        traffic = Traffic(procs, sessions)
        workers = 6
        threads = traffic.start(workers)
        probe = Probe(procs, sessions[-1])
        probe.start()
        time.sleep(1.0)
        before = traffic.statuses[200]
        assert before > 0 and set(traffic.statuses) == {200}, traffic.statuses

        killed_at = time.monotonic()
        old_port = kill_primary(group) if how.startswith("kill") else manual_failover(group)
        failover_seconds = group.wait_new_primary(old_port)
        time_until_served(procs, sessions[0], killed_at)
        time.sleep(RETRY_AFTER + 1.0)  # every worker that got a 503 has retried by now
        traffic.stop.set()
        probe.stop.set()
        for thread in [*threads, probe]:
            thread.join(15)
        outage = probe.outage(killed_at)

        print(
            f"\n{how}: Sentinels named a new primary after {failover_seconds:.2f}s; requests failed for "
            f"{outage:.2f}s ({len(probe.failures)} probe failures); {dict(traffic.statuses)}; "
            f"slowest {traffic.slowest:.2f}s"
        )
        # Only 200 and 503: no 500, no 404 for a live session, no cut connection.
        assert set(traffic.statuses) <= {200, 503}, traffic.statuses
        # A client honouring Retry-After fails at most once per request in flight.
        assert traffic.statuses[503] <= workers, traffic.statuses
        assert traffic.statuses[200] > before
        assert traffic.slowest < HANG_LIMIT, traffic.slowest
        # Nothing lost: every session on every replica, every handle with its count.
        for session in sessions:
            for proc in procs:
                response = httpx2.post(proc.url, json=LIST, headers=session_headers(session), timeout=10)
                assert response.status_code == 200, (session, response.status_code, response.text)
        for n, handle in enumerate(handles):
            assert counter_call(procs[n], "counter_increment", {"handle": handle, "by": 0}) == n + 1
        for proc in procs:
            assert proc.alive()
            assert "Traceback" not in proc.log(), proc.log()[-3000:]


async def test_pub_sub_features_work_after_a_failover(tmp_path: Path) -> None:
    """Elicitation answered through another replica, a GET stream's notifications, listen fan-out."""
    with sentinel_group(tmp_path / "redis") as group, replicas(tmp_path, failover_env(group)) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        stream = open_get(procs[0].port, session)  # held across the failover
        set_note(procs[1].url, session, "before")
        assert "notifications/resources/updated" in read_events(stream, 1)[0][1]

        old_port = kill_primary(group)
        group.wait_new_primary(old_port)
        time_until_served(procs, session, time.monotonic())
        await anyio.sleep(1.5)  # the pub/sub loops resubscribe on the new primary by themselves

        set_note(procs[1].url, session, "after")  # the tool runs on replica 1, the stream is on replica 0
        assert "notifications/resources/updated" in read_events(stream, 1, timeout=10)[0][1]
        stream.close()

        client, _ = balanced_client(procs[:2])
        async with client:
            for n in range(3):  # the answer POST lands on the replica that did not ask
                with anyio.fail_after(15):
                    result = await client.call_tool("ask", {"question": f"q{n}"})
                assert result.structured_content == {"result": f"answer to q{n}"}, result

        # Every replica's change-notification relay is subscribed on the new primary (a notification published
        # before a relay resubscribed is lost to it, as pub/sub is): then none may be lost.
        new_primary = group.primary().client()
        deadline = time.monotonic() + 15
        while dict(new_primary.pubsub_numsub("mcp:bus")).get("mcp:bus", 0) < len(procs):
            assert time.monotonic() < deadline, new_primary.pubsub_numsub("mcp:bus")
            await anyio.sleep(0.2)

        async with (
            mcp_client(procs[0].url, "modern") as listener,
            mcp_client(procs[2].url, "modern") as writer,
            listener.listen(resource_subscriptions=["demo://note"]) as subscription,
        ):
            await writer.call_tool("note_set", {"text": "after the failover"})
            with anyio.fail_after(10):
                await subscription.__anext__()


def test_the_event_log_resumes_across_a_failover(tmp_path: Path) -> None:
    with sentinel_group(tmp_path / "redis") as group, replicas(tmp_path, failover_env(group), count=2) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        stream = open_get(procs[0].port, session)
        set_note(procs[1].url, session, "first")
        [(first_id, _)] = read_events(stream, 1)
        stream.close()
        set_note(procs[1].url, session, "second")  # logged, nobody listening
        group.wait_replicas_in_sync(2)
        old_port = kill_primary(group)
        group.wait_new_primary(old_port)
        time_until_served(procs, session, time.monotonic())
        resumed = open_get(procs[1].port, session, last_event_id=first_id)
        [(second_id, data)] = read_events(resumed, 1)
        assert second_id > first_id and "notifications/resources/updated" in data
        resumed.close()


@pytest.mark.parametrize("tls", [False, True], ids=["password", "password-and-tls"])
def test_sentinels_with_auth_and_tls(tmp_path: Path, tls: bool) -> None:
    with (
        sentinel_group(tmp_path / "redis", password="s3cret", tls=tls) as group,
        replicas(tmp_path, failover_env(group), count=2) as procs,
    ):
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        old_port = kill_primary(group)  # a vote among Sentinels that authenticate to each other
        group.wait_new_primary(old_port)
        time_until_served(procs, session, time.monotonic())
        assert metric(procs[0].base, "mcp_runtime_redis_writes_unreplicated_total") == 0


def test_wait_for_replicas_does_not_fail_a_write_when_they_are_gone(tmp_path: Path) -> None:
    with sentinel_group(tmp_path / "redis") as group, replicas(tmp_path, failover_env(group), count=1) as procs:
        assert open_raw_session(procs[0].url).status_code == 200
        assert metric(procs[0].base, "mcp_runtime_redis_writes_unreplicated_total") == 0
        for server in group.servers[1:]:
            assert server.process is not None
            server.process.send_signal(signal.SIGSTOP)  # replicas that hang, not only ones that are gone
        try:
            started = time.monotonic()
            assert open_raw_session(procs[0].url).status_code == 200
            assert time.monotonic() - started < 2.0
            assert metric(procs[0].base, "mcp_runtime_redis_writes_unreplicated_total") == 1
        finally:
            for server in group.servers[1:]:
                assert server.process is not None
                server.process.send_signal(signal.SIGCONT)


def test_no_primary_at_start_is_unready_not_a_crash(tmp_path: Path) -> None:
    env = {
        "MCP_SESSION_BACKEND": "redis",
        "MCP_REDIS_SENTINELS": "127.0.0.1:1,127.0.0.1:2",
        "MCP_REDIS_SENTINEL_MASTER": MASTER,
        "MCP_REDIS_TIMEOUT_SECONDS": "0.3",
        "MCP_REQUEST_STATE_KEYS": "k" * 40,
    }
    proc = spawn(tmp_path, env)
    try:
        wait_healthy(proc)
        assert httpx2.get(f"{proc.base}/readyz").status_code == 503
        started = time.monotonic()
        refused = open_raw_session(proc.url)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert time.monotonic() - started < 2.0
    finally:
        proc.stop()


def test_a_redis_cluster_node_is_refused_at_start(tmp_path: Path) -> None:
    port = free_port()
    while port > 55535:  # a cluster node's bus port is its port + 10000
        port = free_port()
    (tmp_path / "redis").mkdir()
    server = RedisServer(port, tmp_path / "redis", extra=["--cluster-enabled", "yes"]).start()
    try:
        done = serve_once({"MCP_REDIS_URL": server.url})
        assert done.returncode != 0
        assert "Redis Cluster" in done.stderr and "single keyspace" in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MCP_REDIS_SENTINELS": "127.0.0.1:26379"}, "go together"),
        ({"MCP_REDIS_SENTINELS": "nohost", "MCP_REDIS_SENTINEL_MASTER": "m"}, "is not host:port"),
        ({"MCP_REDIS_SENTINELS": "h:99999", "MCP_REDIS_SENTINEL_MASTER": "m"}, "is not host:port"),
    ],
)
def test_sentinel_settings_are_checked(env: dict[str, str], message: str) -> None:
    done = serve_once(env)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def serve_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`mcp-runtime serve` on the redis backend with `env`, expected to stop at start; what it printed."""
    full = {"MCP_SESSION_BACKEND": "redis", "MCP_REQUEST_STATE_KEYS": "k" * 40, "PATH": os.environ["PATH"], **env}
    return subprocess.run(serve_command(free_port()), env=full, capture_output=True, text=True, timeout=30)


async def test_concurrent_calls_after_idle_and_a_racing_delete_while_the_primary_dies(tmp_path: Path) -> None:
    """Every answer whole, each 200, 404 (after the DELETE) or 503 (during the failover): no 500, no cut
    connection; increments counted once; a DELETE that answered 200 ends the session everywhere."""
    idle = {"MCP_TRANSPORT_IDLE_SECONDS": "0.3"}
    with sentinel_group(tmp_path / "redis") as group, replicas(tmp_path, failover_env(group, **idle)) as procs:
        urls = [p.url for p in procs]
        counted = open_raw_session(urls[0]).headers["mcp-session-id"]
        doomed = open_raw_session(urls[1]).headers["mcp-session-id"]
        await anyio.sleep(1.0)  # both sessions' transports released: every call below rebuilds one
        answers: list[Answer] = []
        async with httpx2.AsyncClient(timeout=30) as client:

            async def call(n: int, session: str) -> None:
                name, args = ("session_increment", {}) if session == counted else ("slow", {"seconds": 0.3})
                answers.append(await post(client, urls[n % 3], tool_call(n, name, args), session))

            async with anyio.create_task_group() as tg:
                for n in range(30):
                    tg.start_soon(call, n, counted if n % 2 else doomed)
                await anyio.sleep(0.05)
                kill_primary(group)
                deleted = await client.delete(
                    urls[2], headers={"mcp-session-id": doomed, "mcp-protocol-version": "2025-11-25"}
                )
            print("statuses", sorted(a.status for a in answers), "delete", deleted.status_code)
            assert deleted.status_code in (200, 503), deleted.text
            assert len(answers) == 30
            for answer in answers:
                assert answer.status in (200, 404, 503), answer
                assert answer.complete and answer.result is not None, answer
            group.wait_new_primary(group.servers[0].port)
            time_until_served(procs, counted, time.monotonic())
            increments = sorted(v for a in answers if isinstance(v := tool_value_or_none(a), int))
            assert increments == sorted(set(increments)), increments  # none counted twice
            final = await post(client, urls[0], tool_call(999, "session_increment", {"by": 0}), counted)
            assert tool_value(final) >= max(increments, default=0), (final, increments)
            after = await post(client, urls[1], tool_call(1000, "add", {"a": 1, "b": 1}), doomed)
            if deleted.status_code == 200:
                assert after.status == 404, after
            else:
                assert after.status in (200, 404), after  # a 503'd DELETE may or may not have reached Redis
        for proc in procs:
            assert proc.alive() and "Traceback" not in proc.log(), proc.log()[-3000:]


def tool_value_or_none(answer: Answer) -> object:
    """A successful tool call's structured result, or None (an error result, or another kind of answer)."""
    message = answer.result
    if message is None or "result" not in message or message["result"].get("isError"):
        return None
    return message["result"].get("structuredContent", {}).get("result")
