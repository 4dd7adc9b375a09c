"""Talking to the API server: server-side apply with one field manager, reads and deletes of children."""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import Any

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, ResourceNotFoundError

from mcp_operator.desired import ChildRef

logger = logging.getLogger(__name__)

FIELD_MANAGER = "mcp-fleet-operator"


REDISCOVER_SECONDS = 60.0


class KindNotServed(Exception):
    """The API server does not serve this kind (its CRDs are not installed: the Gateway API's, say)."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"the cluster does not serve {api_version} {kind}")
        self.api_version, self.kind = api_version, kind


class Kube:
    """A thin wrapper over the official client's dynamic client."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self.api_client = api_client
        # The dynamic client's discovery cache is not safe across threads (a lookup that misses rebuilds it,
        # and two rebuilding at once fail with KeyError), and the handlers run in threads: lookups take a lock,
        # and what they found (or that a kind is not served) is remembered here.
        self._lookup = threading.Lock()
        self._found: dict[tuple[str, str], Any] = {}
        self._not_served: dict[tuple[str, str], float] = {}

    @cached_property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api_client)

    def _resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        found = self._found.get(key)
        if found is not None:
            return found
        with self._lookup:
            found = self._found.get(key)
            if found is not None:
                return found
            # A kind found missing is looked for again (a rebuild of the discovery cache) at most once a minute:
            # its CRDs may have been installed since.
            if time.monotonic() - self._not_served.get(key, -REDISCOVER_SECONDS) < REDISCOVER_SECONDS:
                raise KindNotServed(api_version, kind)
            try:
                found = self.dynamic.resources.get(api_version=api_version, kind=kind)  # a miss rebuilds the cache
            except ResourceNotFoundError:
                self._not_served[key] = time.monotonic()
                raise KindNotServed(api_version, kind) from None
            self._found[key] = found
            self._not_served.pop(key, None)
            return found

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: idempotent, and repairs drift in the fields the operator owns."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        result = resource.server_side_apply(
            body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        applied: dict[str, Any] = result.to_dict()
        return applied

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str, status: dict[str, Any]) -> None:
        """Merge `status` into the object's status subresource."""
        self._resource(api_version, kind).status.patch(
            name=name, namespace=namespace, body={"status": status}, content_type="application/merge-patch+json"
        )

    def create_if_absent(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the object unless it exists, and return what exists: of two reconciles racing to make it,
        one creates it and both read back the same object (create is atomic on the API server; apply is not)."""
        meta = manifest["metadata"]
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        try:
            created: dict[str, Any] = resource.create(body=manifest, namespace=meta["namespace"]).to_dict()
            return created
        except ConflictError:
            found = self.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta["namespace"])
            if found is None:  # deleted between the two calls: try once more
                return self.create_if_absent(manifest)
            return found

    def has_default_storage_class(self) -> bool:
        """Whether some StorageClass is marked as the cluster's default (so a claim without a class binds)."""
        classes = self._resource("storage.k8s.io/v1", "StorageClass").get().to_dict()
        return any(
            (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
            for c in classes.get("items") or []
        )

    def served(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind."""
        try:
            self._resource(api_version, kind)
        except KindNotServed:
            return False
        return True

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (or its kind is not served at all)."""
        try:
            found: dict[str, Any] = self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except (NotFoundError, KindNotServed):
            return None
        return found

    def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        """The objects of a kind in a namespace, filtered by the API server."""
        found = self._resource(api_version, kind).get(
            namespace=namespace, label_selector=label_selector or None, field_selector=field_selector or None
        )
        items: list[dict[str, Any]] = found.to_dict().get("items") or []
        return items

    def delete_now(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        """Delete an object and wait until it is gone (its dependents go by garbage collection)."""
        resource = self._resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace, body={"propagationPolicy": "Background"})
        except NotFoundError:
            return
        for _ in range(60):
            if self.get(api_version, kind, name, namespace) is None:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{kind} {namespace}/{name} was not deleted within 30s")

    def delete(self, ref: ChildRef, namespace: str, owner_uid: str) -> bool:
        """Delete a child that should not exist, if it is this owner's."""
        existing = self.get(ref.api_version, ref.kind, ref.name, namespace)
        if existing is None:
            return False
        owners = existing["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == owner_uid for o in owners):
            logger.warning("not deleting %s/%s: it is not owned by this McpServer", ref.kind, ref.name)
            return False
        try:
            self._resource(ref.api_version, ref.kind).delete(name=ref.name, namespace=namespace)
        except NotFoundError:
            return False
        return True
