"""The `Verified` condition's probes, scheduled per McpServer: after a rollout settles, then periodically.

At most one probe per McpServer is pending or running at a time. Probes run in a small thread pool of their
own (each may take up to its timeout), so they never hold up kopf's handlers; each runs the async probe in its
own event loop (`anyio.run`). Like the re-checks, these are not kopf timers or daemons: either would put a
finalizer on every McpServer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from mcp_operator.api import GROUP, KIND, VERSION, McpServerSpec
from mcp_operator.generated_secrets import decode
from mcp_operator.kube import Kube
from mcp_operator.mcp_probe import OAuthProbe, Target, probe
from mcp_operator.names import Owner
from mcp_operator.status import condition_entry
from mcp_operator.verification import (
    SETTLE_SECONDS,
    VERIFIED,
    ProbeResult,
    first_probe_due,
    next_period,
    summary,
    verdict,
    verified_condition,
)

logger = logging.getLogger(__name__)

PROBE_WORKERS = 2


class Verifier:
    """Pending and running probes, by McpServer uid. `consider` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, kube: Kube) -> None:
        self._loop = loop
        self._kube = kube
        self._pool = ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="verify")
        self._pending: dict[str, asyncio.TimerHandle] = {}  # only touched on the loop
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def consider(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """After a status is computed: probe soon when a rollout has just settled; otherwise make sure the
        periodic probe is scheduled."""
        meta = body["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]), str(meta["uid"]))
        soon = first_probe_due(status, int(meta.get("generation") or 0))
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule, key, SETTLE_SECONDS if soon else None)

    def probe_soon(self, body: Mapping[str, Any]) -> None:
        """A probe now (a user asked, through the reconcile-request annotation)."""
        meta = body["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]), str(meta["uid"]))
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule, key, 0.0)

    def stop(self) -> None:
        """Drop pending probes (on the loop, when the operator stops); running ones finish."""
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, key: tuple[str, str, str], delay: float | None) -> None:
        """`delay` None: keep what is pending, else schedule the next periodic probe."""
        uid = key[2]
        pending = self._pending.get(uid)
        if pending is not None:
            if delay is None or pending.when() - self._loop.time() <= delay:
                return
            pending.cancel()
        wait = next_period() if delay is None else delay
        self._pending[uid] = self._loop.call_later(wait, self._start, key)

    def _start(self, key: tuple[str, str, str]) -> None:
        uid = key[2]
        self._pending.pop(uid, None)
        with self._lock:
            if uid in self._running:
                return  # the running probe schedules the next one
            self._running.add(uid)
        self._loop.run_in_executor(self._pool, self._run, key)

    def _run(self, key: tuple[str, str, str]) -> None:
        namespace, name, uid = key
        again = True
        try:
            again = verify(self._kube, namespace, name, uid)
        except Exception:
            logger.exception("could not verify %s/%s", namespace, name)
        finally:
            with self._lock:
                self._running.discard(uid)
        if again and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule, key, None)


def verify(kube: Kube, namespace: str, name: str, uid: str, run: Callable[..., ProbeResult] = anyio.run) -> bool:
    """Probe one McpServer and write its `Verified` condition; False when it is gone (no next probe)."""
    body = kube.get(f"{GROUP}/{VERSION}", KIND, name, namespace)
    if body is None or body["metadata"]["uid"] != uid or body["metadata"].get("deletionTimestamp"):
        return False
    spec = McpServerSpec.model_validate(dict(body.get("spec") or {}))
    owner = Owner(name, namespace, uid)
    target = probe_target(kube, owner, spec)
    result = run(probe, target) if target is not None and target.pods else ProbeResult()
    found = verdict(result, len(target.pods) if target is not None else 0)
    generation = int(body["metadata"].get("generation") or 0)
    status = dict(body.get("status") or {})
    previous = {c["type"]: c for c in status.get("conditions") or []}
    entry = condition_entry(VERIFIED, found.ok, str(found.reason), found.message, previous, generation)
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != VERIFIED] + [entry]
    patch: dict[str, Any] = {"conditions": conditions}
    if found.ok:
        patch["verified"] = summary(result)
    before = verified_condition(status)
    if before is None or before.get("status") != entry["status"] or before.get("message") != entry["message"]:
        logger.info("%s/%s: Verified=%s: %s", namespace, name, entry["status"], found.message)
    kube.patch_status(f"{GROUP}/{VERSION}", KIND, name, namespace, patch)
    return True


def probe_target(kube: Kube, owner: Owner, spec: McpServerSpec) -> Target | None:
    """The Service's address, the ready server pods and the token the probe sends; None without a Service."""
    service = kube.get("v1", "Service", owner.server, owner.namespace)
    if service is None or not (service.get("spec") or {}).get("clusterIP"):
        return None
    selector = ",".join(f"{k}={v}" for k, v in owner.selector("server").items())
    pods = []
    for pod in kube.list("v1", "Pod", owner.namespace, label_selector=selector):
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            pods.append((str(pod["metadata"]["name"]), str(status["podIP"]), spec.port))
    port = spec.service.port
    host = owner.service_host() + ("" if port == 80 else f":{port}")
    return Target(
        service_ip=str(service["spec"]["clusterIP"]),
        port=port,
        path=spec.path,
        host=host,
        pods=sorted(pods),
        token=bearer_token(kube, owner, spec),
        oauth=oauth_probe(kube, owner, spec),
    )


def oauth_probe(kube: Kube, owner: Owner, spec: McpServerSpec) -> OAuthProbe | None:
    """spec.auth.oauth for the probe, with the probe client's secret read (no client when its Secret or key
    is missing: the probe then says what to set)."""
    oauth = spec.auth.oauth
    if oauth is None:
        return None
    client = None
    if oauth.probe_client is not None:
        ref = oauth.probe_client.client_secret_ref
        secret = kube.get("v1", "Secret", ref.name, owner.namespace)
        value = (decode(secret, ref.key) or "").strip() if secret else ""
        if value:
            client = (oauth.probe_client.client_id, value)
    scopes = oauth.probe_client.scopes if oauth.probe_client and oauth.probe_client.scopes else oauth.required_scopes
    return OAuthProbe(oauth.issuer, oauth.resource, client, tuple(scopes))


def bearer_token(kube: Kube, owner: Owner, spec: McpServerSpec) -> str | None:
    """The first token of the Secret the McpServer's auth names (the server accepts any of them)."""
    ref = spec.auth.bearer_token_secret_ref
    if ref is None:
        return None
    secret = kube.get("v1", "Secret", ref.name, owner.namespace)
    tokens = (decode(secret, ref.key) or "") if secret else ""
    return next((t.strip() for t in tokens.splitlines() if t.strip()), None)
