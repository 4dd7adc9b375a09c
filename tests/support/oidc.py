"""A real OpenID provider on loopback for the authorization tests: panva's oidc-provider (tests/clients/oidc),
started as its own Node.js process; tokens from it through real grants over HTTP, its signing keys rotated by
a restart with another key set (as a provider's keys are rotated: the old and the new published, then the new).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from joserfc.jwk import RSAKey

from tests.support.foreign import oidc_provider
from tests.support.procs import free_port

SCOPES = "tools:read tools:admin"


def new_key(kid: str) -> dict[str, Any]:
    """A private RSA signing key, as a JWK."""
    key = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig", "kid": kid}, private=True)
    return dict(key.as_dict(private=True))


@dataclass
class OpenIdProvider:
    workdir: Path
    resources: list[str]
    opaque: str = ""
    access_ttl: int = 300
    port: int = field(default_factory=free_port)
    keys: list[dict[str, Any]] = field(default_factory=lambda: [new_key("key-1")])
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OpenIdProvider:
        node, program = oidc_provider()
        self.workdir.mkdir(parents=True, exist_ok=True)
        keys_file = self.workdir / "keys.json"
        keys_file.write_text(json.dumps({"keys": self.keys}))
        env = {
            "PORT": str(self.port),
            "KEYS_FILE": str(keys_file),
            "RESOURCES": ",".join(self.resources),
            "OPAQUE": self.opaque,
            "ACCESS_TTL": str(self.access_ttl),
            "PATH": "/usr/bin:/bin",
        }
        log = (self.workdir / "provider.log").open("ab")
        self.process = subprocess.Popen([str(node), str(program)], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start: {self.log()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def rotate(self, keys: list[dict[str, Any]]) -> None:
        """Publish (and sign with the first of) another key set: the provider restarts with it."""
        self.stop()
        self.keys = keys
        self.start()

    def log(self) -> str:
        path = self.workdir / "provider.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def token(self, client: str = "machine", resource: str | None = None, scope: str = SCOPES) -> str:
        """An access token through the client credentials grant."""
        data = {"grant_type": "client_credentials", "scope": scope, "resource": resource or self.resources[0]}
        response = httpx2.post(f"{self.issuer}/token", data=data, auth=(client, f"{client}-secret"), timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@contextmanager
def running_provider(workdir: Path, resources: list[str], **kwargs: Any) -> Iterator[OpenIdProvider]:
    provider = OpenIdProvider(workdir, resources, **kwargs).start()
    try:
        yield provider
    finally:
        provider.stop()


def log_in(authorization_url: str, user: str) -> dict[str, str]:
    """A person logging in through the provider's own pages (oidc-provider's development interactions), as a
    browser would: the authorization URL followed, the login form posted, then the consent form; the
    parameters the provider redirects back with (code, state, iss)."""
    with httpx2.Client(timeout=10, follow_redirects=False) as browser:
        url = authorization_url
        for _ in range(12):
            response = browser.get(url)
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["location"])
                query = parse_qs(urlsplit(url).query)
                if "code" in query:
                    return {k: v[0] for k, v in query.items()}
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            assert form is not None, response.text[:2000]
            fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', response.text))
            if 'name="login"' in response.text:
                fields.update(login=user, password="any")
            posted = browser.post(urljoin(url, form.group(1)), data=fields)
            assert posted.status_code in (302, 303), posted.text[:2000]
            url = urljoin(url, posted.headers["location"])
            query = parse_qs(urlsplit(url).query)
            if "code" in query:
                return {k: v[0] for k, v in query.items()}
    raise AssertionError("the provider never redirected back with a code")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge
