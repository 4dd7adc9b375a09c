"""The Helm chart on the local cluster: lint, template, server-side dry run, install, the examples Ready,
an upgrade with changed values, uninstall."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e import target
from e2e.fleet import CHART, examples, helm_install, install_crds, probe, proxy_get, rbac_refusals, wait_for, wait_ready
from e2e.kube import Cluster

RELEASE = "e2e-fleet"
RELEASE_NAMESPACE = "e2e-fleet-system"
FULLNAME = f"{RELEASE}-mcp-fleet"

NON_DEFAULT: dict[str, Any] = {
    "image": {"repository": "registry.example/mcp/operator", "tag": "9.9.9", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "replicas": 2,
    "mcpServerDefaults": {"runtimeImage": "registry.example/mcp/runtime:9", "redisImage": "registry.example/redis:7"},
    "watchNamespaces": ["e2e-chart-a", "e2e-chart-b"],
    "peering": {"enabled": True, "name": "team-peering"},
    "logLevel": "DEBUG",
    "logFormat": "json",
    "metrics": {"port": 9100, "service": {"enabled": False}},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    "serviceAccount": {"create": True, "name": "fleet-operator", "annotations": {"team": "platform"}},
    "podAnnotations": {"example.com/scrape": "true"},
    "podLabels": {"team": "platform"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "mcp-fleet"}},
                    },
                }
            ]
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "mcp-fleet"}},
        }
    ],
}


def values_args(values: dict[str, Any] | None, tmp_path: Path) -> list[str]:
    """`-f FILE` for these values (none for the chart's defaults)."""
    if values is None:
        return []
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["-f", str(path)]


def render(kube: Cluster, values: dict[str, Any] | None, tmp_path: Path) -> str:
    return kube.helm("template", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, *values_args(values, tmp_path))


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], []).append(doc)
    return found


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = by_kind(docs)["Deployment"][0]
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["default", "non-default"])
def test_lint_and_template(kube: Cluster, values: dict[str, Any] | None, tmp_path: Path) -> None:
    assert "0 chart(s) failed" in kube.helm("lint", "--strict", str(CHART), *values_args(values, tmp_path))
    docs = [d for d in yaml.safe_load_all(render(kube, values, tmp_path)) if d]
    kinds = by_kind(docs)
    container = operator_container(docs)
    env = {e["name"]: e["value"] for e in container["env"]}
    if values is None:
        assert sorted(kinds) == sorted(
            ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment", "ClusterKopfPeering"]
        )
        assert "--all-namespaces" in container["args"]
        assert container["image"] == "docker.io/mcp-fleet/operator:0.1.0"
        assert env["MCP_FLEET_DEFAULT_RUNTIME_IMAGE"] == "docker.io/mcp-fleet/runtime:0.1.0"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    else:
        # A Role, RoleBinding and KopfPeering in each watched namespace; no cluster-wide access to McpServers.
        assert sorted(r["metadata"]["namespace"] for r in kinds["Role"]) == ["e2e-chart-a", "e2e-chart-b"]
        assert sorted(r["metadata"]["namespace"] for r in kinds["RoleBinding"]) == ["e2e-chart-a", "e2e-chart-b"]
        assert sorted(p["metadata"]["namespace"] for p in kinds["KopfPeering"]) == ["e2e-chart-a", "e2e-chart-b"]
        assert "ClusterKopfPeering" not in kinds and "Service" not in kinds
        (cluster_role,) = kinds["ClusterRole"]
        assert all("mcpfleet.dev" not in rule["apiGroups"] for rule in cluster_role["rules"])
        assert {"--namespace=e2e-chart-a", "--namespace=e2e-chart-b", "--peering=team-peering"} <= set(
            container["args"]
        )
        assert {"--log-format=json", "--log-level=DEBUG", "--metrics-port=9100"} <= set(container["args"])
        assert container["image"] == "registry.example/mcp/operator:9.9.9"
        assert env["MCP_FLEET_DEFAULT_RUNTIME_IMAGE"] == "registry.example/mcp/runtime:9"
        pod = kinds["Deployment"][0]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "fleet-operator" and pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
        assert kinds["Deployment"][0]["spec"]["replicas"] == 2


