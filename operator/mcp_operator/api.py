"""The McpServer API (`mcpfleet.dev/v1alpha1`) as pydantic models: the CRD is generated from these.

Field names are camelCase on the wire (the Kubernetes convention) and snake_case in Python. Kubernetes
types that the operator passes through untouched (resources, affinity, tolerations, env, ...) are kept as
free-form objects (`x-kubernetes-preserve-unknown-fields`) and validated by the API server when the
operator applies the Deployment they end up in.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mcp_operator.defaults import DEFAULT_APP, PullPolicy, runtime_default

GROUP = "mcpfleet.dev"
VERSION = "v1alpha1"
KIND = "McpServer"
PLURAL = "mcpservers"
SINGULAR = "mcpserver"
SHORT_NAMES = ["mcps"]

KubeObject = Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
KubeList = Annotated[
    list[dict[str, Any]],
    Field(json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}),
]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SecretKeyRef(Model):
    """A key of a Secret in the McpServer's namespace."""

    name: str = Field(description="The Secret's name.", min_length=1)
    key: str = Field(description="The key within the Secret.", min_length=1)


class SessionsSpec(Model):
    """How handshake-era sessions are kept and routed."""

    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="memory: each replica keeps its own sessions (needs client affinity with several replicas). "
        "redis: every replica serves every session, through Redis.",
    )
    ttl_seconds: int = Field(
        runtime_default("session_ttl_seconds"), ge=1, description="A session expires after this many idle seconds."
    )
    max_sessions: int = Field(
        runtime_default("max_sessions"),
        ge=1,
        description="Open sessions allowed at once (across replicas with redis).",
    )
    max_sessions_per_client: int = Field(
        runtime_default("max_sessions_per_client"),
        ge=1,
        description="Open sessions one client (bearer token, else address) may hold.",
    )
    affinity: Literal["None", "ClientIP", "Auto"] = Field(
        "Auto",
        description="The Service's session affinity. Auto: ClientIP when the backend is memory and replicas > 1, "
        "else None.",
    )


