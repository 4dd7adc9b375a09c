"""One reconcile of an McpServer, in named steps: read its spec, generate the desired state, apply it, compute
its status. Each step talks to the API server through `Kube`; what the manifests are is the pure builders'."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from mcp_operator.api import GROUP, KIND, VERSION, McpServerSpec
from mcp_operator.config import OperatorSettings, effective_spec
from mcp_operator.controller.drift import ChildId
from mcp_operator.controller.setup import OperatorState
from mcp_operator.desired import DesiredState, Generated, desired_state, uses_ha_redis, uses_managed_redis
from mcp_operator.exposure import HTTP_ROUTE_API, INGRESS_API
from mcp_operator.generated_secrets import build_redis_secret, build_request_state_secret, decode, new_secret_value
from mcp_operator.kube import KindNotServed, Kube
from mcp_operator.managed_redis import Persistence, decide_persistence
from mcp_operator.metrics import record_ready, timed_reconcile
from mcp_operator.names import Owner
from mcp_operator.pod_health import PodHealth, needs_events, observe_pods
from mcp_operator.redis_probe import ask_sentinels
from mcp_operator.status import Reason, Route, compute_status
from mcp_operator.workload import referenced_secrets

logger = logging.getLogger(__name__)


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


# Setting this annotation to a new value (a date, say) asks for a reconcile and a probe now.
RECONCILE_REQUEST = "mcpfleet.dev/reconcile-request"


def requested(body: Mapping[str, Any]) -> str | None:
    """The annotation's value when it has not been acted on yet (pure)."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(RECONCILE_REQUEST)
    if not value or value == (body.get("status") or {}).get("reconcileRequest"):
        return None
    return str(value)


def on_request(state: OperatorState, body: Mapping[str, Any]) -> None:
    """A reconcile and a probe, when the McpServer's reconcile-request annotation has a new value."""
    value = requested(body)
    if value is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return
    status = reconcile(state, body) | {"reconcileRequest": value}
    meta = body["metadata"]
    state.kube.patch_status(f"{GROUP}/{VERSION}", KIND, meta["name"], meta["namespace"], status)
    state.verifier.probe_soon(body)


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
    memory = state.generated.setdefault(server.owner.uid, {})
    desired, made = generate(state.kube, server.owner, spec, memory)
    if made and server.previous_conditions:
        warn_values_replaced(server, made)
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
    kopf.warn(_event_body(server.body), reason=str(Reason.INVALID_SPEC), message="; ".join(problems))
    record_ready(server.owner.namespace, server.owner.name, [])
    return status


# Step 2: generate.
def generate(kube: Kube, owner: Owner, spec: McpServerSpec, memory: dict[str, str]) -> tuple[DesiredState, list[str]]:
    """The desired state, from the spec and what the cluster holds: the generated values, the persistence
    decision and the versions of the Secrets the pods read; and the generated Secrets made with a new value."""
    generated, made = generated_values(kube, owner, spec, memory)
    persistence = decide_storage(kube, owner, spec)
    desired = desired_state(owner, spec, generated, secret_versions(kube, owner, spec, generated), persistence)
    return desired, made


def generated_values(
    kube: Kube, owner: Owner, spec: McpServerSpec, memory: dict[str, str]
) -> tuple[Generated, list[str]]:
    """The requestState keys and Redis password: read back when they exist, made once when they do not.

    `memory` holds the values this operator last read, by Secret name: a generated Secret that was deleted
    is made again with the value the pods use. Only an operator that restarted since has to make a new value
    (returned by name, so the caller can say so: the pods roll to the new value)."""
    made: list[str] = []

    def request_state(text: str) -> dict[str, Any]:
        return build_request_state_secret(owner, text.splitlines())

    keys_text = _kept(kube, request_state, "keys", memory, made)
    keys = keys_text.splitlines() if keys_text else [new_secret_value()]
    password = None
    if uses_managed_redis(spec):
        password = _kept(kube, lambda value: build_redis_secret(owner, value), "password", memory, made)
        password = password or new_secret_value()
    return Generated(request_state_keys=keys, redis_password=password), made