def test_bad_values_are_refused_by_the_schema(kube: Cluster) -> None:
    cases = {
        ("logFormat=xml",): "logFormat",
        ("watchNamespaces[0]=Not_A_Namespace",): "watchNamespaces",
        ("replicas=-1",): "replicas",
        ("mcpServerDefaults.runtimeImage=",): "runtimeImage",
        ("surprise=1",): "surprise",
        # Several replicas without peering would all reconcile the same McpServers.
        ("replicas=2", "peering.enabled=false"): "replicas",
    }
    for settings, field in cases.items():
        args = ["helm", "template", RELEASE, str(CHART)]
        for setting in settings:
            args += ["--set", setting]
        done = subprocess.run(args, env=kube.env, capture_output=True, text=True)
        assert done.returncode != 0, settings
        assert "values don't meet the specifications of the schema" in done.stderr and field in done.stderr, (
            settings,
            done.stderr,
        )


@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["default", "non-default"])
def test_the_api_server_accepts_the_rendered_manifests(
    kube: Cluster, values: dict[str, Any] | None, tmp_path: Path
) -> None:
    # The CRDs first (for real: the peering objects' kinds must exist), then the release's objects, dry run.
    install_crds(kube)
    for namespace in (RELEASE_NAMESPACE, "e2e-chart-a", "e2e-chart-b"):
        kube.run("create", "namespace", namespace, check=False)
    manifests = render(kube, values, tmp_path)
    applied = kube.run("apply", "--dry-run=server", "-f", "-", input=manifests)
    assert "(server dry run)" in applied
    assert applied.count("(server dry run)") == len([d for d in yaml.safe_load_all(manifests) if d])


@pytest.fixture
def release(kube: Cluster) -> Iterator[str]:
    yield RELEASE
    kube.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


