"""The McpServer reachable from outside the cluster: an HTTPRoute or an Ingress to its Service (pure)."""

from __future__ import annotations

from typing import Any

from mcp_operator.api import ExposeSpec, McpServerSpec
from mcp_operator.names import Owner

HTTP_ROUTE_API = "gateway.networking.k8s.io/v1"
INGRESS_API = "networking.k8s.io/v1"
# ingress-nginx buffers responses and cuts a read after 60 s of silence by default: an SSE stream (a long tool
# call, a GET stream) needs neither. Other controllers ignore these; the user's own annotations win.
SSE_INGRESS_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
}


def exposed_path(spec: McpServerSpec, expose: ExposeSpec) -> str:
    return expose.path or spec.path


def build_http_route(owner: Owner, spec: McpServerSpec) -> dict[str, Any]:
    """An HTTPRoute for spec.expose.gateway: the hostnames and the path prefix to the Service."""
    expose = spec.expose
    if expose is None or expose.gateway is None:
        raise ValueError("an HTTPRoute needs spec.expose.gateway")
    parents = []
    for parent in expose.gateway.parent_refs:
        ref: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": parent.name}
        if parent.namespace:
            ref["namespace"] = parent.namespace
        if parent.section_name:
            ref["sectionName"] = parent.section_name
        parents.append(ref)
    return {
        "apiVersion": HTTP_ROUTE_API,
        "kind": "HTTPRoute",
        "metadata": owner.metadata(owner.server, "server"),
        "spec": {
            "parentRefs": parents,
            "hostnames": list(expose.hostnames),
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": exposed_path(spec, expose)}}],
                    "backendRefs": [{"name": owner.server, "port": spec.service.port}],
                }
            ],
        },
    }


def build_ingress(owner: Owner, spec: McpServerSpec) -> dict[str, Any]:
    """An Ingress for spec.expose.ingress: a rule per hostname, TLS when a Secret is named."""
    expose = spec.expose
    if expose is None or expose.ingress is None:
        raise ValueError("an Ingress needs spec.expose.ingress")
    ingress = expose.ingress
    backend = {"service": {"name": owner.server, "port": {"number": spec.service.port}}}
    path = {"path": exposed_path(spec, expose), "pathType": "Prefix", "backend": backend}
    body: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [path]}} for host in expose.hostnames]}
    if ingress.class_name:
        body["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        body["tls"] = [{"hosts": list(expose.hostnames), "secretName": ingress.tls_secret_name}]
    annotations = {**SSE_INGRESS_ANNOTATIONS, **ingress.annotations}
    return {
        "apiVersion": INGRESS_API,
        "kind": "Ingress",
        "metadata": owner.metadata(owner.server, "server", annotations),
        "spec": body,
    }


def external_url(spec: McpServerSpec) -> str | None:
    """The MCP endpoint as a client outside the cluster reaches it (the first hostname)."""
    expose = spec.expose
    if expose is None:
        return None
    secure = expose.ingress is not None and expose.ingress.tls_secret_name is not None
    return f"{'https' if secure else 'http'}://{expose.hostnames[0]}{exposed_path(spec, expose)}"


def exposed_hosts(spec: McpServerSpec) -> list[str]:
    """Host values the runtime accepts for the exposed hostnames (any port: a Gateway listener may have one)."""
    if spec.expose is None:
        return []
    return [entry for host in spec.expose.hostnames for entry in (host, f"{host}:*")]


def exposed_origins(spec: McpServerSpec) -> list[str]:
    """Origins of browsers on the exposed hostnames."""
    if spec.expose is None:
        return []
    return [f"{scheme}://{host}" for host in spec.expose.hostnames for scheme in ("https", "http")]
