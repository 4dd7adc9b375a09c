"""spec.expose: the HTTPRoute or Ingress it makes, the hosts the server then accepts, and the Exposed
condition (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcp_operator.controller.rechecks import needs_another_look, needs_reconcile
from mcp_operator.desired import desired_state
from mcp_operator.status import Route, compute_status
from tests.operator.manifests import KEYS, OWNER, build, env_of, spec

GATEWAY = {"hostnames": ["mcp.example.test"], "gateway": {"parentRefs": [{"name": "edge", "namespace": "infra"}]}}
INGRESS = {
    "hostnames": ["mcp.example.test", "tools.example.test"],
    "ingress": {"className": "nginx", "tlsSecretName": "mcp-tls", "annotations": {"x/y": "z"}},
}


def test_a_gateway_exposure_makes_an_httproute_to_the_service() -> None:
    route = build(spec(expose=GATEWAY))["HTTPRoute/demo"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge", "namespace": "infra"}
    ]
    assert route["spec"]["hostnames"] == ["mcp.example.test"]
    assert route["spec"]["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/mcp"}}],
            "backendRefs": [{"name": "demo", "port": 80}],
        }
    ]
    absent = {(r.kind, r.name) for r in desired_state(OWNER, spec(expose=GATEWAY), KEYS, {}).absent}
    assert ("Ingress", "demo") in absent and ("HTTPRoute", "demo") not in absent


def test_an_ingress_exposure_streams_sse_and_says_its_url() -> None:
    ingress = build(spec(expose=INGRESS, service={"port": 8080}))["Ingress/demo"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["mcp.example.test", "tools.example.test"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "demo", "port": {"number": 8080}}}
    assert ingress["spec"]["tls"] == [{"hosts": ["mcp.example.test", "tools.example.test"], "secretName": "mcp-tls"}]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off" and annotations["x/y"] == "z"
    status = compute_status(owner=OWNER, spec=spec(expose=INGRESS), generation=1)
    assert status["externalUrl"] == "https://mcp.example.test/mcp"


def test_the_exposed_hostnames_pass_the_dns_rebinding_guard_with_no_hand_edits() -> None:
    env = env_of(build(spec(expose=GATEWAY))["Deployment/demo"])
    hosts = env["MCP_ALLOWED_HOSTS"].split(",")
    assert "mcp.example.test" in hosts and "mcp.example.test:*" in hosts
    origins = env["MCP_ALLOWED_ORIGINS"].split(",")
    assert {"https://mcp.example.test", "http://mcp.example.test"} <= set(origins)
    # Without expose, nothing of it.
    assert "example.test" not in env_of(build(spec())["Deployment/demo"])["MCP_ALLOWED_HOSTS"]
    absent = {(r.kind, r.name) for r in desired_state(OWNER, spec(), KEYS, {}).absent}
    assert {("Ingress", "demo"), ("HTTPRoute", "demo")} <= absent


@pytest.mark.parametrize(
    "bad",
    [
        {"hostnames": ["mcp.example.test"]},  # neither (the CRD's rule refuses it too)
        {"hostnames": ["Not A Host"], "gateway": GATEWAY["gateway"]},
        {"hostnames": ["mcp.example.test:443"], "gateway": GATEWAY["gateway"]},
        {"hostnames": [], "gateway": GATEWAY["gateway"]},
        {"hostnames": ["mcp.example.test"], "gateway": {"parentRefs": []}},
    ],
)
def test_what_expose_refuses(bad: dict[str, Any]) -> None:
    if "gateway" not in bad and "ingress" not in bad:
        spec(expose=bad)  # the schema alone accepts it: the CEL rule is the CRD's (test_crd)
        return
    with pytest.raises(ValidationError):
        spec(expose=bad)


def exposed_condition(route: Route, expose: dict[str, Any] = GATEWAY) -> dict[str, Any]:
    status = compute_status(owner=OWNER, spec=spec(expose=expose), generation=1, route=route)
    return next(c for c in status["conditions"] if c["type"] == "Exposed")


def parent(status: str, reason: str = "Accepted", message: str = "") -> dict[str, Any]:
    return {
        "parentRef": {"name": "edge"},
        "conditions": [{"type": "Accepted", "status": status, "reason": reason, "message": message}],
    }


def test_exposed_says_whether_the_gateway_took_the_route() -> None:
    missing = exposed_condition(Route("HTTPRoute", served=False))
    assert (missing["status"], missing["reason"]) == ("False", "KindNotServed")
    assert "install the Gateway API CRDs" in missing["message"]
    assert needs_another_look({"conditions": [missing]}) and not needs_reconcile({"conditions": [missing]})
    # The CRDs came after the McpServer: the route's apply failed then, so a reconcile is due now.
    absent = exposed_condition(Route("HTTPRoute", served=True, found=None))
    assert (absent["status"], absent["reason"]) == ("False", "RouteMissing")
    assert needs_reconcile({"conditions": [absent]})
    waiting = exposed_condition(Route("HTTPRoute", served=True, found={"status": {}}))
    assert (waiting["status"], waiting["reason"]) == ("Unknown", "WaitingForController")
    accepted = exposed_condition(Route("HTTPRoute", served=True, found={"status": {"parents": [parent("True")]}}))
    assert (accepted["status"], accepted["message"]) == ("True", "http://mcp.example.test/mcp through Gateway edge")
    assert not needs_another_look({"conditions": [accepted]})
    refused = {"status": {"parents": [parent("False", "NotAllowedByListeners", "namespace not allowed")]}}
    said = exposed_condition(Route("HTTPRoute", served=True, found=refused))
    assert (said["status"], said["reason"]) == ("False", "NotAccepted")
    assert said["message"] == "Gateway edge: NotAllowedByListeners: namespace not allowed"
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}
    took = exposed_condition(Route("Ingress", served=True, found=ingress), INGRESS)
    assert took["message"] == "https://mcp.example.test/mcp through the Ingress at 203.0.113.7"
    # No expose, no condition.
    plain = compute_status(owner=OWNER, spec=spec(), generation=1)
    assert "Exposed" not in {c["type"] for c in plain["conditions"]} and plain["externalUrl"] is None