class PersistenceSpec(Model):
    """Persistence of the managed Redis (a PersistentVolumeClaim and the append-only file)."""

    enabled: bool | None = Field(
        None,
        description="Keep Redis data on a PersistentVolumeClaim with the append-only file (appendfsync everysec). "
        "Empty: on when the cluster has a default StorageClass (or storageClassName is set), else off; the "
        "RedisReady condition says which and why. Fixed when the Redis StatefulSet is first made.",
    )
    size: str = Field("1Gi", description="The claim's size.", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
    storage_class_name: str | None = Field(None, description="The claim's storage class (default: the cluster's).")


Durability = Literal["async", "replicated", "strict"]


class HighAvailabilitySpec(Model):
    """managed: Redis as a primary with replicas, watched by three Sentinels that fail over to a replica."""

    enabled: bool = Field(
        False,
        description="Run the primary, its replicas and three Sentinels; the server pods follow a failover "
        "through the Sentinels. Switching it on or off remakes the Redis StatefulSet (its claims stay); without "
        "persistence, the sessions open then are lost.",
    )
    replicas: int = Field(
        3, ge=2, le=9, description="Redis data pods (the primary and its replicas), spread over nodes when possible."
    )
    durability: Durability = Field(
        "strict",
        description="What an unplanned failover (a primary killed, its node lost) may take away of the writes "
        "clients were told were done (session state, handle state, stored request state), and what that costs. "
        "A planned one (a Redis pod deleted, drained or rolled) loses nothing in any mode: writes pause until a "
        "replica has caught up. "
        "async: a write is done once the primary has it; the writes no replica had received yet when the "
        "primary died (usually the last milliseconds of them, more when the replicas lag) can be lost, and a "
        "client then sees a session's state or a handle's value go back. No added latency. "
        "replicated: each such write also waits until a replica holds it (Redis WAIT); if no replica confirms "
        "in time it is accepted all the same and counted (mcp_runtime_redis_writes_unreplicated_total), so only "
        "writes made while no replica kept up can be lost. Costs a round trip to a replica per write. "
        "strict: as replicated, but a write no replica confirmed in time is answered 503 with Retry-After instead "
        "of as done (it may still have been applied, so a retried increment can count twice, never go back): a "
        "failover takes back nothing clients were told was done, unless the replica that confirmed a write is "
        "lost together with the primary; while no replica keeps up, writes fail instead of going unprotected.",
    )


class RedisSpec(Model):
    """The Redis that holds sessions when sessions.backend is redis."""

    mode: Literal["managed", "external"] = Field(
        "managed",
        description="managed: the operator runs Redis for this McpServer. external: use url, or sentinels.",
    )
    image: str | None = Field(
        None,
        description="managed: the Redis image (empty: the operator's default, the chart's "
        "mcpServerDefaults.redisImage).",
    )
    resources: KubeObject = Field(default_factory=dict, description="managed: Redis container resources.")
    persistence: PersistenceSpec = Field(default_factory=PersistenceSpec, description="managed: persistence.")
    high_availability: HighAvailabilitySpec = Field(
        default_factory=HighAvailabilitySpec, description="managed: a primary with replicas behind Sentinels."
    )
    url: str | None = Field(
        None,
        description="external: redis:// or rediss:// URL (without the password). With sentinels, only its "
        "database, user and scheme (rediss:// for TLS) count: the Sentinels give the address.",
        pattern=r"^rediss?://.+",
    )
    sentinels: list[Annotated[str, Field(pattern=r"^[^:\s]+:[0-9]{1,5}$")]] = Field(
        default_factory=list,
        description="external: host:port of each Sentinel watching the Redis primary (with sentinelMasterName).",
    )
    sentinel_master_name: str | None = Field(
        None, min_length=1, description="external: the name the Sentinels monitor the primary under."
    )
    password_secret_ref: SecretKeyRef | None = Field(None, description="external: where the password is.")
    tls: bool = Field(
        False,
        description="external: whether url is rediss:// (TLS); it must agree with url's scheme, which is what the "
        "server pods follow.",
    )


class ServiceSpec(Model):
    """The Service in front of the server pods."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description="The Service type.")
    port: int = Field(80, ge=1, le=65535, description="The Service's port.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the Service.")


class AutoscalingSpec(Model):
    """A HorizontalPodAutoscaler on CPU for the server pods."""

    enabled: bool = Field(False, description="Create the HorizontalPodAutoscaler.")
    min_replicas: int = Field(1, ge=1, description="The fewest replicas.")
    max_replicas: int = Field(5, ge=1, description="The most replicas.")
    target_cpu_utilization_percentage: int = Field(70, ge=1, le=100, description="Target average CPU use.")


class DisruptionBudgetSpec(Model):
    """A PodDisruptionBudget for the server pods: exactly one of minAvailable or maxUnavailable."""

    min_available: int | str | None = Field(None, description="Pods that must stay up (a number or a percentage).")
    max_unavailable: int | str | None = Field(None, description="Pods that may be down (a number or a percentage).")


URL = r"^https?://[^\s/$.?#][^\s]*$"
SCOPE = r"^[\x21\x23-\x5B\x5D-\x7E]+$"  # RFC 6749's scope-token: printable ASCII but space, " and \\
ASYMMETRIC_ALGORITHM = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class IntrospectionSpec(Model):
    """Opaque (non-JWT) access tokens checked at the authorization server's introspection endpoint (RFC 7662)."""

    client_id: str = Field(description="The client the servers introspect as.", min_length=1)
    client_secret_ref: SecretKeyRef = Field(description="A Secret key holding that client's secret.")


class ProbeClientSpec(Model):
    """A client of the authorization server (client credentials grant) the operator's Verified probe gets its
    access token as; without it, the probe checks only that /mcp asks for a token and names its issuer."""

    client_id: str = Field(description="The client's id.", min_length=1)
    client_secret_ref: SecretKeyRef = Field(description="A Secret key holding the client's secret.")
    scopes: list[Annotated[str, Field(pattern=SCOPE)]] = Field(
        default_factory=list, description="Scopes the probe asks for (empty: requiredScopes)."
    )


class OAuthSpec(Model):
    """The servers as OAuth 2.1 resource servers (the MCP authorization spec): every request needs an access
    token the issuer gave for `resource`; sessions belong to the token's subject."""

    issuer: str = Field(description="The authorization server's issuer URL.", pattern=URL, max_length=2048)
    resource: str = Field(
        description="The servers' canonical URL as clients reach them (e.g. https://mcp.example.com/mcp): the "
        "audience tokens must name, and the resource of the metadata the servers publish.",
        pattern=URL,
        max_length=2048,
    )
    audiences: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Audiences accepted besides resource."
    )
    required_scopes: list[Annotated[str, Field(pattern=SCOPE)]] = Field(
        default_factory=list, description="Scopes every request needs (else 403 insufficient_scope)."
    )
    tool_scopes: dict[str, list[Annotated[str, Field(pattern=SCOPE)]]] = Field(
        default_factory=dict,
        description="Scopes each tool needs, by tool name; tools/list shows a caller only what they may call.",
    )
    algorithms: list[ASYMMETRIC_ALGORITHM] = Field(
        default_factory=list, description="Signature algorithms accepted (empty: the runtime's default)."
    )
    clock_skew_seconds: int | None = Field(None, ge=0, le=300, description="Leeway on exp and nbf.")
    metadata_url: str | None = Field(
        None, description="The issuer's metadata, when not at a well-known place.", pattern=URL, max_length=2048
    )
    jwks_url: str | None = Field(
        None, description="The issuer's JWKS, when not its metadata's jwks_uri.", pattern=URL, max_length=2048
    )
    introspection: IntrospectionSpec | None = Field(
        None, description="Check opaque tokens at the introspection endpoint, as this client."
    )
    probe_client: ProbeClientSpec | None = Field(
        None, description="The client the operator's Verified probe gets a token as (client credentials)."
    )


