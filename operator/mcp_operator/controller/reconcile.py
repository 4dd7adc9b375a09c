"""One reconcile of an McpServer, in named steps: read its spec, generate the desired state, apply it, compute
its status. Each step talks to the API server through `Kube`; what the manifests are is the pure builders'."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from mcp_operator.api import McpServerSpec
from mcp_operator.config import OperatorSettings, effective_spec
from mcp_operator.controller.setup import OperatorState
from mcp_operator.desired import DesiredState, Generated, desired_state, uses_ha_redis, uses_managed_redis
from mcp_operator.generated_secrets import build_redis_secret, build_request_state_secret, decode, new_secret_value
from mcp_operator.kube import Kube
from mcp_operator.managed_redis import Persistence, decide_persistence
from mcp_operator.metrics import record_ready, timed_reconcile
from mcp_operator.names import Owner
from mcp_operator.redis_pods import RedisPods, needs_events, observe_pods
from mcp_operator.redis_probe import ask_sentinels
from mcp_operator.status import Reason, compute_status
from mcp_operator.workload import referenced_secrets

logger = logging.getLogger(__name__)

# The kinds whose generation tells our own apply from someone's edit (`child_events.child_event_action`).
WORKLOADS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class McpServerObject:
    """An McpServer as read from the API server or a kopf event."""

    owner: Owner
    generation: int
    previous_conditions: list[dict[str, Any]]
    body: Mapping[str, Any]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> McpServerObject:
        meta = body["metadata"]
        return cls(
            owner=Owner(meta["name"], meta["namespace"], meta["uid"]),
            generation=int(meta.get("generation") or 0),
            previous_conditions=list((body.get("status") or {}).get("conditions") or []),
            body=body,
        )


def reconcile(state: OperatorState, body: Mapping[str, Any]) -> dict[str, Any]:
    """Applies what the McpServer `body` should own, removes what it should not, and returns its status."""
    with timed_reconcile() as outcome:
        outcome["result"], status = _reconcile(state, McpServerObject.of(body))
    return status


def _reconcile(state: OperatorState, server: McpServerObject) -> tuple[str, dict[str, Any]]:
    try:
        spec = read_spec(server.body, state.settings)
    except ValidationError as error:
        return "invalid_spec", invalid_spec_status(server, error)
    desired = generate(state.kube, server.owner, spec)
    apply_desired(state, server.owner, desired)
    return "ok", observe_status(state.kube, server, spec)


# Step 1: read.
def read_spec(body: Mapping[str, Any], settings: OperatorSettings) -> McpServerSpec:
    """The effective spec: the McpServer's spec with the operator's defaults (ValidationError when invalid)."""
    return effective_spec(McpServerSpec.model_validate(dict(body.get("spec") or {})), settings)


def invalid_spec_status(server: McpServerObject, error: ValidationError) -> dict[str, Any]:
    """A spec the schema could not reject: reported in the status and an Event, instead of retried in a loop."""
    problems = [f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
    status = compute_status(
        owner=server.owner,
        spec=McpServerSpec(),
        generation=server.generation,
        previous_conditions=server.previous_conditions,
        problems=problems,
    )
    body = server.body
    event_body = body if isinstance(body, kopf.Body) else kopf.Body(cast(Any, dict(body)))
    kopf.warn(event_body, reason=str(Reason.INVALID_SPEC), message="; ".join(problems))
    record_ready(server.owner.namespace, server.owner.name, [])
    return status


# Step 2: generate.
def generate(kube: Kube, owner: Owner, spec: McpServerSpec) -> DesiredState:
    """The desired state, from the spec and what the cluster holds: the generated values, the persistence
    decision and the versions of the Secrets the pods read."""
    generated = generated_values(kube, owner, spec)
    persistence = decide_storage(kube, owner, spec)
    return desired_state(owner, spec, generated, secret_versions(kube, owner, spec, generated), persistence)


def generated_values(kube: Kube, owner: Owner, spec: McpServerSpec) -> Generated:
    """The requestState keys and Redis password: read back when they exist, made once when they do not."""
    keys_text = _kept(kube, build_request_state_secret(owner, [new_secret_value()]), "keys")
    keys = keys_text.splitlines() if keys_text else [new_secret_value()]
    password = None
    if uses_managed_redis(spec):
        password = _kept(kube, build_redis_secret(owner, new_secret_value()), "password") or new_secret_value()
    return Generated(request_state_keys=keys, redis_password=password)


def _kept(kube: Kube, manifest: dict[str, Any], key: str) -> str | None:
    """A generated value: the one in the existing Secret, else the one in `manifest`, created only if absent
    and read back, so two reconciles racing to make it agree on one value (and roll no pod twice)."""
    meta = manifest["metadata"]
    existing = kube.get("v1", "Secret", meta["name"], meta["namespace"]) or kube.create_if_absent(manifest)
    return decode(existing, key)


def decide_storage(kube: Kube, owner: Owner, spec: McpServerSpec) -> Persistence | None:
    """Whether the managed Redis keeps its data on claims; asks the cluster for a default StorageClass only
    when neither the spec nor an existing StatefulSet decides it."""
    if not uses_managed_redis(spec):
        return None
    existing = kube.get("apps/v1", "StatefulSet", owner.redis, owner.namespace)
    needs_cluster = spec.redis.persistence.enabled is None and existing is None
    return decide_persistence(spec, existing, needs_cluster and kube.has_default_storage_class())


def secret_versions(kube: Kube, owner: Owner, spec: McpServerSpec, generated: Generated) -> dict[str, str]:
    """Digests of the Secrets the pods read, so that changing one rolls the pods."""
    versions = {}
    known = {owner.request_state_secret: generated.request_state_keys, owner.redis_secret: generated.redis_password}
    for name in referenced_secrets(owner, spec):
        if name in known:
            data: Any = known[name]
        else:
            secret = kube.get("v1", "Secret", name, owner.namespace)
            data = (secret or {}).get("data")
        versions[name] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return versions


# Step 3: apply.
def apply_desired(state: OperatorState, owner: Owner, desired: DesiredState) -> None:
    """Apply every wanted child (noting the workloads' generations) and delete the unwanted ones."""
    for manifest in desired.apply:
        applied = apply_child(state.kube, manifest)
        if applied["kind"] in WORKLOADS:
            state.applied_generations[applied["metadata"]["uid"]] = applied["metadata"].get("generation")
    for ref in desired.absent:
        if state.kube.delete(ref, owner.namespace, owner.uid):
            logger.info("deleted %s/%s, no longer wanted", ref.kind, ref.name)


def apply_child(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply; a StatefulSet whose immutable fields must change (its Service, its claims: high availability or
    persistence switched) is deleted and made again. Its claims stay, so data on them comes back."""
    try:
        return kube.apply(manifest)
    except ApiException as error:
        if manifest["kind"] != "StatefulSet" or not immutable_field_refused(error):
            raise
    name = manifest["metadata"]["name"]
    logger.info("StatefulSet %s: a field that cannot change changed; making it again", name)
    kube.delete_now(manifest["apiVersion"], manifest["kind"], name, manifest["metadata"]["namespace"])
    return kube.apply(manifest)


def immutable_field_refused(error: Exception) -> bool:
    """The API server's 422 for an update of a StatefulSet's fields other than its template and a few others."""
    return getattr(error, "status", None) == 422 and "updates to statefulset spec for fields other than" in str(error)


# Step 4: status.
def observe_status(kube: Kube, server: McpServerObject, spec: McpServerSpec) -> dict[str, Any]:
    """The status from what the children report now (and, for a highly available Redis, the Sentinels)."""
    owner = server.owner
    deployment = kube.get("apps/v1", "Deployment", owner.server, owner.namespace)
    redis = kube.get("apps/v1", "StatefulSet", owner.redis, owner.namespace) if uses_managed_redis(spec) else None
    persistence = decide_persistence(spec, redis, default_class=False) if redis is not None else None
    redis_pods = observe_redis_pods(kube, owner) if redis is not None else None
    topology = None
    if uses_ha_redis(spec):
        secret = kube.get("v1", "Secret", owner.redis_secret, owner.namespace)
        password = decode(secret, "password") if secret else None
        topology = ask_sentinels(owner, password) if password else None
    status = compute_status(
        owner=owner,
        spec=spec,
        generation=server.generation,
        deployment=deployment,
        redis=redis,
        previous_conditions=server.previous_conditions,
        persistence=persistence,
        topology=topology,
        redis_pods=redis_pods,
    )
    record_ready(owner.namespace, owner.name, status["conditions"])
    return status


def observe_redis_pods(kube: Kube, owner: Owner) -> RedisPods | None:
    """The managed Redis's pods (data pods and Sentinels) and, when one waits or is pending, the Warning events
    of the namespace that may say why; None when they cannot be read (RedisReady then goes by the rest)."""
    selector = f"app.kubernetes.io/instance={owner.name},app.kubernetes.io/component in (redis,sentinel)"
    try:
        pods = kube.list("v1", "Pod", owner.namespace, label_selector=selector)
        events = kube.list("v1", "Event", owner.namespace, field_selector="type=Warning") if needs_events(pods) else []
    except ApiException as error:
        logger.warning("could not read the Redis pods of %s/%s: %s", owner.namespace, owner.name, error.reason)
        return None
    return observe_pods(pods, events)
