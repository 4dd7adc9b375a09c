"""Losing a highly available managed Redis's primary three ways under checked load, and what the clients saw:
what e2e/test_failover_durability.py asserts on and `python -m e2e.failover_report` prints.

The load (e2e/failover_load.py) runs in a pod and checks every answer; this side finds the primary (the
Sentinels' majority, checked against the pod's own `INFO replication`), marks a phase in the load pod, loses
the primary, waits until the set is whole again (RedisReady True with every replica in sync, every pod
Ready, the Sentinels agreeing on a primary that says it is one), lets the load run on a while (a split brain
shows some seconds after a failover), and keeps the evidence: the lost primary's log up to its end, the
Sentinels' and data pods' logs, `INFO replication` of each data pod.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e import target
from e2e.fleet import EXAMPLES, ROOT, start_job, wait_for
from e2e.kube import STATE, Cluster

NAME = "demo-redis"  # examples/redis-managed.yaml, as a user applies it
LOAD = (Path(__file__).parent / "failover_load.py").read_text()
LOAD_JOB = "failover-load"
PHASE_FILE = "/tmp/failover-phase"  # failover_load.PHASE_FILE
WAYS = ("graceful", "force", "sigkill")
WAY_TITLES = {
    "graceful": "kubectl delete pod <primary> (the pre-stop switchover runs)",
    "force": "kubectl delete pod <primary> --grace-period=0 --force",
    "sigkill": "the primary's redis-server container killed with SIGKILL through the CRI (ctr tasks kill)",
}
CTRD_SOCK = STATE / "containerd" / "containerd.sock"  # where e2e/cluster.sh runs the node's containerd


def manifest(name: str = NAME, durability: str | None = None) -> dict[str, Any]:
    """examples/redis-managed.yaml, with spec.redis.highAvailability.durability when one is asked for (the
    default otherwise)."""
    body = dict(yaml.safe_load((EXAMPLES / "redis-managed.yaml").read_text()))
    body["metadata"]["name"] = name
    if durability is not None:
        body["spec"]["redis"]["highAvailability"]["durability"] = durability
    return body


def update_crds(kube: Cluster) -> None:
    """The CRDs from crds/ applied over what the cluster has: Helm installs a chart's CRDs only when they are
    missing, so a cluster used before keeps an older McpServer schema (without a newer field, or its default).
    Forced: the fields Helm created are taken over (Helm never updates them anyway)."""
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kube.run("wait", "--for=condition=Established", "-f", str(ROOT / "crds"), "--timeout=60s")


def sigkill_skip_reason() -> str | None:
    """Why the node-level kill cannot run here, or None: it needs the node's containerd, which the local cluster
    (e2e/cluster.sh, on this machine) and kind (in its node containers) put in reach."""
    if target.CLUSTER == "kind":
        return None
    if target.CLUSTER != "local":
        return f"CLUSTER={target.CLUSTER}: the node's container runtime is not on this machine (local or kind only)"
    if not CTRD_SOCK.exists():
        return f"no containerd socket at {CTRD_SOCK} (is this the local cluster, and is this run as root?)"
    return None


def node_ctr(node: str) -> list[str]:
    """The command line of `ctr` talking to `node`'s containerd: the local cluster's on this machine, or inside
    the kind node's container (kind's podman provider, or docker)."""
    if target.CLUSTER == "kind":
        engine = "podman" if os.environ.get("KIND_EXPERIMENTAL_PROVIDER") == "podman" else "docker"
        return [engine, "exec", node, "ctr"]
    return ["ctr", "--address", str(CTRD_SOCK)]


@dataclass
class Way:
    """What one way of losing the primary did, as this side saw it."""

    name: str
    primary_before: str = ""
    primary_after: str = ""
    killed_at: float = 0.0  # wall clock
    seconds_to_healthy: float | None = None
    redis_ready: str = ""
    error: str | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


class Failover:
    """One HA McpServer in `namespace` under the checked load; `lose(way)` for each way; `finish()` the report."""

    def __init__(
        self, kube: Cluster, namespace: str, evidence: Path, name: str = NAME, settle: float = 20, data_pods: int = 3
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.evidence = evidence
        self.name = name
        self.settle = settle
        self.replicas = data_pods - 1  # replicas of the primary
        self.clients = 0
        self.ways: dict[str, Way] = {}
        self.followers: list[subprocess.Popen[bytes]] = []
        evidence.mkdir(parents=True, exist_ok=True)

    # The cluster's side

    def k(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return self.kube.run("-n", self.namespace, *args, check=check, timeout=timeout)

    def data_pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=redis"
        pods = json.loads(self.k("get", "pods", "-l", selector, "-o", "json"))["items"]
        return [p for p in pods if not p["metadata"]["name"].startswith(f"{self.name}-redis-sentinel")]

    def redis_cli(self, pod: str, container: str, port_var: str, *command: str, timeout: float = 20) -> str:
        """redis-cli in a pod of the set, with the password and port from its environment (the operator sets)."""
        script = f'REDISCLI_AUTH="$REDIS_PASSWORD" timeout 5 redis-cli --no-auth-warning -p "${port_var}" "$@"'
        return self.k(
            "exec", pod, "-c", container, "--", "sh", "-c", script, "cli", *command, check=False, timeout=timeout
        )

    def sentinel_primary(self) -> str:
        """The primary's host as a majority of the Sentinels name it, or ''."""
        votes: Counter[str] = Counter()
        for i in range(3):
            pod = f"{self.name}-redis-sentinel-{i}"
            out = self.redis_cli(pod, "sentinel", "SENTINEL_PORT", "SENTINEL", "get-master-addr-by-name", "mcp")
            if out.strip():
                votes[out.splitlines()[0].strip()] += 1
        if not votes:
            return ""
        host, count = votes.most_common(1)[0]
        return host if count >= 2 else ""

    def replication(self, pod: str) -> dict[str, str]:
        """The pod's own `INFO replication`, as fields."""
        out = self.redis_cli(pod, "redis", "REDIS_PORT", "INFO", "replication")
        return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)

    def durability(self) -> str:
        """spec.redis.highAvailability.durability as the API server keeps it (with its default), or 'unset'."""
        spec = self.kube.json("get", "mcps", self.name, "-n", self.namespace)["spec"]
        return str(spec.get("redis", {}).get("highAvailability", {}).get("durability", "unset"))

    def redis_ready(self) -> dict[str, Any]:
        status = self.kube.json("get", "mcps", self.name, "-n", self.namespace).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "RedisReady"), {})

    def unready_pods(self) -> list[str]:
        """Pods of the McpServer (servers, data pods, Sentinels) that are not Ready (the load's Job aside)."""
        pods = self.kube.json("get", "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.name}")
        out = []
        for pod in pods["items"]:
            conditions = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
            if pod["metadata"].get("deletionTimestamp") or conditions.get("Ready") != "True":
                out.append(pod["metadata"]["name"])
        return out

    def unhealthy(self) -> tuple[str, str]:
        """('', the primary's pod) when the set is whole, else (what is not, ''). Whole: a majority of the
        Sentinels name a primary; it says it is one, with every replica online; every other data pod says it is
        a replica of it with its link up; RedisReady is True, names that primary and every replica in sync;
        every pod of the McpServer is Ready."""
        if unready := self.unready_pods():
            return f"pods not Ready: {unready}", ""
        if len(self.data_pods()) != self.replicas + 1:
            return f"{len(self.data_pods())} data pods", ""
        host = self.sentinel_primary()
        primary = host.split(".")[0]
        if not primary.startswith(f"{self.name}-redis-"):
            return f"the Sentinels agree on no primary ({host!r})", ""
        info = self.replication(primary)
        online = [k for k, v in info.items() if k.startswith("slave") and k[5:].isdigit() and "state=online" in v]
        if info.get("role") != "master" or len(online) != self.replicas:
            return f"{primary}, the Sentinels' primary, says role {info.get('role')}, {len(online)} replicas online", ""
        for pod in self.data_pods():
            name = pod["metadata"]["name"]
            if name == primary:
                continue
            info = self.replication(name)
            role, of, link = info.get("role"), info.get("master_host"), info.get("master_link_status")
            if role != "slave" or of != host or link != "up":
                return f"{name}: role {role} of {of}, link {link}", ""
        ready = self.redis_ready()
        message = str(ready.get("message", ""))
        in_sync = f"{self.replicas} of {self.replicas} replicas in sync"
        if ready.get("status") != "True" or not message.startswith(f"primary {host};") or in_sync not in message:
            return f"RedisReady {ready.get('status')}: {message}", ""
        return "", primary

    def wait_healthy(self, timeout: float = 300, trail: list[str] | None = None) -> str:
        """The primary's pod once the set is whole (see `unhealthy`); what was not whole on the way, each time it
        changed, into `trail`."""
        started = time.monotonic()
        deadline = started + timeout
        last = ""
        while True:
            why, primary = self.unhealthy()
            if primary:
                return primary
            if trail is not None and why != last:
                trail.append(f"+{time.monotonic() - started:.1f}s {why}"[:400])
            last = why
            assert time.monotonic() < deadline, f"the Redis set not whole again after {timeout:.0f} s: {why}"
            time.sleep(1)

    # The load's side

    def start_load(self, sessions: int = 12, handles: int = 3, pause: float = 0.02) -> None:
        url = self.kube.json("get", "mcps", self.name, "-n", self.namespace)["status"]["url"]
        command = ["python3", "-c", LOAD, url, str(sessions), str(handles), str(pause), "3600"]
        start_job(self.kube, self.namespace, LOAD_JOB, command)
        self.clients = sessions + handles

        def warm() -> bool:
            progress = self.progress()
            return bool(progress) and progress.get("clients_answered") == self.clients and progress["acked"] > 0

        wait_for("every load client answered", warm, 180)

    def load_pod(self) -> str:
        pods = self.kube.json("get", "pods", "-n", self.namespace, "-l", f"job-name={LOAD_JOB}")["items"]
        running = [str(p["metadata"]["name"]) for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        assert running, f"the load pod is not running: {[p['status'] for p in pods]}"
        return running[0]

    def progress(self) -> dict[str, Any]:
        out = self.k("logs", f"job/{LOAD_JOB}", "--tail=5", check=False)
        for line in reversed(out.strip().splitlines()):
            if line.startswith('{"progress"'):
                return dict(json.loads(line)["progress"])
        return {}

    def mark(self, phase: str) -> None:
        """The load counts what follows under `phase`."""
        new = f"{PHASE_FILE}.new"
        write = f"import os; open({new!r}, 'w').write({phase!r}); os.replace({new!r}, {PHASE_FILE!r})"
        self.k("exec", self.load_pod(), "--", "python3", "-c", write)

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        """Stops the load; its report, with what this side saw of each way."""
        self.mark("stop")
        done = self.k("wait", "--for=condition=Complete", f"job/{LOAD_JOB}", f"--timeout={int(timeout)}s", check=False)
        logs = self.k("logs", f"job/{LOAD_JOB}", check=False)
        (self.evidence / "load.log").write_text(logs)
        for follower in self.followers:
            follower.terminate()
        assert done, f"the load did not complete: {logs[-2000:]}"
        report = dict(json.loads(logs.strip().splitlines()[-1]))
        report["ways"] = {name: way.__dict__ for name, way in self.ways.items()}
        report["durability"] = self.durability()
        return report

    # Losing the primary

    def lose(self, way: str) -> Way:
        """Loses the primary `way`, waits until the set is whole again and the load ran on `settle` seconds."""
        record = self.ways.setdefault(way, Way(way))
        if way == "sigkill" and (reason := sigkill_skip_reason()):
            record.skipped = reason
            return record
        try:
            self._lose(way, record)
        except (AssertionError, subprocess.SubprocessError) as error:
            record.error = str(error)[:2000]
        finally:
            self.keep_evidence(way)
        return record

    def _lose(self, way: str, record: Way) -> None:
        primary = self.wait_healthy()
        record.primary_before = primary
        pod = self.kube.json("get", "pod", primary, "-n", self.namespace)
        uid = pod["metadata"]["uid"]
        container = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "redis")
        restarts = int(container.get("restartCount", 0))
        self.follow(primary, f"{way}-{primary}-until-lost.log")
        self.info_replication(f"{way}-before")
        self.mark(way)
        record.killed_at = time.time()
        started = time.monotonic()
        if way == "graceful":
            self.k("delete", "pod", primary, "--wait=false")
        elif way == "force":
            self.k("delete", "pod", primary, "--grace-period=0", "--force", "--wait=false")
        elif way == "sigkill":
            self.cri_kill(str(pod["spec"]["nodeName"]), str(container["containerID"]))
        else:
            raise ValueError(way)

        def back() -> bool:
            now = self.kube.json("get", "pod", primary, "-n", self.namespace) if self.exists(primary) else None
            if now is None:
                return False
            if way == "sigkill":
                status = next(c for c in now["status"].get("containerStatuses") or [] if c["name"] == "redis")
                return int(status.get("restartCount", 0)) > restarts
            return bool(now["metadata"]["uid"] != uid)

        wait_for(f"{primary} replaced or restarted", back, 180)
        record.primary_after = self.wait_healthy(300, record.notes)
        record.seconds_to_healthy = round(time.monotonic() - started, 1)
        record.redis_ready = str(self.redis_ready().get("message", ""))
        time.sleep(self.settle)

    def exists(self, pod: str) -> bool:
        return bool(self.k("get", "pod", pod, "--ignore-not-found", "-o", "name", check=False).strip())

    def cri_kill(self, node: str, container_id: str) -> None:
        """SIGKILL to the container's task through its node's containerd (as the kernel's OOM killer or a crash
        would end it: no shutdown, no pre-stop)."""
        runtime, _, cid = container_id.partition("://")
        assert runtime == "containerd", f"not a containerd container: {container_id}"
        command = [*node_ctr(node), "--namespace", "k8s.io", "tasks", "kill", "-s", "SIGKILL", cid]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"

    # Evidence

    def follow(self, pod: str, file: str) -> None:
        """The pod's log, followed until the pod or its container ends (a deleted pod's log goes with it)."""
        with (self.evidence / file).open("wb") as out:
            self.followers.append(
                subprocess.Popen(
                    ["kubectl", "logs", "-f", "--timestamps", "-n", self.namespace, pod, "-c", "redis"],
                    env=self.kube.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    def info_replication(self, tag: str) -> None:
        lines = []
        for pod in self.data_pods():
            name = pod["metadata"]["name"]
            lines.append(f"== {name}\n{self.redis_cli(name, 'redis', 'REDIS_PORT', 'INFO', 'replication')}")
        (self.evidence / f"{tag}-info-replication.txt").write_text("\n".join(lines))

    def keep_evidence(self, tag: str) -> None:
        self.info_replication(f"{tag}-after")
        selector = f"app.kubernetes.io/instance={self.name}"
        for pod in self.kube.json("get", "pods", "-n", self.namespace, "-l", selector)["items"]:
            name = pod["metadata"]["name"]
            if "-redis-" not in name:
                continue
            logs = self.k("logs", name, "--timestamps", "--tail=-1", check=False)
            previous = self.k("logs", name, "--timestamps", "--previous", check=False)
            text = (f"--- previous container\n{previous}\n--- current container\n" if previous else "") + logs
            (self.evidence / f"{tag}-{name}.log").write_text(text)
        servers = self.k(
            "logs", "-l", f"{selector},app.kubernetes.io/component=server", "--tail=-1", "--prefix", check=False
        )
        (self.evidence / f"{tag}-servers.log").write_text(servers)


def figures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per way, the figures a reader wants (the full report keeps the rest)."""
    out: dict[str, dict[str, Any]] = {}
    for name in (*("setup",), *WAYS):
        phase = report["phases"].get(name)
        way = report.get("ways", {}).get(name, {})
        if phase is None:
            if way:
                out[name] = {"skipped": way.get("skipped"), "error": way.get("error")}
            continue
        out[name] = {
            "acked": phase["acked"],
            "503": phase["unavailable_503"] + phase["unavailable_503_without_retry_after"],
            "other_failures": sum(phase["other_failures"].values()) + phase["store_unavailable_tool_errors"],
            "longest_without_any_answer_s": phase["longest_without_any_answer_s"],
            "longest_one_client_waited_s": phase["longest_one_client_waited_s"],
            "rollbacks": phase["rollbacks"],
            "largest_rollback": phase["largest_rollback"],
            "split_brain_flips": phase["split_brain_flips"],
            "clients_rolled_back_repeatedly": phase.get("clients_rolled_back_repeatedly", 0),
            "sessions_lost": phase["sessions_lost"],
            "handles_lost": phase["handles_lost"],
            "primary": f"{way.get('primary_before', '')} -> {way.get('primary_after', '')}" if way else "",
            "seconds_to_healthy": way.get("seconds_to_healthy"),
            "error": way.get("error"),
        }
    return out


def table(report: dict[str, Any]) -> str:
    """The figures as a text table, one row per way."""
    rows = figures(report)
    columns = [
        ("acked", "acked"),
        ("503", "503"),
        ("other_failures", "other"),
        ("longest_without_any_answer_s", "no answer s"),
        ("longest_one_client_waited_s", "1 client s"),
        ("rollbacks", "rollbacks"),
        ("largest_rollback", "max rollback"),
        ("split_brain_flips", "flips"),
        ("sessions_lost", "s lost"),
        ("handles_lost", "h lost"),
        ("seconds_to_healthy", "healthy s"),
        ("primary", "primary"),
    ]
    lines = ["way       " + "".join(f"{title:>14}" for _, title in columns[:-1]) + "  primary"]
    for name, row in rows.items():
        if "acked" not in row:
            lines.append(f"{name:<10}skipped: {row.get('skipped')} {row.get('error') or ''}")
            continue
        cells = "".join(f"{row[key]!s:>14}" for key, _ in columns[:-1])
        lines.append(f"{name:<10}{cells}  {row['primary']}")
        if row.get("error"):
            lines.append(f"          error: {row['error'][:300]}")
    return "\n".join(lines)


def run_all(
    failover: Failover,
    ways: tuple[str, ...] = WAYS,
    log: Callable[[str], None] = print,
    load: tuple[int, int, float] = (12, 3, 0.02),
) -> dict[str, Any]:
    """Every way in turn under one load (sessions, handles, pause between two calls of a client); a way that
    could not finish (the set never whole again) ends the run."""
    failover.start_load(*load)
    time.sleep(failover.settle)
    for way in ways:
        log(f"[failover] {time.strftime('%H:%M:%S')} {way}: {WAY_TITLES[way]}")
        record = failover.lose(way)
        log(f"[failover] {time.strftime('%H:%M:%S')} {way}: {record.__dict__}")
        if record.error:
            break
    return failover.finish()
