"""What the operator sets up when it starts: kopf's settings, and the state its handlers share, in kopf's memo."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import kopf

from mcp_operator.config import OperatorSettings
from mcp_operator.controller.rechecks import Rechecks
from mcp_operator.kube import Kube

MEMO_KEY = "mcp_fleet"


@dataclass
class OperatorState:
    """What the handlers share across calls. kopf gives each McpServer and child a shallow copy of the memo,
    so they all hold this one object."""

    kube: Kube
    settings: OperatorSettings
    rechecks: Rechecks
    # The generation each watched workload had right after this operator applied it, by uid: a child event at
    # that generation is the echo of our own apply, any other generation is someone's edit.
    applied_generations: dict[str, int | None] = field(default_factory=dict)


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
    rechecks = Rechecks(asyncio.get_running_loop(), settings.execution.executor)
    memo[MEMO_KEY] = OperatorState(kube=Kube(), settings=OperatorSettings(), rechecks=rechecks)


def stop(memo: kopf.Memo) -> None:
    """Drop the pending re-checks; called on kopf's event loop when the operator stops."""
    state_of(memo).rechecks.cancel_all()


def state_of(memo: kopf.Memo) -> OperatorState:
    state = memo.get(MEMO_KEY)
    if not isinstance(state, OperatorState):
        raise RuntimeError("the operator's state is set up by its startup handler (mcp_operator.controller.setup)")
    return state
