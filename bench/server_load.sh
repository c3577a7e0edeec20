#!/usr/bin/env bash
# Full-size server load test (loopback only): 16 concurrent streaming clients x 50 requests with
# random client disconnects against `unigemma serve --parallel 4` on the tiny real-vocabulary model.
# Checks zero 5xx, every non-cancelled request completes, RSS after within 10% of before.
# (CTest runs the same test with 6 requests per client.)
#   bench/server_load.sh [CLIENTS] [REQUESTS_PER_CLIENT]
set -euo pipefail
cd "$(dirname "$0")/.."
export UG_CLI="${UG_CLI:-$PWD/build/release/unigemma}"
export UG_ORACLE_DIR="${UG_ORACLE_DIR:-$(cd .. && pwd)/shared/oracle}"
export UG_LOAD_CLIENTS="${1:-16}" UG_LOAD_REQUESTS="${2:-50}"
cd tests/server/js
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
node --test load.test.js