def test_install_examples_upgrade_uninstall(kube: Cluster, namespace: str, release: str, tmp_path: Path) -> None:
    # Install with the default values: the operator comes up in the cluster.
    helm_install(kube, release, RELEASE_NAMESPACE, {}, tmp_path)
    deployment = kube.json("get", "deployment", FULLNAME, "-n", RELEASE_NAMESPACE)
    assert deployment["status"]["readyReplicas"] == 1
    assert kube.json("get", "crd", "mcpservers.mcpfleet.dev")["metadata"]["name"]

    # The examples, applied as they are, become Ready McpServers that serve MCP.
    names = examples(kube, namespace)
    assert sorted(names) == ["demo-memory", "demo-redis"]
    for name in names:
        wait_ready(kube, namespace, name)
    assert kube.json("get", "mcps", "demo-redis", "-n", namespace)["status"]["readyReplicas"] == 3
    seen = probe(kube, namespace, "demo-redis")
    assert seen["counts"] == list(range(1, 16)), seen  # one session, its state shared by every replica
    assert len(set(seen["replicas"])) >= 2, seen
    assert seen["modern_add"] == 5
    assert probe(kube, namespace, "demo-memory", calls=3)["counts"] == [1, 2, 3]

    # The metrics Service answers (through the API server's proxy) with the operator's metrics.
    metrics = proxy_get(kube, RELEASE_NAMESPACE, "services", f"{FULLNAME}-metrics", 9090, "metrics")
    assert 'mcp_fleet_operator_mcpserver_ready{name="demo-redis",namespace="' + namespace + '"} 1.0' in metrics

    # An upgrade with changed values rolls the operator; the new one keeps reconciling (now only in this
    # namespace, under a Role), and the new default runtime image reaches McpServers that leave spec.image
    # empty.
    before = deployment["metadata"]["generation"]
    alias = target.alias_image()  # the same image by another name: a new default that rolls the servers
    upgraded = {
        "replicas": 2,
        "logFormat": "json",
        "watchNamespaces": [namespace],  # from every namespace to one: a Role and KopfPeering there
        "mcpServerDefaults": {"runtimeImage": alias, "redisImage": target.image("redis")},
    }
    helm_install(kube, release, RELEASE_NAMESPACE, upgraded, tmp_path)
    deployment = kube.json("get", "deployment", FULLNAME, "-n", RELEASE_NAMESPACE)
    assert deployment["metadata"]["generation"] > before

    def rolled() -> bool:
        # helm --wait returns once the new pods are ready; the old one may still be counted for a moment
        # (CI saw readyReplicas 3 right after the upgrade).
        status = kube.json("get", "deployment", FULLNAME, "-n", RELEASE_NAMESPACE)["status"]
        return bool(status.get("readyReplicas") == 2 and status.get("updatedReplicas") == 2 and status["replicas"] == 2)

    wait_for("the operator rolled to 2 new replicas", rolled, 120)
    assert "--log-format=json" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]

    def server_image() -> str:
        pod = kube.json("get", "deployment", "demo-memory", "-n", namespace)["spec"]["template"]["spec"]
        return str(pod["containers"][0]["image"])

    wait_for("the new default image", lambda: server_image() == alias, 120)
    kube.run("scale", "mcps", "demo-memory", "-n", namespace, "--replicas=2")

    def ready_replicas() -> int:
        return int(kube.json("get", "mcps", "demo-memory", "-n", namespace).get("status", {}).get("readyReplicas", 0))

    wait_for("demo-memory scaled by the upgraded operator", lambda: ready_replicas() == 2, 180)
    wait_ready(kube, namespace, "demo-memory", 120)  # and its rollout to the new image done
    assert kube.json("get", "role", FULLNAME, "-n", namespace)["rules"]
    assert not kube.json("get", "clusterrolebinding", "-l", f"app.kubernetes.io/instance={RELEASE}")["items"][1:]
    # The replaced pods lost their cluster-wide access as the upgrade went in; the new ones need none.
    selector = f"app.kubernetes.io/instance={RELEASE}"

    def operator_pods() -> int:
        return len(kube.json("get", "pods", "-n", RELEASE_NAMESPACE, "-l", selector)["items"])

    wait_for("the old operator pods gone", lambda: operator_pods() == 2)
    logs = kube.run("logs", "-n", RELEASE_NAMESPACE, "-l", selector, "--tail=-1")
    assert rbac_refusals(logs) == [], logs
    assert "Error processing line" not in logs, logs  # nothing left broken in the image's site-packages

    # Uninstall removes the operator and what the chart made; the CRD and the McpServers stay, and their
    # servers keep running.
    kube.helm("uninstall", release, "-n", RELEASE_NAMESPACE, "--wait")
    left = kube.json(
        "get",
        "deployments,serviceaccounts,services",
        "-n",
        RELEASE_NAMESPACE,
        "-l",
        f"app.kubernetes.io/instance={RELEASE}",
    )
    assert not left["items"], left
    for kind in ("clusterrole", "clusterrolebinding", "clusterkopfpeering"):
        assert not kube.json("get", kind, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"], kind
    assert kube.json("get", "crd", "mcpservers.mcpfleet.dev")
    assert sorted(m["metadata"]["name"] for m in kube.json("get", "mcps", "-n", namespace)["items"]) == names
    assert kube.json("get", "deployment", "demo-redis", "-n", namespace)["status"]["readyReplicas"] == 3
    # With no operator running, an McpServer can still be deleted (no finalizer), and what it ran goes with it.
    assert not kube.json("get", "mcps", "demo-memory", "-n", namespace)["metadata"].get("finalizers")
    kube.run("delete", "mcps", "demo-memory", "-n", namespace, "--timeout=60s")
    wait_for(
        "garbage collection",
        lambda: not kube.run("get", "deployment", "demo-memory", "-n", namespace, "--ignore-not-found"),
        60,
    )
