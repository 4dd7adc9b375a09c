"""The runtime as an OAuth 2.1 resource server (the MCP authorization spec): its authorization server's
metadata, the Protected Resource Metadata it serves (RFC 9728), access tokens checked as JWTs against the
issuer's keys (RFC 9068, with joserfc) or by introspection (RFC 7662), and the challenges it answers with.

- `metadata.py`: discovery of the authorization server, this resource's metadata, `WWW-Authenticate` values;
- `keys.py`: the issuer's signing keys (JWKS), cached, refreshed on an unknown `kid` at a bounded rate;
- `tokens.py`: a JWT access token verified (signature, issuer, audience, time), and what it says;
- `introspection.py`: an opaque access token asked about at the introspection endpoint, answers cached;
- `scopes.py`: which scopes a tool needs.
"""
