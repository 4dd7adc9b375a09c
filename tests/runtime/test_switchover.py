"""The managed Redis's own scripts keep one primary at a time and lose no acknowledged write on a switchover.

Real redis-server processes on loopback, a primary, two replicas and three Sentinels, each started by the
very scripts the operator mounts into its Redis pods (operator/mcp_operator/scripts) with the environment it
renders, only the addresses changed (tests/support/redis_scripts.py). Clients increment one counter and
record every value a write was acknowledged with: a value lower than one acknowledged before is a rollback,
a value acknowledged twice is two primaries taking writes at once.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel as SentinelClient

from tests.support.procs import free_port
from tests.support.redis_scripts import PASSWORD, ScriptedGroup, scripted_group
from tests.support.redis_sentinel import MASTER
from tests.support.redis_server import RedisServer, wait_answering

KEY = "counter"
TIMEOUT = 0.5  # each client call's, as the runtime bounds its Redis calls
NO_RETRY = Retry(NoBackoff(), 0)  # a write is sent once: what it answered is what the test records


@dataclass
class Ack:
    sent: float  # time.monotonic() when the write was sent
    value: int  # the counter's value the write was acknowledged with
    replicas: int | None  # what WAIT answered (None: not asked)


class Writer(threading.Thread):
    """INCR in a loop, through the Sentinels (as the runtime does) or to one node's address (as a client that
    has not moved yet does); with `wait`, each INCR is followed by WAIT 1 on the same connection."""

    def __init__(self, client: redis.Redis, wait: bool = False) -> None:
        super().__init__(daemon=True)
        self.client, self.wait = client, wait
        self.acks: list[Ack] = []
        self.errors: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                if self.wait:
                    pipe = self.client.pipeline(transaction=False)
                    pipe.incr(KEY)
                    pipe.execute_command("WAIT", 1, 200)  # type: ignore[no-untyped-call]
                    value, replicas = pipe.execute()
                    self.acks.append(Ack(sent, int(value), int(replicas)))
                else:
                    self.acks.append(Ack(sent, int(self.client.incr(KEY)), None))
            except redis.RedisError as error:
                self.errors.append((sent, f"{type(error).__name__}: {error}"))
                self.stop.wait(0.02)

    def acknowledged(self, since: float = 0.0) -> list[int]:
        """Values acknowledged for writes sent at `since` or later (with WAIT: held by a replica too)."""
        return [a.value for a in self.acks if a.sent >= since and (a.replicas is None or a.replicas >= 1)]

    def finish(self) -> None:
        self.stop.set()
        self.join(10)


def through_sentinels(group: ScriptedGroup) -> redis.Redis:
    sentinels = SentinelClient(  # type: ignore[no-untyped-call]
        [("127.0.0.1", s.port) for s in group.sentinels],
        sentinel_kwargs={"password": PASSWORD, "socket_timeout": TIMEOUT},
        password=PASSWORD,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=NO_RETRY,
    )
    primary: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
        MASTER, socket_timeout=TIMEOUT, retry=NO_RETRY
    )
    return primary


def direct(server: RedisServer) -> redis.Redis:
    return redis.Redis(
        port=server.port, password=PASSWORD, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry=NO_RETRY
    )


def assert_one_history(group: ScriptedGroup, *writers: Writer) -> int:
    """No writer saw the counter go back, no value was acknowledged twice (two primaries), and the primary the
    Sentinels name now holds every acknowledged increment. Returns the highest value acknowledged."""
    values = []
    for writer in writers:
        seen = writer.acknowledged()
        assert seen == sorted(set(seen)), f"the counter went back: {rollbacks(seen)}"
        values += seen
    assert len(values) == len(set(values)), "a value acknowledged twice: two primaries took writes"
    final = int(group.primary().client().get(KEY) or 0)
    highest = max(values)
    assert final >= highest, f"acknowledged up to {highest}, the primary holds {final}"
    return highest


def rollbacks(values: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for a, b in itertools.pairwise(values) if b <= a][:10]


def described(answer: object) -> str:
    if isinstance(answer, Exception):
        return f"{type(answer).__name__}: {answer}"
    return f"answered {answer}"


def longest_gap(acks: list[Ack]) -> float:
    times = [a.sent for a in acks]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def test_a_switchover_under_writes_loses_nothing(tmp_path: Path) -> None:
    with scripted_group(tmp_path / "redis") as group:
        old = group.primary()
        writer = Writer(through_sentinels(group))
        stuck = Writer(direct(old))  # a client still on the old primary's address
        writer.start()
        stuck.start()
        time.sleep(1.0)
        assert writer.acknowledged() and stuck.acknowledged()

        started = time.monotonic()
        done = group.pre_stop(old)
        took = time.monotonic() - started
        time.sleep(1.0)  # the writer finds the new primary
        writer.finish()
        stuck.finish()

        print(
            f"\npre-stop took {took:.2f}s; writes through the Sentinels: {len(writer.acks)} acknowledged, the "
            f"longest wait between two {longest_gap(writer.acks):.2f}s, {len(writer.errors)} errors; "
            f"to the old primary: {len(stuck.acks)} acknowledged\n{done.stdout}"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "writes paused at offset" in done.stdout and "every online replica holds offset" in done.stdout
        new = group.primary()
        assert new.port != old.port
        assert f"this node is a replica of 127.0.0.1:{new.port}" in done.stdout
        assert group.role(old) == ("slave", new.port)
        group.wait_new_primary(old.port, timeout=5)  # every Sentinel names the new primary
        highest = assert_one_history(group, writer, stuck)
        # The writes kept flowing through the new primary.
        assert highest > max(stuck.acknowledged()) and writer.acks[-1].sent > started + took
        # The old primary answered READONLY once it was a replica, and acknowledged nothing after.
        assert any("ReadOnlyError" in e or "read only" in e for _, e in stuck.errors), stuck.errors[:5]
        assert all(a.sent < started + took for a in stuck.acks)


def test_pre_stop_on_a_replica_does_nothing(tmp_path: Path) -> None:
    with scripted_group(tmp_path / "redis") as group:
        old = group.primary()
        replica = next(s for s in group.servers if s is not old)
        done = group.pre_stop(replica, timeout=10)
        assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
        assert group.primary() is old and group.role(replica) == ("slave", old.port)


def test_a_primary_restarted_at_once_comes_back_as_a_replica(tmp_path: Path) -> None:
    """kill -9 of the primary, and a new process on its port and data started at once through redis-start.sh
    (a crashed container restarted, a force-deleted pod replaced): the Sentinels still name it the primary,
    yet it takes no write, has a replica promoted and comes back as that replica's replica."""
    with scripted_group(tmp_path / "redis") as group:
        old = group.primary()
        writer = Writer(through_sentinels(group), wait=True)
        # Clients the Sentinels sent to this address before the failover (WAIT: only what a replica confirmed
        # counts as acknowledged, as a write acknowledged in the instant before a kill -9 may be lost).
        stuck = Writer(direct(old), wait=True)
        writer.start()
        stuck.start()
        time.sleep(1.0)
        assert writer.acknowledged()

        assert old.process is not None
        old.process.send_signal(signal.SIGKILL)
        old.process.wait(5)
        killed = time.monotonic()
        assert group.primary_port() == old.port  # the Sentinels have not noticed yet
        group.start_node(old, wait=False)
        group.wait_new_primary(old.port)
        new = group.primary()
        came_back = group.wait_role(old, ("slave", new.port), timeout=60)
        time.sleep(0.5)
        writer.finish()
        stuck.finish()

        log = group.log(old)
        print(f"\nback as a replica {came_back:.2f}s after the Sentinels named {new.port}\n{log[-1500:]}")
        assert "the Sentinels name this node (127.0.0.1:" in log and "the primary: having a replica" in log
        assert f"starting as a replica of 127.0.0.1:{new.port}" in log
        # No write to the old address was answered after the kill: the new process never served as a primary.
        answered = [a.value for a in stuck.acks if a.sent >= killed]
        assert not answered, answered
        # Every write a replica confirmed (WAIT) survived: the Sentinels promoted the replica with the most.
        assert_one_history(group, writer, stuck)