class AuthSpec(Model):
    """Authentication of MCP requests: static bearer tokens, OAuth access tokens, or both."""

    bearer_token_secret_ref: SecretKeyRef | None = Field(
        None, description="A Secret key holding the accepted static tokens, one a line."
    )
    oauth: OAuthSpec | None = Field(
        None, description="Access tokens of an OAuth 2.1 / OpenID authorization server (the MCP authorization spec)."
    )


HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class GatewayParent(Model):
    """A Gateway the route attaches to (a Gateway API ParentReference)."""

    name: str = Field(description="The Gateway's name.", min_length=1)
    namespace: str | None = Field(None, description="The Gateway's namespace (empty: the McpServer's).")
    section_name: str | None = Field(None, description="One listener of the Gateway (empty: any that allows it).")


class ExposeGateway(Model):
    """An HTTPRoute (Gateway API) to the McpServer's Service."""

    parent_refs: list[GatewayParent] = Field(description="The Gateways the route attaches to.", min_length=1)


class ExposeIngress(Model):
    """An Ingress to the McpServer's Service."""

    class_name: str | None = Field(None, description="The IngressClass (empty: the cluster's default class).")
    tls_secret_name: str | None = Field(
        None, description="A TLS Secret for the hostnames (the external URL is https when set)."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations of the Ingress, over the ones the operator sets for long-lived SSE responses "
        "(ingress-nginx: read and send timeouts of 3600 s, buffering off).",
    )


class ExposeSpec(Model):
    """The McpServer reachable from outside the cluster: an HTTPRoute to a Gateway or an Ingress, owned and
    repaired by the operator. Its hostnames are accepted by the server's DNS-rebinding guard (and, with their
    scheme, as Origins) with no hand-set allowedHosts; the status gives the external URL."""

    hostnames: list[Annotated[str, Field(pattern=HOSTNAME, max_length=253)]] = Field(
        description="The hostnames clients use (no port, no scheme).", min_length=1, max_length=16
    )
    path: str | None = Field(
        None, description="The path prefix routed (empty: the MCP endpoint's path).", pattern=r"^/.*"
    )
    gateway: ExposeGateway | None = Field(None, description="Make an HTTPRoute (Gateway API).")
    ingress: ExposeIngress | None = Field(None, description="Make an Ingress.")


