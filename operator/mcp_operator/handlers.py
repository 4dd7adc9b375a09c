"""The kopf handlers: thin, they read, call the pure functions, apply, and write status."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from mcp_operator.api import GROUP, PLURAL, VERSION, McpServerSpec
from mcp_operator.config import OperatorSettings, effective_spec
from mcp_operator.desired import Generated, desired_state, uses_ha_redis, uses_managed_redis
from mcp_operator.kube import Kube
from mcp_operator.metrics import forget, record_ready, timed_reconcile
from mcp_operator.names import MANAGED_BY, Owner
from mcp_operator.redis import Persistence, build_redis_secret, decide_persistence
from mcp_operator.redis_probe import ask_sentinels
from mcp_operator.secrets import build_request_state_secret, decode, new_secret_value
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


def _kept(k: Kube, manifest: dict[str, Any], key: str) -> str | None:
    """A generated value: the one in the existing Secret, else the one in `manifest`, created only if absent
    and read back, so two reconciles racing to make it agree on one value (and roll no pod twice)."""
    meta = manifest["metadata"]
    existing = k.get("v1", "Secret", meta["name"], meta["namespace"]) or k.create_if_absent(manifest)
    return decode(existing, key)


def _generated(k: Kube, owner: Owner, spec: McpServerSpec) -> Generated:
    """The requestState keys and Redis password: read back when they exist, made once when they do not."""
    keys_text = _kept(k, build_request_state_secret(owner, [new_secret_value()]), "keys")
    keys = keys_text.splitlines() if keys_text else [new_secret_value()]
    password = None
    if uses_managed_redis(spec):
        password = _kept(k, build_redis_secret(owner, new_secret_value()), "password") or new_secret_value()
    return Generated(request_state_keys=keys, redis_password=password)


def _persistence(k: Kube, owner: Owner, spec: McpServerSpec) -> Persistence | None:
    if not uses_managed_redis(spec):
        return None
    existing = k.get("apps/v1", "StatefulSet", owner.redis, owner.namespace)
    needs_cluster = spec.redis.persistence.enabled is None and existing is None
    return decide_persistence(spec, existing, needs_cluster and k.has_default_storage_class())


def _apply(k: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply; a StatefulSet whose immutable fields must change (its Service, its claims: high availability or
    persistence switched) is deleted and made again. Its claims stay, so data on them comes back."""
    try:
        return k.apply(manifest)
    except ApiException as error:
        if manifest["kind"] != "StatefulSet" or not immutable_field_refused(error):
            raise
    name = manifest["metadata"]["name"]
    logger.info("StatefulSet %s: a field that cannot change changed; making it again", name)
    k.delete_now(manifest["apiVersion"], manifest["kind"], name, manifest["metadata"]["namespace"])
    return k.apply(manifest)


def immutable_field_refused(error: Exception) -> bool:
    """The API server's 422 for an update of a StatefulSet's fields other than its template and a few others."""
    return getattr(error, "status", None) == 422 and "updates to statefulset spec for fields other than" in str(error)


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
    persistence = _persistence(k, owner, spec)
    state = desired_state(owner, spec, generated, _secret_versions(k, owner, spec, generated), persistence)
    for manifest in state.apply:
        applied = _apply(k, manifest)
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
    persistence = decide_persistence(spec, redis, default_class=False) if redis is not None else None
    topology = None
    if uses_ha_redis(spec):
        secret = k.get("v1", "Secret", owner.redis_secret, owner.namespace)
        password = decode(secret, "password") if secret else None
        topology = ask_sentinels(owner, password) if password else None
    status = compute_status(owner, spec, generation, deployment, redis, previous, [], persistence, topology)
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
    if needs_another_look(status):
        look_again(child)
    if not status_changed(owner.get("status"), status):
        return
    resource = k.dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="McpServer")
    resource.status.patch(
        name=name, namespace=namespace, body={"status": status}, content_type="application/merge-patch+json"
    )


# The Sentinels learn that a replica caught up some seconds after its pod became ready, and no Kubernetes
# event follows: while RedisReady is short of all replicas in sync, look again a little later (one pending
# look per child; no kopf timer, which would put a finalizer on every McpServer).
LOOK_AGAIN_SECONDS = 10.0
UNSETTLED = {"ReplicasOutOfSync", "NoPrimary", "SentinelsUnreachable"}
_looks: dict[str, threading.Timer] = {}
_looks_lock = threading.Lock()


def needs_another_look(status: Mapping[str, Any]) -> bool:
    """Whether RedisReady says something the Sentinels will change without a Kubernetes event (pure)."""
    return any(c.get("type") == "RedisReady" and c.get("reason") in UNSETTLED for c in status.get("conditions", []))


def look_again(child: Mapping[str, Any]) -> None:
    uid = str(child["metadata"].get("uid", ""))

    def look() -> None:
        with _looks_lock:
            _looks.pop(uid, None)
        try:
            on_child(child, reconcile_owner=False)
        except Exception:
            logger.exception("could not refresh the status of the owner of %s", child["metadata"].get("name"))

    with _looks_lock:
        if uid in _looks:
            return
        timer = threading.Timer(LOOK_AGAIN_SECONDS, look)
        timer.daemon = True
        _looks[uid] = timer
        timer.start()


CHILDREN = {"app.kubernetes.io/managed-by": MANAGED_BY}


ChildAction = Literal["reconcile", "status", "ignore"]


def child_event_action(event: str, kind: str, generation: int | None, applied: int | None) -> ChildAction:
    """What a child's event asks of its owner (pure).

    A deleted child is put back (reconcile). A workload at the generation our own apply gave it is our echo or
    a status change (pods became ready): refresh the owner's status. Any other generation is someone's edit
    (or, after an operator restart, not known yet): reconcile, which puts back what the operator owns. A
    Service's other events change nothing the status shows.
    """
    if event == "DELETED":
        return "reconcile"
    if kind not in WORKLOADS:
        return "ignore"
    return "status" if generation == applied else "reconcile"


def status_changed(current: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change the owner's status (so an echo of our own patch writes nothing)."""
    return dict(current or {}) != dict(new)


@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN)
@kopf.on.event("apps", "v1", "statefulsets", labels=CHILDREN)
@kopf.on.event("", "v1", "services", labels=CHILDREN)
def on_child_event(body: kopf.Body, type: str, **_: Any) -> None:
    uid = body["metadata"].get("uid", "")
    action = child_event_action(type, body["kind"], body["metadata"].get("generation"), _applied_generations.get(uid))
    if type == "DELETED":
        _applied_generations.pop(uid, None)
    if action == "ignore":
        return
    try:
        on_child(body, reconcile_owner=action == "reconcile")
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