def test_a_primary_isolated_then_resumed_takes_no_write(tmp_path: Path) -> None:
    """SIGSTOP of the primary until the Sentinels promote a replica, then SIGCONT: the old primary, cut off
    from its replicas, refuses writes (min-replicas-to-write) or answers them without a replica confirming
    them, and ends as a replica of the new primary."""
    with scripted_group(tmp_path / "redis") as group:
        old = group.primary()
        writer = Writer(through_sentinels(group), wait=True)
        stuck = Writer(direct(old), wait=True)  # writes sent to the isolated primary, queued while it is stopped
        writer.start()
        stuck.start()
        time.sleep(1.0)
        assert old.process is not None
        old.process.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        # One more write, from a client that waits as long as it takes: Redis reads it the moment it resumes,
        # before it has noticed that its replicas are gone.
        queued: list[object] = []
        patient = redis.Redis(port=old.port, password=PASSWORD, socket_timeout=60, retry=NO_RETRY)

        def send_queued() -> None:
            pipe = patient.pipeline(transaction=False)
            pipe.incr(KEY)
            pipe.execute_command("WAIT", 1, 200)  # type: ignore[no-untyped-call]
            try:
                queued.append(pipe.execute())
            except redis.RedisError as error:
                queued.append(error)

        sender = threading.Thread(target=send_queued, daemon=True)
        sender.start()
        try:
            group.wait_new_primary(old.port)
        finally:
            old.process.send_signal(signal.SIGCONT)
        new = group.primary()
        sender.join(10)
        assert queued, "the write queued while the primary was stopped got no answer"
        if isinstance(queued[0], list):  # taken, but no replica holds it: never acknowledged
            assert queued[0][1] == 0, queued
        time.sleep(3.0)  # past min-replicas-max-lag
        # Cut off from its replicas, it refuses plain writes (or is a replica already).
        try:
            direct(old).incr("another-key")
            raise AssertionError("the isolated primary took a write 3 s after it resumed")
        except redis.ResponseError as error:
            assert "NOREPLICAS" in str(error) or "READONLY" in str(error), error
        group.wait_role(old, ("slave", new.port), timeout=30)
        writer.finish()
        stuck.finish()

        unconfirmed = [a.value for a in stuck.acks if a.sent >= stopped]
        print(
            f"\nwrites sent to the isolated primary: {len(unconfirmed)} answered, none confirmed by a replica; "
            f"{len(stuck.errors)} refused or timed out: {sorted({e.split(':')[0] for _, e in stuck.errors})}; "
            f"the write queued while it was stopped: {described(queued[0])}"
        )
        assert not stuck.acknowledged(since=stopped), "a replica confirmed a write sent to the isolated primary"
        assert_one_history(group, writer, stuck)


