"""What the operator sets up when it starts: kopf's settings, and the state its handlers share, in kopf's memo."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import kopf

from mcp_operator.config import OperatorSettings
from mcp_operator.controller.drift import ChildId, fingerprint
from mcp_operator.controller.rechecks import Rechecks
from mcp_operator.controller.verifier import Verifier
from mcp_operator.kube import Kube

MEMO_KEY = "mcp_fleet"


@dataclass
class OperatorState:
    """What the handlers share across calls. kopf gives each McpServer and child a shallow copy of the memo,
    so they all hold this one object."""

    kube: Kube
    settings: OperatorSettings
    rechecks: Rechecks
    verifier: Verifier
    # Each child's fingerprint right after this operator applied it, by uid (`drift.child_event_action`), and
    # the uid of each child by name, so that a child made again can be told from the one deleted.
    applied: dict[str, str] = field(default_factory=dict)
    applied_uids: dict[ChildId, str] = field(default_factory=dict)
    # The values of the Secrets the operator generated, by owner uid and Secret name: a generated Secret that is
    # deleted is made again with the value the pods already use (`reconcile.generated_values`).
    generated: dict[str, dict[str, str]] = field(default_factory=dict)
    # The ClusterIP of each Service that was deleted, so it is made again at the same address: clients that
    # resolved its name before (DNS answers are cached, 30 s in CoreDNS) go on reaching it.
    service_addresses: dict[ChildId, str] = field(default_factory=dict)

    def note_applied(self, child: dict[str, Any]) -> None:
        """Remember a child as an apply or create left it."""
        uid = str(child["metadata"]["uid"])
        self.applied[uid] = fingerprint(child)
        self.applied_uids[ChildId.of(child)] = uid

    def forget(self, child: dict[str, Any]) -> None:
        """Drop what is remembered of a child that was deleted (a Service's address is kept for its return)."""
        address = (child.get("spec") or {}).get("clusterIP") if child.get("kind") == "Service" else None
        if address and address != "None":
            self.service_addresses[ChildId.of(child)] = str(address)
        uid = str(child["metadata"].get("uid", ""))
        self.applied.pop(uid, None)
        if self.applied_uids.get(ChildId.of(child)) == uid:
            del self.applied_uids[ChildId.of(child)]


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    settings.posting.level = logging.WARNING  # Kubernetes Events for warnings and errors
    settings.watching.server_timeout = 300
    settings.peering.lifetime = 20  # a standby replica takes over about 20 s after the active one dies
    settings.execution.max_workers = 16  # sync handlers run in threads; the API calls are I/O bound
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mcpfleet.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="mcpfleet.dev")


def start(settings: kopf.OperatorSettings, memo: kopf.Memo) -> None:
    """Configure kopf and put the operator's state into `memo`; called on kopf's event loop, before any watch."""
    configure_kopf(settings)
    loop = asyncio.get_running_loop()
    rechecks = Rechecks(loop, settings.execution.executor)
    kube = Kube()
    memo[MEMO_KEY] = OperatorState(
        kube=kube, settings=OperatorSettings(), rechecks=rechecks, verifier=Verifier(loop, kube)
    )


def stop(memo: kopf.Memo) -> None:
    """Drop the pending re-checks and probes; called on kopf's event loop when the operator stops."""
    state_of(memo).rechecks.cancel_all()
    state_of(memo).verifier.stop()


def state_of(memo: kopf.Memo) -> OperatorState:
    state = memo.get(MEMO_KEY)
    if not isinstance(state, OperatorState):
        raise RuntimeError("the operator's state is set up by its startup handler (mcp_operator.controller.setup)")
    return state
