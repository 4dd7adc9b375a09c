"""A session's requests arriving together: after idle, across replicas, racing DELETE and expiry.

Every request is a raw POST read to its end, so an empty 200, a cut connection or a 5xx shows up as such.
Both backends: one replica on memory, three replicas on one real redis-server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.support.procs import RuntimeProcess, metric, running
from tests.support.raw import Answer, open_raw_session, post, tool_call, tool_value
from tests.support.redis_server import RedisServer, redis_env, replicas, start_redis

IDLE = 0.3  # MCP_TRANSPORT_IDLE_SECONDS in these tests: live transports come and go all the time


@contextmanager
def fleet(tmp_path: Path, backend: str, redis_server: RedisServer | None, **extra: str) -> Iterator[list[str]]:
    """The MCP URLs of one memory replica, or of three redis replicas."""
    env = {"MCP_TRANSPORT_IDLE_SECONDS": str(IDLE), **extra}
    if backend == "memory":
        with running(tmp_path, env) as rt:
            yield [rt.url]
    else:
        assert redis_server is not None
        with replicas(tmp_path, redis_env(redis_server, **env)) as procs:
            yield [p.url for p in procs]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def maybe_redis(backend: str, tmp_path: Path) -> Iterator[RedisServer | None]:
    if backend == "memory":
        yield None
        return
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


async def gather(*calls: object) -> list[Answer]:
    results: list[Answer | None] = [None] * len(calls)

    async def one(index: int, call: object) -> None:
        results[index] = await call  # type: ignore[misc]

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(one, index, call)
    return [r for r in results if r is not None]


async def test_parallel_calls_after_idle_are_all_served(
    tmp_path: Path, backend: str, maybe_redis: RedisServer | None
) -> None:
    """10 sessions, 2 concurrent tools/call each, sent after their transports were released."""
    with fleet(tmp_path, backend, maybe_redis) as urls:
        sessions = [open_raw_session(urls[i % len(urls)]).headers["mcp-session-id"] for i in range(10)]
        async with httpx2.AsyncClient(timeout=30) as client:
            for round_ in range(3):
                await anyio.sleep(IDLE * 2.5)  # every live transport released
                calls = [
                    post(client, urls[(i + k + round_) % len(urls)], tool_call(k + 1, "add", {"a": i, "b": k}), s)
                    for i, s in enumerate(sessions)
                    for k in range(2)
                ]
                answers = await gather(*calls)
                assert [tool_value(a) for a in answers] == [i + k for i in range(10) for k in range(2)]


async def test_fifty_increments_after_idle_across_replicas_count_fifty(
    tmp_path: Path, backend: str, maybe_redis: RedisServer | None
) -> None:
    with fleet(tmp_path, backend, maybe_redis) as urls:
        session = open_raw_session(urls[0]).headers["mcp-session-id"]
        async with httpx2.AsyncClient(timeout=30) as client:
            total = 0
            for _ in range(2):
                await anyio.sleep(IDLE * 2.5)
                calls = [
                    post(client, urls[n % len(urls)], tool_call(n, "session_increment", {}), session) for n in range(50)
                ]
                answers = await gather(*calls)
                values = sorted(tool_value(a) for a in answers)
                assert values == list(range(total + 1, total + 51))  # 50 successes, each counted once
                total += 50
            final = await post(client, urls[-1], tool_call(999, "session_increment", {"by": 0}), session)
            assert tool_value(final) == 100


async def test_calls_racing_delete_each_get_a_whole_answer(
    tmp_path: Path, backend: str, maybe_redis: RedisServer | None
) -> None:
    with fleet(tmp_path, backend, maybe_redis) as urls:
        async with httpx2.AsyncClient(timeout=30) as client:
            for attempt in range(3):
                session = open_raw_session(urls[0]).headers["mcp-session-id"]
                await anyio.sleep(IDLE * 2.5 if attempt else 0)
                answers: list[Answer] = []

                async def call(n: int, session: str = session, answers: list[Answer] = answers) -> None:
                    answers.append(
                        await post(client, urls[n % len(urls)], tool_call(n, "slow", {"seconds": 0.4}), session)
                    )

                async with anyio.create_task_group() as tg:
                    for n in range(20):
                        tg.start_soon(call, n)
                    await anyio.sleep(0.1 + 0.1 * attempt)
                    deleted = await client.delete(
                        urls[-1], headers={"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
                    )
                    assert deleted.status_code == 200
                assert len(answers) == 20
                for answer in answers:
                    # Either served whole (its result) or refused whole (404 with a JSON-RPC error): never cut.
                    assert answer.status in (200, 404), answer
                    assert answer.complete and answer.result is not None, answer
                after = await post(client, urls[0], tool_call(1, "add", {"a": 1, "b": 1}), session)
                assert after.status == 404


async def test_a_repeated_request_id_in_flight_is_refused_and_the_first_completes(tmp_path: Path) -> None:
    with running(tmp_path) as rt:
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        async with httpx2.AsyncClient(timeout=30) as client:
            results: dict[str, Answer] = {}

            async def first() -> None:
                results["first"] = await post(client, rt.url, tool_call(7, "slow", {"seconds": 0.6}), session)

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await anyio.sleep(0.2)
                results["second"] = await post(client, rt.url, tool_call("7", "add", {"a": 1, "b": 2}), session)
            assert tool_value(results["first"]) == "waited 0.6s"
            second = results["second"]
            assert second.status == 409 and second.result is not None
            assert second.result["id"] == "7" and "already in flight" in second.result["error"]["message"]
            # Once the first is done, the id may be used again.
            assert tool_value(await post(client, rt.url, tool_call(7, "add", {"a": 1, "b": 2}), session)) == 3


async def test_requests_racing_expiry_are_served_or_404(tmp_path: Path) -> None:
    env = {"MCP_SESSION_TTL_SECONDS": "1", "MCP_SWEEP_INTERVAL_SECONDS": "0.1", "MCP_TRANSPORT_IDLE_SECONDS": "0.2"}
    with running(tmp_path, env) as rt:
        async with httpx2.AsyncClient(timeout=30) as client:
            sessions = [open_raw_session(rt.url).headers["mcp-session-id"] for _ in range(8)]
            await anyio.sleep(0.95)
            answers = await gather(
                *[post(client, rt.url, tool_call(n, "session_increment", {}), s) for s in sessions for n in range(3)]
            )
            for answer in answers:
                assert answer.status in (200, 404) and answer.complete, answer
                if answer.status == 200:
                    assert answer.result is not None
        assert "Traceback" not in rt.log()


def test_a_normal_delete_logs_nothing_above_info(runtime: RuntimeProcess) -> None:
    for _ in range(3):
        session = open_raw_session(runtime.url).headers["mcp-session-id"]
        headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        assert httpx2.delete(runtime.url, headers=headers).status_code == 200
    time.sleep(0.3)
    log = runtime.log()
    assert "ERROR" not in log and "crashed" not in log and "Traceback" not in log, log
    assert metric(runtime.base, "mcp_runtime_sessions_deleted_total") == 3
