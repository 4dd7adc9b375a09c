"""The authorization server's metadata (OpenID discovery or RFC 8414), this resource's own metadata (RFC 9728),
and the `WWW-Authenticate` challenges of a resource server (RFC 6750)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2

OPENID_CONFIGURATION = "/.well-known/openid-configuration"
AUTHORIZATION_SERVER = "/.well-known/oauth-authorization-server"
PROTECTED_RESOURCE = "/.well-known/oauth-protected-resource"


class MetadataUnavailable(Exception):
    """The authorization server's metadata could not be read (down, slow, or not what it should be)."""


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """What the runtime uses of its authorization server's metadata."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None


def discovery_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: OpenID discovery, then RFC 8414 (with the issuer's path inserted after
    the well-known prefix, as RFC 8414 section 3.1 says, and appended, as OpenID discovery does)."""
    parts = urlsplit(issuer.rstrip("/"))
    path = parts.path
    urls = [issuer.rstrip("/") + OPENID_CONFIGURATION]
    urls.append(urlunsplit((parts.scheme, parts.netloc, AUTHORIZATION_SERVER + path, "", "")))
    if path:
        urls.append(urlunsplit((parts.scheme, parts.netloc, OPENID_CONFIGURATION + path, "", "")))
    return urls


async def discover(http: httpx2.AsyncClient, issuer: str, metadata_url: str | None = None) -> ServerMetadata:
    """The issuer's metadata, from `metadata_url` or the well-known places; its `issuer` must be the issuer."""
    errors: list[str] = []
    for url in [metadata_url] if metadata_url else discovery_urls(issuer):
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as error:
            errors.append(f"{url}: {type(error).__name__}")
            continue
        if response.status_code != 200:
            errors.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            document: Any = response.json()
        except ValueError:
            errors.append(f"{url}: not JSON")
            continue
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            found = document.get("issuer") if isinstance(document, dict) else None
            errors.append(f"{url}: issuer {found!r} is not {issuer!r}")
            continue
        return ServerMetadata(
            issuer=issuer,
            jwks_uri=_str(document.get("jwks_uri")),
            introspection_endpoint=_str(document.get("introspection_endpoint")),
        )
    raise MetadataUnavailable("; ".join(errors))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def resource_metadata_url(resource: str) -> str:
    """Where this resource's metadata is served (RFC 9728 section 3.1: the well-known prefix between the host and
    the resource's path)."""
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, PROTECTED_RESOURCE + path, "", ""))


def resource_metadata(resource: str, issuer: str, scopes: list[str], name: str | None = None) -> dict[str, Any]:
    """This resource's Protected Resource Metadata (RFC 9728 section 2)."""
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [issuer],
        "bearer_methods_supported": ["header"],
    }
    if scopes:
        document["scopes_supported"] = scopes
    if name:
        document["resource_name"] = name
    return document


def challenge(
    resource_metadata: str | None,
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """A `WWW-Authenticate: Bearer ...` value (RFC 6750 section 3, RFC 9728 section 5.1)."""
    params: list[str] = []
    if resource_metadata:
        params.append(f'resource_metadata="{_quoted(resource_metadata)}"')
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quoted(description)}"')
    if scope:
        params.append(f'scope="{_quoted(scope)}"')
    return "Bearer " + ", ".join(params) if params else 'Bearer realm="mcp"'


def _quoted(value: str) -> str:
    """A quoted-string's content: printable ASCII, without quotes or backslashes (RFC 6750 limits the values)."""
    return "".join(c for c in value if 0x20 <= ord(c) < 0x7F and c not in '"\\')[:300]