def test_a_primary_whose_replicas_all_hang_refuses_writes_within_seconds(tmp_path: Path) -> None:
    """min-replicas-to-write 1, min-replicas-max-lag 2 (redis-start.sh, from the operator's defaults): a primary
    that no replica acknowledges any more stops taking writes into the void."""
    with scripted_group(tmp_path / "redis") as group:
        primary = group.primary()
        client = direct(primary)
        assert client.incr("k") == 1
        replicas = [s for s in group.servers if s is not primary]
        for replica in replicas:
            assert replica.process is not None
            replica.process.send_signal(signal.SIGSTOP)
        hung = time.monotonic()
        try:
            refused = None
            while refused is None and time.monotonic() - hung < 10:
                try:
                    client.incr("k")
                    time.sleep(0.05)
                except redis.ResponseError as error:
                    refused = time.monotonic() - hung
                    assert "NOREPLICAS" in str(error), error
        finally:
            for replica in replicas:
                assert replica.process is not None
                replica.process.send_signal(signal.SIGCONT)
        print(f"\nwrites refused {refused}s after the replicas hung")
        assert refused is not None and refused < 5.0  # max-lag 2 s, checked every second
        # Once a replica acknowledges again, writes resume.
        deadline = time.monotonic() + 10
        while True:
            try:
                client.incr("k")
                break
            except redis.ResponseError:
                assert time.monotonic() < deadline, "writes did not resume with the replicas back"
                time.sleep(0.1)


