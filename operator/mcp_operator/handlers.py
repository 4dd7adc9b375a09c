"""The kopf handlers: thin, they read, call the pure functions, apply, and write status."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any, cast

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


# The generation each watched workload had right after this operator applied it (by its uid): a child event
# at that generation is the echo of our own apply, any other generation is someone's edit.
WORKLOADS = ("Deployment", "StatefulSet")
_applied_generations: dict[str, int | None] = {}


def reconcile(body: Mapping[str, Any]) -> dict[str, Any]:
    """Applies what the McpServer `body` should own, removes what it should not, and returns its status."""
    with timed_reconcile() as outcome:
        outcome["result"], status = _reconcile(body)
    return status


def _reconcile(body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
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
        status = compute_status(owner, McpServerSpec(), generation, None, None, previous, problems)
        event_body = body if isinstance(body, kopf.Body) else kopf.Body(cast(Any, dict(body)))
        kopf.warn(event_body, reason="InvalidSpec", message="; ".join(problems))
        record_ready(owner.namespace, owner.name, [])
        return "invalid_spec", status
    generated = _generated(k, owner, spec)
    state = desired_state(owner, spec, generated, _secret_versions(k, owner, spec, generated))
    for manifest in state.apply:
        applied = k.apply(manifest)
        if applied["kind"] in WORKLOADS:
            _applied_generations[applied["metadata"]["uid"]] = applied["metadata"].get("generation")
    for ref in state.absent:
        if k.delete(ref, owner.namespace, owner.uid):
            logger.info("deleted %s/%s, no longer wanted", ref.kind, ref.name)
    return "ok", current_status(owner, spec, generation, previous)


def current_status(
    owner: Owner, spec: McpServerSpec, generation: int, previous: list[dict[str, Any]]
) -> dict[str, Any]:
    k = kube()
    deployment = k.get("apps/v1", "Deployment", owner.server, owner.namespace)
    redis = k.get("apps/v1", "StatefulSet", owner.redis, owner.namespace) if uses_managed_redis(spec) else None
    status = compute_status(owner, spec, generation, deployment, redis, previous, [])
    record_ready(owner.namespace, owner.name, status["conditions"])
    return status


# No timers and no deletion handlers: kopf would put a finalizer on every McpServer, and with the operator
# uninstalled an McpServer (or its namespace) could then never be deleted. Children go by garbage collection
# (owner references); drift is repaired from the children's own events (below).
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def on_change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.status.update(reconcile(body))


@kopf.on.event(GROUP, VERSION, PLURAL)
def on_server_event(name: str, namespace: str | None, type: str, **_: Any) -> None:
    """Drops a deleted McpServer's metrics."""
    if type == "DELETED" and namespace:
        forget(namespace, name)


def _owner_of(child: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for ref in child["metadata"].get("ownerReferences") or []:
        if ref.get("apiVersion") == f"{GROUP}/{VERSION}" and ref.get("kind") == "McpServer":
            return child["metadata"]["namespace"], ref["name"], ref["uid"]
    return None


def on_child(child: Mapping[str, Any], reconcile_owner: bool) -> None:
    """A child changed: refresh the owner's status (pods became ready), or reconcile the owner (the child was
    deleted or edited: the reconcile puts it back)."""
    found = _owner_of(child)
    if found is None:
        return
    namespace, name, uid = found
    k = kube()
    owner = k.get(f"{GROUP}/{VERSION}", "McpServer", name, namespace)
    if owner is None or owner["metadata"]["uid"] != uid or owner["metadata"].get("deletionTimestamp"):
        return  # the owner is gone or going: its children go by garbage collection
    if reconcile_owner:
        status = reconcile(owner)
    else:
        meta = owner["metadata"]
        spec = effective_spec(McpServerSpec.model_validate(owner.get("spec") or {}), operator_settings())
        previous = list((owner.get("status") or {}).get("conditions") or [])
        status = current_status(Owner(name, namespace, uid), spec, int(meta.get("generation") or 0), previous)
    resource = k.dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="McpServer")
    resource.status.patch(
        name=name, namespace=namespace, body={"status": status}, content_type="application/merge-patch+json"
    )


CHILDREN = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN)
@kopf.on.event("apps", "v1", "statefulsets", labels=CHILDREN)
@kopf.on.event("", "v1", "services", labels=CHILDREN)
def on_child_event(body: kopf.Body, type: str, **_: Any) -> None:
    # A generation other than the one our own apply made is someone's edit (or, after a restart, not known
    # yet): reconcile, which puts back what the operator owns. Status-only changes keep the generation.
    generation = body["metadata"].get("generation")
    uid = body["metadata"].get("uid", "")
    edited = body["kind"] in WORKLOADS and generation != _applied_generations.get(uid)
    if type == "DELETED":
        _applied_generations.pop(uid, None)
    if type == "DELETED" or body["kind"] in WORKLOADS:
        try:
            on_child(body, reconcile_owner=type == "DELETED" or edited)
        except ValidationError:
            pass  # an invalid spec is reported by the McpServer's own handlers
        except Exception as error:
            if namespace_terminating(error):
                # The namespace is being deleted (its children were deleted with it): nothing to put back.
                logger.info(
                    "namespace %s is being deleted; %s/%s not put back",
                    body["metadata"].get("namespace"),
                    body["kind"],
                    body["metadata"]["name"],
                )
                return
            logger.exception("could not reconcile the owner of %s/%s", body["kind"], body["metadata"]["name"])


def namespace_terminating(error: Exception) -> bool:
    """Whether the API server refused a write because the namespace is being deleted (403 NamespaceTerminating)."""
    return getattr(error, "status", None) == 403 and "NamespaceTerminating" in str(error)
