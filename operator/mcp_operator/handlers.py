"""The kopf handlers: thin, they read, call the pure functions, apply, and write status."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import cache
from typing import Any

import kopf
from pydantic import ValidationError

from mcp_operator.api import GROUP, PLURAL, VERSION, McpServerSpec
from mcp_operator.config import OperatorSettings, effective_spec
from mcp_operator.desired import Generated, desired_state, uses_managed_redis
from mcp_operator.kube import Kube
from mcp_operator.metrics import forget, record_ready, timed_reconcile
from mcp_operator.names import MANAGED_BY, Owner
from mcp_operator.secrets import decode, new_secret_value
from mcp_operator.status import compute_status
from mcp_operator.workload import referenced_secrets

logger = logging.getLogger(__name__)
RESYNC_SECONDS = 20.0


@cache
def kube() -> Kube:
    return Kube()


@cache
def operator_settings() -> OperatorSettings:
    return OperatorSettings()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING  # Kubernetes Events for warnings and errors
    settings.watching.server_timeout = 300
    settings.peering.lifetime = 20  # a standby replica takes over about 20 s after the active one dies
    settings.execution.max_workers = 16  # sync handlers run in threads; the API calls are I/O bound
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mcpfleet.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="mcpfleet.dev")


def _problems(error: ValidationError) -> list[str]:
    return [f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]


def _generated(k: Kube, owner: Owner, spec: McpServerSpec) -> Generated:
    """The requestState keys and Redis password: read back when they exist, made once when they do not."""
    existing = k.get("v1", "Secret", owner.request_state_secret, owner.namespace)
    keys_text = decode(existing, "keys") if existing else None
    keys = keys_text.splitlines() if keys_text else [new_secret_value()]
    password = None
    if uses_managed_redis(spec):
        redis_secret = k.get("v1", "Secret", owner.redis_secret, owner.namespace)
        password = (decode(redis_secret, "password") if redis_secret else None) or new_secret_value()
    return Generated(request_state_keys=keys, redis_password=password)


def _secret_versions(k: Kube, owner: Owner, spec: McpServerSpec, generated: Generated) -> dict[str, str]:
    """Digests of the Secrets the pods read, so that changing one rolls the pods."""
    versions = {}
    known = {owner.request_state_secret: generated.request_state_keys, owner.redis_secret: generated.redis_password}
    for name in referenced_secrets(owner, spec):
        if name in known:
            data: Any = known[name]
        else:
            secret = k.get("v1", "Secret", name, owner.namespace)
            data = (secret or {}).get("data")
        versions[name] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return versions


def reconcile(body: kopf.Body, patch: kopf.Patch) -> None:
    with timed_reconcile() as outcome:
        outcome["result"] = _reconcile(body, patch)


def _reconcile(body: kopf.Body, patch: kopf.Patch) -> str:
    meta = body["metadata"]
    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    generation = int(meta.get("generation") or 0)
    previous = list((body.get("status") or {}).get("conditions") or [])
    k = kube()
    try:
        spec = effective_spec(McpServerSpec.model_validate(dict(body.get("spec") or {})), operator_settings())
    except ValidationError as error:
        # The schema could not reject this spec; report it instead of retrying in a loop.
        problems = _problems(error)
        fallback = McpServerSpec()
        patch.status.update(compute_status(owner, fallback, generation, None, None, previous, problems))
        kopf.warn(body, reason="InvalidSpec", message="; ".join(problems))
        record_ready(owner.namespace, owner.name, [])
        return "invalid_spec"
    generated = _generated(k, owner, spec)
    state = desired_state(owner, spec, generated, _secret_versions(k, owner, spec, generated))
    for manifest in state.apply:
        k.apply(manifest)
    for ref in state.absent:
        if k.delete(ref, owner.namespace, owner.uid):
            logger.info("deleted %s/%s, no longer wanted", ref.kind, ref.name)
    refresh_status(owner, spec, generation, previous, patch)
    return "ok"


def refresh_status(
    owner: Owner, spec: McpServerSpec, generation: int, previous: list[dict[str, Any]], patch: kopf.Patch
) -> None:
    k = kube()
    deployment = k.get("apps/v1", "Deployment", owner.server, owner.namespace)
    redis = k.get("apps/v1", "StatefulSet", owner.redis, owner.namespace) if uses_managed_redis(spec) else None
    status = compute_status(owner, spec, generation, deployment, redis, previous, [])
    record_ready(owner.namespace, owner.name, status["conditions"])
    patch.status.update(status)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def on_change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    reconcile(body, patch)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Repairs drift (a deleted or edited child comes back) and keeps the status current."""
    reconcile(body, patch)


def _owner_of(child: kopf.Body) -> tuple[str, str] | None:
    for ref in child["metadata"].get("ownerReferences") or []:
        if ref.get("apiVersion") == f"{GROUP}/{VERSION}" and ref.get("kind") == "McpServer":
            return child["metadata"]["namespace"], ref["name"]
    return None


def _touch_owner(child: kopf.Body) -> None:
    """Make the owner reconcile now: a child changed (pods became ready) or went away."""
    found = _owner_of(child)
    if found is None:
        return
    namespace, name = found
    k = kube()
    owner = k.get(f"{GROUP}/{VERSION}", "McpServer", name, namespace)
    if owner is None:
        return
    meta = owner["metadata"]
    spec = McpServerSpec.model_validate(owner.get("spec") or {})
    status = compute_status(
        Owner(meta["name"], namespace, meta["uid"]),
        spec,
        int(meta.get("generation") or 0),
        k.get("apps/v1", "Deployment", name, namespace),
        k.get("apps/v1", "StatefulSet", f"{name}-redis", namespace) if uses_managed_redis(spec) else None,
        list((owner.get("status") or {}).get("conditions") or []),
        [],
    )
    record_ready(namespace, name, status["conditions"])
    resource = k.dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="McpServer")
    resource.status.patch(
        name=name, namespace=namespace, body={"status": status}, content_type="application/merge-patch+json"
    )


@kopf.on.event(GROUP, VERSION, PLURAL)
def on_server_event(name: str, namespace: str | None, type: str, **_: Any) -> None:
    """Drops a deleted McpServer's metrics (no finalizer: its children go by garbage collection)."""
    if type == "DELETED" and namespace:
        forget(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
@kopf.on.event("apps", "v1", "statefulsets", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
def on_child_event(body: kopf.Body, type: str | None, **_: Any) -> None:
    try:
        _touch_owner(body)
    except Exception:
        logger.exception("could not refresh the owner's status")