def test_a_primary_the_sentinels_did_not_pick_is_found_dead_and_comes_back_as_their_replica(tmp_path: Path) -> None:
    """Every pod of the set restarted at once (Parallel): the first data node and another start while no
    Sentinel answers yet (the first as a primary, the other as its replica), and the new Sentinels, started
    meanwhile, picked the one node that said it was a primary then (the old primary, still stopping). The
    Sentinels' primary is left with no replica and refuses every write (min-replicas-to-write): the set is
    stuck until the liveness probe (redis-live.sh) fails on the nodes whose role disagrees with the Sentinels,
    and the kubelet restarts them through redis-start.sh as replicas of the Sentinels' primary."""
    with scripted_group(tmp_path / "redis") as group:
        first, other, chosen = group.servers
        for server in group.servers:
            done = group.live(server)
            assert done.returncode == 0, (server.port, done.stdout, done.stderr)
        first.client().set(KEY, 41)
        group.wait_replicas_in_sync(2)

        # The set going down at once: the Sentinels first, then two data nodes; `chosen` is still up and,
        # as the old primary would be, says it is the primary.
        for sentinel in group.sentinels:
            sentinel.stop()
        for server in (first, other):
            assert server.process is not None
            server.process.kill()
            server.process.wait(5)
        assert chosen.client().replicaof("NO", "ONE") == "OK"
        # The new Sentinels start before `first` answers: the one primary they find is `chosen`.
        for sentinel in group.sentinels:
            group.start_sentinel(sentinel)
        for sentinel in group.sentinels:
            wait_answering(sentinel.client, sentinel.workdir / "sentinel.log", "sentinel-start.sh")
        assert group.primary_port() == chosen.port
        # Meanwhile `first` and `other` started while no Sentinel answered them.
        nobody = {"SENTINEL_ADDRESSES": f"127.0.0.1:{free_port()}"}
        group.start_node(first, env=nobody)
        group.start_node(other, env=nobody)
        group.wait_role(first, ("master", None))
        group.wait_role(other, ("slave", first.port))
        time.sleep(1.5)  # past min-replicas-max-lag: `chosen` has had no replica for that long
        try:
            chosen.client().incr(KEY)
            raise AssertionError("the Sentinels' primary took a write with no replica")
        except redis.ResponseError as error:
            assert "NOREPLICAS" in str(error), error

        assert group.live(chosen).returncode == 0
        first_live, other_live = group.live(first), group.live(other)
        assert first_live.returncode == 1 and other_live.returncode == 1
        named = f"the Sentinels name 127.0.0.1:{chosen.port}"
        assert first_live.stdout.strip() == f"this node is a primary, but {named}", first_live.stdout
        assert other_live.stdout.strip() == f"this node replicates from 127.0.0.1:{first.port}, but {named}"

        # What the kubelet does on a failed liveness probe: the container restarted, through redis-start.sh.
        for server in (first, other):
            assert server.process is not None
            server.process.terminate()
            server.process.wait(15)
            group.start_node(server)
            group.wait_role(server, ("slave", chosen.port))
        group.wait_replicas_in_sync(2)
        assert chosen.client().incr(KEY) == 42  # writes taken again, on the history the Sentinels chose
        for server in group.servers:
            done = group.live(server)
            assert done.returncode == 0, (server.port, done.stdout, done.stderr)
        group.wait_sentinels_know(2)
