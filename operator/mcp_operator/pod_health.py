"""Which pods of an McpServer (server pods, a managed Redis's data pods and Sentinels) cannot start, and why
(pure).

From the pods as the API server reports them and the Warning events about them: a container waiting for a
reason that will not pass by itself (CrashLoopBackOff, ImagePullBackOff, ...), a container still being
created while a Warning says why it cannot be (a FailedMount: the scripts' ConfigMap is gone), a pod the
scheduler cannot place. Nothing here waits out a pod that is merely starting: its Warning events say when
it is stuck, and the owner's status is looked at again while a pod is not ready (`controller/rechecks.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# A container waiting for one of these is failing, not starting.
FAILING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreStartHookError",
        "PostStartHookError",
    }
)


@dataclass(frozen=True)
class PodHealth:
    """A set of pods: the ones that cannot start (`"pod NAME: why"`) and the ones not ready."""

    failing: tuple[str, ...] = ()
    not_ready: tuple[str, ...] = ()


def _event_time(event: Mapping[str, Any]) -> str:
    """When an event last happened, as an RFC 3339 string (comparable as text: they are all UTC)."""
    series = event.get("series") or {}
    meta = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )


def newest_warning(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> str | None:
    """ "Reason: message" of the newest Warning event about this pod (this very pod: its uid, as a
    StatefulSet's pod that comes back has the same name), if there is one."""
    meta = pod.get("metadata") or {}
    about = [
        e
        for e in events
        if e.get("type") == "Warning"
        and (e.get("involvedObject") or {}).get("kind") == "Pod"
        and (e.get("involvedObject") or {}).get("name") == meta.get("name")
        and (e.get("involvedObject") or {}).get("uid") in (None, meta.get("uid"))
    ]
    if not about:
        return None
    newest = max(about, key=_event_time)
    return f"{newest.get('reason', 'Warning')}: {str(newest.get('message', '')).strip()}"


def _waiting(pod: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(container, reason, message) of each container (init containers first) waiting to run."""
    status = pod.get("status") or {}
    found = []
    for each in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (each.get("state") or {}).get("waiting")
        if waiting:
            found.append((str(each.get("name")), str(waiting.get("reason") or ""), str(waiting.get("message") or "")))
    return found


def _unschedulable(pod: Mapping[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return f"Unschedulable: {condition.get('message', '')}".strip()
    return None


def pod_trouble(pod: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str | None:
    """Why this pod cannot start, in words for a user (its waiting container's reason, and the newest Warning
    about it when there is one), or None while it runs or is merely starting."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None  # going away: its replacement is the one to judge
    status = pod.get("status") or {}
    warning = newest_warning(pod, events)
    if status.get("phase") == "Failed":
        return f"failed: {status.get('reason') or ''} {status.get('message') or ''}".strip()
    for container, reason, message in _waiting(pod):
        if reason in FAILING:
            detail = warning or message
            return f"container {container} {reason} ({detail})" if detail else f"container {container} {reason}"
        if warning:  # starting (ContainerCreating, ...), and a Warning says what stops it
            return f"container {container} {reason or 'waiting'} ({warning})"
    if status.get("phase") == "Pending" and not status.get("containerStatuses"):
        if unschedulable := _unschedulable(pod):
            return unschedulable
        if warning:
            return f"Pending ({warning})"
    return None


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def observe_pods(pods: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> PodHealth:
    """The pods that cannot start (with why) and the ones not ready, by name, in name order."""
    failing, not_ready = [], []
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        name = str((pod.get("metadata") or {}).get("name"))
        if (trouble := pod_trouble(pod, events)) is not None:
            failing.append(f"pod {name}: {trouble}")
        if not _ready(pod):
            not_ready.append(name)
    return PodHealth(tuple(failing), tuple(not_ready))


def needs_events(pods: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a pod waits or is pending, so the Warning events about it are worth reading."""
    return any(_waiting(p) or (p.get("status") or {}).get("phase") in ("Pending", "Failed") for p in pods)