class McpServerSpec(Model):
    """The desired state of an MCP server run with mcp-fleet."""

    replicas: int = Field(1, ge=0, description="Server pods (the scale subresource sets this).")
    image: str | None = Field(
        None,
        description="The server image (empty: the operator's default, the bundled runtime; the chart's "
        "mcpServerDefaults.runtimeImage).",
    )
    app: str = Field(
        DEFAULT_APP,
        description="MODULE:ATTR[.ATTR] of the server the runtime serves: an MCPServer, a low-level Server, "
        "a FastMCP app, or a zero-argument function returning one.",
        pattern=r"^[\w.]+:[\w.]+$",
    )
    image_pull_policy: PullPolicy | None = Field(
        None,
        description="The pull policy of every container this McpServer makes (server, Redis, Sentinels). Empty: "
        "the operator's default, the chart's mcpServerDefaults.imagePullPolicy.",
    )
    command: list[str] = Field(default_factory=list, description="Overrides the image's entrypoint.")
    args: list[str] = Field(default_factory=list, description="Overrides the image's arguments.")
    env: KubeList = Field(default_factory=list, description="Extra environment variables (EnvVar objects).")
    env_from: KubeList = Field(default_factory=list, description="Extra environment sources (EnvFromSource).")
    port: int = Field(8000, ge=1, le=65535, description="The container port the server listens on.")
    path: str = Field("/mcp", description="The MCP endpoint's path.", pattern=r"^/.*")
    resources: KubeObject = Field(default_factory=dict, description="Server container resources.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node selector of the server pods.")
    tolerations: KubeList = Field(default_factory=list, description="Tolerations of the server pods.")
    affinity: KubeObject = Field(default_factory=dict, description="Affinity of the server pods.")
    topology_spread_constraints: KubeList = Field(default_factory=list, description="Topology spread constraints.")
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the server pods.")
    service_account_name: str | None = Field(None, description="The server pods' ServiceAccount.")
    image_pull_secrets: KubeList = Field(default_factory=list, description="Image pull secrets (LocalObjectReference).")
    sessions: SessionsSpec = Field(default_factory=SessionsSpec, description="Session keeping and routing.")
    redis: RedisSpec = Field(default_factory=RedisSpec, description="The Redis for sessions.backend redis.")
    service: ServiceSpec = Field(default_factory=ServiceSpec, description="The Service.")
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, description="Autoscaling.")
    disruption_budget: DisruptionBudgetSpec | None = Field(None, description="A PodDisruptionBudget, when set.")
    auth: AuthSpec = Field(default_factory=AuthSpec, description="Authentication of MCP requests.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host values accepted (the Service's names are always accepted)."
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Origin values accepted.")
    expose: ExposeSpec | None = Field(
        None,
        description="Reach the server from outside the cluster: an HTTPRoute to a Gateway (gateway) or an "
        "Ingress (ingress), owned and repaired by the operator. The hostnames pass the server's DNS-rebinding "
        "guard (and, with their scheme, its Origin check) with no hand-set allowedHosts; status.externalUrl is "
        "the external URL, and the Exposed condition says whether the Gateway or ingress controller took the "
        "route.",
    )


class Condition(Model):
    """A condition in the Kubernetes shape."""

    type: str = Field(description="Ready, Available, Progressing, Degraded, RedisReady or SessionAffinity.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase reason.")
    message: str = Field("", description="What a user can act on.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(None, description="The generation this condition is about.")


class VerifiedStatus(Model):
    """What the last probe that passed found (the Verified condition says when and how)."""

    protocol_versions: list[str] = Field(default_factory=list, description="The protocol versions spoken.")
    server_name: str = Field("", description="The server's name, as it gives it.")
    server_version: str = Field("", description="The server's version, as it gives it.")
    tools: int = Field(0, description="Tools listed.")
    resources: int | None = Field(None, description="Resources listed (when the server has resources).")
    prompts: int | None = Field(None, description="Prompts listed (when the server has prompts).")
    pods: int = Field(0, description="Server pods that each served one handshake-era session.")


class McpServerStatus(Model):
    """The observed state, written by the operator."""

    conditions: list[Condition] = Field(default_factory=list, description="The latest observations.")
    observed_generation: int | None = Field(None, description="The generation last reconciled.")
    replicas: int | None = Field(None, description="Server pods that exist.")
    ready_replicas: int | None = Field(None, description="Server pods that are ready.")
    selector: str | None = Field(None, description="The pods' label selector (for the scale subresource).")
    url: str | None = Field(None, description="The in-cluster URL of the MCP endpoint.")
    external_url: str | None = Field(None, description="The MCP endpoint's URL from outside (spec.expose).")
    session_backend: str | None = Field(None, description="The session backend in effect.")
    ready: str | None = Field(None, description="ready/replicas, for kubectl get.")
    reconcile_request: str | None = Field(
        None, description="The last value of the mcpfleet.dev/reconcile-request annotation acted on."
    )
    verified: VerifiedStatus | None = Field(
        None, description="What the operator's last MCP probe that passed found (the Verified condition)."
    )
