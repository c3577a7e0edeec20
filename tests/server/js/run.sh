#!/usr/bin/env bash
# CTest entry for the JS integration tests: installs the pinned clients with `npm ci` (once per
# package-lock change) and runs the tests. Exit 77 (skipped) when node/npm are not installed or the
# clients cannot be installed (no registry reachable).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node/npm not found: skipping the openai/ollama client tests"
  exit 77
fi
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  if ! log=$(npm ci --no-audit --no-fund --loglevel=error 2>&1); then
    echo "$log" | tail -n 20
    echo "npm ci failed (is the npm registry reachable?): skipping the openai/ollama client tests"
    exit 77
  fi
fi
exec node --test --test-concurrency=1 "$@"