def _kept(
    kube: Kube, build: Callable[[str], dict[str, Any]], key: str, memory: dict[str, str], made: list[str]
) -> str | None:
    """A generated value: the one in the existing Secret, else the one remembered, else a new one. The Secret is
    created only if absent and read back, so two reconciles racing to make it agree on one value (and roll no
    pod twice)."""
    fresh = build(new_secret_value())
    meta = fresh["metadata"]
    existing = kube.get("v1", "Secret", meta["name"], meta["namespace"])
    if existing is None:
        remembered = memory.get(meta["name"])
        existing = kube.create_if_absent(build(remembered) if remembered is not None else fresh)
        if remembered is None:
            made.append(meta["name"])
    value = decode(existing, key)
    if value is not None:
        memory[meta["name"]] = value
    return value


def warn_values_replaced(server: McpServerObject, made: list[str]) -> None:
    """A generated Secret of a running McpServer was deleted while the operator did not know its value."""
    kopf.event(
        _event_body(server.body),
        type="Warning",
        reason=str(Reason.GENERATED_SECRET_REPLACED),
        message=f"Secret {', '.join(made)} was deleted, and this operator (restarted since it last read it) did "
        "not know its value: a new value was generated, and the pods roll to use it",
    )


def _event_body(body: Mapping[str, Any]) -> kopf.Body:
    return body if isinstance(body, kopf.Body) else kopf.Body(cast(Any, dict(body)))


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
    """Apply every wanted child (noting what each looks like after, `drift`) and delete the unwanted ones."""
    for manifest in desired.apply:
        if manifest["kind"] == "Service":
            same_address_again(state, manifest)
        try:
            state.note_applied(apply_child(state.kube, manifest))
        except KindNotServed as error:  # an HTTPRoute without the Gateway API: the Exposed condition says so
            logger.warning("%s/%s: %s", owner.namespace, owner.name, error)
    for ref in desired.absent:
        if state.kube.delete(ref, owner.namespace, owner.uid):
            logger.info("deleted %s/%s, no longer wanted", ref.kind, ref.name)


def same_address_again(state: OperatorState, manifest: dict[str, Any]) -> None:
    """A Service that was deleted is made again at its old ClusterIP when that address is still free (then
    applied as usual); the address is asked for on creation only, so the operator never owns the field."""
    address = state.service_addresses.pop(ChildId.of(manifest), None)
    if address is None:
        return
    meta = manifest["metadata"]
    if state.kube.get("v1", "Service", meta["name"], meta["namespace"]) is not None:
        return
    again = copy.deepcopy(manifest)
    again["spec"] |= {"clusterIP": address, "clusterIPs": [address]}
    try:
        state.kube.create_if_absent(again)
    except ApiException as error:  # the address was taken meanwhile: any address will do
        logger.info("Service %s: address %s not available again (%s)", meta["name"], address, error.reason)


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
    server_health, redis_pods = observe_pods_of(kube, owner, with_redis=redis is not None)
    route = observe_route(kube, owner, spec)
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
        server_pod_health=server_health,
        route=route,
    )
    record_ready(owner.namespace, owner.name, status["conditions"])
    return status


def observe_route(kube: Kube, owner: Owner, spec: McpServerSpec) -> Route | None:
    """The HTTPRoute or Ingress of spec.expose as the cluster holds it (None without spec.expose)."""
    if spec.expose is None:
        return None
    api_version, kind = (HTTP_ROUTE_API, "HTTPRoute") if spec.expose.gateway else (INGRESS_API, "Ingress")
    if not kube.served(api_version, kind):
        return Route(kind, served=False)
    return Route(kind, served=True, found=kube.get(api_version, kind, owner.server, owner.namespace))


def observe_pods_of(kube: Kube, owner: Owner, with_redis: bool) -> tuple[PodHealth | None, PodHealth | None]:
    """The health of the server pods and of the managed Redis's pods (data pods and Sentinels), from one list
    of the McpServer's pods and, when one waits or is pending, the Warning events of the namespace that may say
    why; None when they cannot be read (the conditions then go by the rest)."""
    components = "server,redis,sentinel" if with_redis else "server"
    selector = f"app.kubernetes.io/instance={owner.name},app.kubernetes.io/component in ({components})"
    try:
        pods = kube.list("v1", "Pod", owner.namespace, label_selector=selector)
        events = kube.list("v1", "Event", owner.namespace, field_selector="type=Warning") if needs_events(pods) else []
    except ApiException as error:
        logger.warning("could not read the pods of %s/%s: %s", owner.namespace, owner.name, error.reason)
        return None, None
    servers = [p for p in pods if _component(p) == "server"]
    redis = [p for p in pods if _component(p) != "server"]
    return observe_pods(servers, events), observe_pods(redis, events) if with_redis else None


def _component(pod: Mapping[str, Any]) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", ""))
